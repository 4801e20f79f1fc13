"""Shared fixtures: the recorded-data folder, a clean Redis namespace, API clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

pytest_plugins = ["tests.venue.fixtures"]


def recorded_data_dir() -> Path | None:
    """The recorded exchange payloads, or None when absent (a failure under CI=true)."""
    path = Path(settings.EXCHANGE_DATA_DIR)
    if path.is_dir():
        return path
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"recorded exchange data missing at {path} (EXCHANGE_DATA_DIR); CI requires it")
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = recorded_data_dir()
    if path is None:
        pytest.skip(f"recorded exchange data not found at {settings.EXCHANGE_DATA_DIR}; set EXCHANGE_DATA_DIR")
    return path


@pytest.fixture(autouse=True)
def _clean_redis_namespace() -> Iterator[None]:
    """Each test starts with none of our Redis keys (books, metrics, cache) from another test."""
    from arbsite.redis_client import get_redis, key
    from exchanges import market_data

    market_data._LAST_GOOD.clear()  # a source's remembered answer belongs to the test that produced it
    client = get_redis()
    pattern = key("*")
    for k in client.scan_iter(match=pattern, count=500):
        client.delete(k)
    yield
    from exchanges.sessions import close_shared_session

    close_shared_session()  # kept venues point at this test's emulator and keys: not the next test's


@pytest.fixture
def operator(db):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username="olivia", password="correct horse battery")


@pytest.fixture
def api(operator):  # type: ignore[no-untyped-def]
    """A DRF client logged in as the operator (session auth, CSRF enforced like a browser)."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user=operator)
    return client


@pytest.fixture
def anon():  # type: ignore[no-untyped-def]
    from rest_framework.test import APIClient

    return APIClient()
