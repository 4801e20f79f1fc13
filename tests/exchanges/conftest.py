from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchanges import connectivity
from tests.exchanges.market_data_runner import run_marketdata  # noqa: F401 - shared by the emulator tests


@pytest.fixture(autouse=True)
def _fresh_markets() -> Iterator[None]:
    """Markets are cached per process; stubs must not leak theirs into other tests."""
    connectivity.forget_markets()
    yield
    connectivity.forget_markets()
