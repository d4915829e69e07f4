"""Flask extensions, created once and bound to the app in create_app()."""

from __future__ import annotations

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every OnceCal model."""


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
