"""The proof table: every scenario records what it tried, expected and got.

Tests take the ``proof`` fixture and call ``proof.record(...)`` once per
figure; a row whose ``got`` differs from ``expected`` (or that is passed
``ok=False``) makes the run fail even if the test itself did not assert.
At the end of the session the table is printed, and with
``--proof-table PATH`` it is also written there as Markdown
(``make proof`` writes docs/reliability.md).

The scale of a scenario comes from ``proof.scale(fast, full)``: ``make test``
runs the fast figure, ``make proof`` (ONCECAL_PROOF=1) the full one.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

FULL = os.environ.get("ONCECAL_PROOF") == "1"
_ROWS = pytest.StashKey[list["Row"]]()


@dataclass(frozen=True)
class Row:
    scenario: str
    backend: str
    tried: str
    expected: str
    got: str
    ok: bool


@dataclass
class Proof:
    """What one test hands its figures to."""

    rows: list[Row]
    backend: str = "-"
    recorded: list[Row] = field(default_factory=list)

    @staticmethod
    def scale(fast: int, full: int) -> int:
        """Return ``full`` under ``make proof``, else ``fast``."""
        return full if FULL else fast

    def record(
        self,
        scenario: str,
        *,
        tried: Any,
        expected: Any,
        got: Any,
        backend: str | None = None,
        ok: bool | None = None,
    ) -> Row:
        """Add one row; ``ok`` defaults to ``expected == got`` (compared as given, not as text)."""
        row = Row(
            scenario=scenario,
            backend=backend or self.backend,
            tried=str(tried),
            expected=str(expected),
            got=str(got),
            ok=(expected == got) if ok is None else ok,
        )
        self.rows.append(row)
        self.recorded.append(row)
        return row


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--proof-table", metavar="PATH", help="write the proof table to PATH as Markdown")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_ROWS] = []


@pytest.fixture
def proof(request: pytest.FixtureRequest) -> Any:
    """Record figures for the proof table; fails the test when a row is wrong."""
    backend = "-"
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None:
        for value in callspec.params.values():
            if value in ("sqlite", "postgresql"):
                backend = "SQLite" if value == "sqlite" else "PostgreSQL"
    book = Proof(request.config.stash[_ROWS], backend)
    yield book
    wrong = [row for row in book.recorded if not row.ok]
    if wrong:
        pytest.fail(
            "proof rows wrong:\n"
            + "\n".join(f"  {r.scenario} [{r.backend}]: expected {r.expected}, got {r.got}" for r in wrong),
            pytrace=False,
        )


def _table(rows: list[Row]) -> list[str]:
    header = ["scenario", "backend", "tried", "expected", "got", "result"]
    body = [[r.scenario, r.backend, r.tried, r.expected, r.got, "ok" if r.ok else "WRONG"] for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in body]
    return lines


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash[_ROWS]
    if not rows:
        return
    wrong = sum(not r.ok for r in rows)
    terminalreporter.section(f"proof table: {len(rows)} rows, {wrong} wrong")
    for line in _table(rows):
        terminalreporter.write_line(line)
    path = config.getoption("--proof-table")
    if path:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        scale = "full (`make proof`)" if FULL else "fast (`make test`)"
        text = [
            "# Reliability: what `make proof` tried and what happened",
            "",
            f"Latest run: {stamp}, scale {scale}, on {platform.node()} "
            f"({os.cpu_count()} cores, Python {platform.python_version()}). "
            f"{len(rows)} rows, {wrong} wrong.",
            "",
            "Every row is a figure a test measured against real gunicorn workers, a real",
            "PostgreSQL or SQLite file and Debian's Chromium; `make proof` exits non-zero",
            "when any row is wrong. The tests are in `tests/proof/`.",
            "",
            *_table(rows),
            "",
        ]
        Path(path).write_text("\n".join(text))
        terminalreporter.write_line(f"proof table written to {path}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if any(not r.ok for r in session.config.stash[_ROWS]) and session.exitstatus == 0:
        session.exitstatus = 1
