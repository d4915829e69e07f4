"""The owner's profile: contact details and what the expired page shows."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from blueprints.dashboard import bp
from blueprints.dashboard.forms import ProfileForm, form_status
from oncecal.forms import add_error, entered
from oncecal.services import owners


@bp.route("/profile", methods=["GET", "POST"])
def profile() -> Response | tuple[str, int]:
    """Edit the owner's contact details and what the expired page shows."""
    owner = current_user._get_current_object()
    form = ProfileForm(obj=owner)
    if form.validate_on_submit():
        try:
            owners.update_profile(
                owner,
                name=entered(form.name),
                email=entered(form.email),
                phone=form.phone.data,
                show_name=form.show_name.data,
                show_email=form.show_email.data,
                show_phone=form.show_phone.data,
                expired_message=form.expired_message.data,
            )
        except owners.EmailTaken:
            add_error(form.email, "Another account uses this email.")
        else:
            flash("Profile saved.", "success")
            return redirect(url_for("dashboard.profile"))
    return render_template("dashboard/profile.html", form=form, owner=owner), form_status()
