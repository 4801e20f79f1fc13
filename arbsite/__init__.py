"""arbsite: cross-exchange arbitrage and TWAP desk."""

from .celery import app as celery_app

__all__ = ("celery_app",)
