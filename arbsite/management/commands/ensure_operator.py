"""Make sure the operator account exists; `make run` calls this on every start."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the operator account if missing (password from OPERATOR_PASSWORD or generated and printed once)."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = settings.OPERATOR_USERNAME
        password = settings.OPERATOR_PASSWORD
        user = User.objects.filter(username=username).first()
        if user is None:
            generated = not password
            password = password or secrets.token_urlsafe(16)
            User.objects.create_superuser(username=username, email="", password=password)
            if generated:
                self.stdout.write(
                    self.style.WARNING(
                        f"Created operator account '{username}' with password: {password}\n"
                        "It is shown only this once; set OPERATOR_PASSWORD in .env to choose your own."
                    )
                )
            else:
                self.stdout.write(f"Created operator account '{username}' (password from OPERATOR_PASSWORD).")
            return
        if password and not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"Operator '{username}': password updated from OPERATOR_PASSWORD.")
        else:
            self.stdout.write(f"Operator account '{username}' exists.")
