"""Long-lived objects out of the garbage collector's way (`gc.freeze`).

A desk process holds about a million long-lived objects once Django is set up and ccxt's markets
are loaded; a full collection over them pauses the process for ~110 ms (measured), in the middle of
an order or a book update if it falls there. Frozen, they are never scanned again. Objects freed
by reference counting (most of a replaced markets dict) are still freed.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect once, then freeze everything alive now (call after start-up loading)."""
    gc.collect()
    gc.freeze()


def freeze_again_if_frozen() -> None:
    """After loading more long-lived data (a markets reload): freeze it too, if this process freezes."""
    if gc.get_freeze_count():
        gc.freeze()
