"""Account routes: thin wrappers around oncecal.services.owners."""

from __future__ import annotations

import hmac

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from blueprints.auth import bp
from blueprints.auth.forms import ForgotForm, LoginForm, PasswordForm, ResetForm, SignupForm
from oncecal.app_objects import runtime
from oncecal.extensions import db, limiter, login_manager
from oncecal.forms import add_error, entered
from oncecal.models import Owner, session_binding, utcnow
from oncecal.services import owners
from oncecal.urls import safe_next

login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"


@login_manager.user_loader
def _load_owner(session_id: str) -> Owner | None:
    """Load the session's owner while the password the session began with is still theirs."""
    owner_id, _, binding = session_id.partition(":")
    if not owner_id.isdigit():
        return None
    owner = db.session.get(Owner, int(owner_id))
    if owner is None or not hmac.compare_digest(binding, session_binding(owner.password_hash)):
        return None
    return owner


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def signup() -> Response | str | tuple[str, int]:
    """Create an owner account and log it in."""
    form = SignupForm()
    if form.validate_on_submit():
        try:
            owner = owners.create_owner(entered(form.email), entered(form.name), entered(form.password))
        except owners.EmailTaken:
            add_error(form.email, "An account with this email exists. Log in instead.")
        else:
            login_user(owner)
            flash("Welcome to OnceCal. Create your first calendar.", "success")
            return redirect(url_for("dashboard.new_calendar"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def login() -> Response | tuple[str, int]:
    """Log an owner in."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.calendars"))
    form = LoginForm()
    if form.validate_on_submit():
        owner = owners.authenticate(entered(form.email), entered(form.password))
        if owner is not None:
            login_user(owner)
            return redirect(safe_next(request.args.get("next"), url_for("dashboard.calendars")))
        add_error(form.password, "That email and password do not match an account.")
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout() -> Response:
    """Log the owner out."""
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/dashboard/password", methods=["GET", "POST"])
@login_required
def change_password() -> Response | tuple[str, int]:
    """Change the owner's password."""
    form = PasswordForm()
    if form.validate_on_submit():
        if owners.change_password(current_user, entered(form.current), entered(form.new)):
            # The new password ends every other session; this one starts afresh.
            login_user(current_user._get_current_object())
            flash(
                "Your password is changed. Any other device you were logged in on is logged out.", "success"
            )
            return redirect(url_for("dashboard.profile"))
        add_error(form.current, "That is not your current password.")
    status = 400 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status


@bp.get("/")
def home() -> Response:
    """Send visitors to their calendars, or to the log-in page."""
    return redirect(url_for("dashboard.calendars"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit("5 per hour", methods=["POST"])
def forgot_password() -> Response | tuple[str, int]:
    """Email a single-use reset link; answer the same whether the account exists or not."""
    form = ForgotForm()
    if form.validate_on_submit():
        now = utcnow()
        owners.start_password_reset(entered(form.email), runtime().link_keys, now)
        flash(
            "If an account uses that email, a reset link is on its way. It works once, for one hour.", "info"
        )
        return redirect(url_for("auth.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response | tuple[str, int]:
    """Choose a new password through a reset link."""
    now = utcnow()
    if owners.reset_target(token, now) is None:
        return render_template("auth/reset_invalid.html"), 410
    form = ResetForm()
    if form.validate_on_submit():
        owner = owners.finish_password_reset(token, entered(form.new), now)
        if owner is None:
            return render_template("auth/reset_invalid.html"), 410
        login_user(owner)
        flash("Your new password is set. Any other device you were logged in on is logged out.", "success")
        return redirect(url_for("dashboard.calendars"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form), status
