"""Helpers shared by the tests, `bench/` and `scripts/`: the app under test, real servers, pages and Chromium."""
