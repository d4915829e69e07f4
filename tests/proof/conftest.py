"""The proof suite (issue 7). The ``proof`` fixture and table live in report.py,
loaded for every run through ``-p tests.proof.report`` in pyproject.toml."""
