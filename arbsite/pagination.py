"""Query-string numbers for paginated lists (`?page=&pageSize=`), validated into the envelope."""

from __future__ import annotations

from arbsite.errors import ValidationFailed


def positive_int(value: str | None, name: str, default: int, maximum: int | None = None) -> int:
    """`value` as a whole number in [1, maximum]; `default` when absent; VALIDATION_ERROR otherwise."""
    if value in (None, ""):
        return default
    try:
        number = int(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValidationFailed(f"{name}: must be a whole number") from exc
    if number < 1 or (maximum is not None and number > maximum):
        raise ValidationFailed(f"{name}: must be between 1 and {maximum or 'any'}")
    return number
