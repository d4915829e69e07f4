"""The app under test: its configuration, and PostgreSQL databases of its own."""

from __future__ import annotations

import os
import secrets
from typing import Any

import psycopg
import sqlalchemy as sa
from flask import Flask

from app import create_app

TEST_SECRET = "test-secret-key-not-for-production"


def make_test_app(database_url: str, **overrides: Any) -> Flask:
    """Build the app on ``database_url`` with the test configuration and ``overrides``."""
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "BASE_URL": "http://localhost",
        **overrides,
    }
    return create_app(config)


def libpq_url(url: str) -> str:
    """Return a SQLAlchemy PostgreSQL URL as psycopg's own connect() takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_pg_database(admin_url: str) -> str:
    """Create a uniquely named database and return its URL."""
    name = f"oncecal_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(admin_url: str, url: str) -> None:
    """Drop a database made by create_pg_database."""
    name = sa.make_url(url).database
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
