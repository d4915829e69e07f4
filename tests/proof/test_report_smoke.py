"""The table machinery itself: a wrong row fails the test that recorded it."""

from __future__ import annotations

import pytest

from tests.support.servers import PROJECT_ROOT

pytest_plugins = ["pytester"]


def test_a_wrong_row_fails_the_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    pytester.makepyfile(
        """
        def test_right(proof):
            proof.record("right", tried=1, expected=1, got=1)

        def test_wrong(proof):
            proof.record("wrong", tried=1, expected=1, got=2)
        """
    )
    table = pytester.path / "table.md"
    result = pytester.runpytest_subprocess(
        "-p", "no:playwright", "-p", "tests.proof.report", f"--proof-table={table}"
    )
    result.assert_outcomes(passed=2, errors=1)  # the wrong row errors at teardown
    assert result.ret != 0
    text = table.read_text()
    assert "| right | - | 1 | 1 | 1 | ok |" in text
    assert "| wrong | - | 1 | 1 | 2 | WRONG |" in text
