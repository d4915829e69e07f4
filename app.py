"""The OnceCal application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask

from oncecal.app_objects import init_runtime
from oncecal.compression import read_small_text_files
from oncecal.config import load_config
from oncecal.db import configure_engine
from oncecal.extensions import compress, csrf, db, limiter, login_manager, migrate


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure an instance of the OnceCal app."""
    app = Flask(__name__, instance_relative_config=True)
    load_config(app, test_config)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/migrations"))
    with app.app_context():
        configure_engine(db.engine, busy_timeout_ms=app.config["SQLITE_BUSY_TIMEOUT_MS"])
    init_runtime(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    # Flask runs after_request hooks in reverse order of registration:
    # registered first, Flask-Compress runs last and compresses the final
    # response; the hook registered next reads small files in before it.
    compress.init_app(app)
    app.after_request(read_small_text_files)

    from blueprints import api, auth, booking, dashboard, demo, errors, favicon, health, widget
    from oncecal import cli, headers, templating

    app.register_blueprint(booking.bp)
    # The booking forms carry their own signed, link-bound token (cookies
    # are blocked in cross-site frames); every other form uses the session's.
    csrf.exempt(booking.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(favicon.bp)
    app.register_blueprint(widget.bp)
    app.register_blueprint(errors.bp)
    if app.config["ENV_NAME"] != "production":
        app.register_blueprint(demo.bp)
    templating.init_app(app)
    headers.init_app(app)
    cli.init_app(app)
    return app
