"""Flask extensions, created once and bound to the app in create_app()."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every OnceCal model."""


db = SQLAlchemy(model_class=Base)
# The models' base class. db.Model is made at run time from Base (adding
# Flask-SQLAlchemy's bind and repr), and a type checker cannot take a base
# class from an attribute: it reads the models as what Base declares.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
compress = Compress()
# Storage comes from RATELIMIT_STORAGE_URI (ONCECAL_RATELIMIT_STORAGE_URI).
limiter = Limiter(get_remote_address)
