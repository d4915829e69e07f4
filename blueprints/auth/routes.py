"""Account routes: thin wrappers around oncecal.services.owners."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from blueprints.auth import bp
from blueprints.auth.forms import LoginForm, PasswordForm, SignupForm
from oncecal.extensions import db, limiter, login_manager
from oncecal.models import Owner
from oncecal.services import owners

login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"


@login_manager.user_loader
def _load_owner(owner_id: str) -> Owner | None:
    return db.session.get(Owner, int(owner_id)) if owner_id.isdigit() else None


def safe_next(target: str | None, fallback: str) -> str:
    """Follow a ?next= or back= path only within this site."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and not urlsplit(target).netloc
    ):
        return target
    return fallback


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def signup() -> Response | str | tuple[str, int]:
    """Create an owner account and log it in."""
    form = SignupForm()
    if form.validate_on_submit():
        try:
            owner = owners.create_owner(form.email.data, form.name.data, form.password.data)
        except owners.EmailTaken:
            form.email.errors.append("An account with this email exists. Log in instead.")
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
        owner = owners.authenticate(form.email.data, form.password.data)
        if owner is not None:
            login_user(owner)
            return redirect(safe_next(request.args.get("next"), url_for("dashboard.calendars")))
        form.password.errors.append("That email and password do not match an account.")
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
        if owners.change_password(current_user, form.current.data, form.new.data):
            flash("Your password is changed.", "success")
            return redirect(url_for("dashboard.profile"))
        form.current.errors.append("That is not your current password.")
    status = 400 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status


@bp.get("/")
def home() -> Response:
    """Send visitors to their calendars, or to the log-in page."""
    return redirect(url_for("dashboard.calendars"))
