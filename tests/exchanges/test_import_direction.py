"""The exchange layer sits below trading: no module under exchanges/ imports trading or twap.

(Throttling and bans are the exchange layer's; the risk engine hooks in with
`exchanges.throttle.on_ban`, see tests/risk/test_ban_hook.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

EXCHANGES = Path(__file__).resolve().parents[2] / "exchanges"
ABOVE = ("trading", "twap")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def test_no_exchanges_module_imports_trading_or_twap() -> None:
    files = sorted(p for p in EXCHANGES.rglob("*.py") if "migrations" not in p.parts)
    assert any(p.name == "throttle.py" for p in files)
    wrong = [f"{p.relative_to(EXCHANGES.parent)}:{line} imports {name}" for p in files
             for line, name in imported_modules(p) if name.split(".")[0] in ABOVE]
    assert wrong == []
