import pytest

from arbsite import monitor


@pytest.fixture(autouse=True)
def _only_the_sinks_a_test_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trading alert store registers itself at start-up and needs the database; these tests do not."""
    monkeypatch.setattr(monitor, "_sinks", [])
