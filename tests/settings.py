"""Test settings: real Postgres and Redis when their URLs are set, fast hashing, isolated keys."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("LOG_JSON", "false")
# A Redis database of its own, so tests never touch a running desk's keys.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from arbsite.settings import *  # noqa: F403
from arbsite.settings import CACHES, CHANNEL_LAYERS

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Keep test keys apart from a desk running on the same Redis.
# One id per test run, inherited by the subprocesses a test starts (they must share keys).
_worker = os.environ.get("PYTEST_XDIST_WORKER") or os.environ.setdefault("ARBSITE_TEST_RUN_ID", f"pid{os.getpid()}")
CACHES["default"]["KEY_PREFIX"] = f"arbsite-test-{_worker}"
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"arbsite-test-{_worker}:ws"
