"""The owner's calendars: the list, creating, editing and deleting one, and its Share dialog."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from blueprints.dashboard import bp
from blueprints.dashboard.forms import ActionForm, CalendarForm, DeleteCalendarForm, form_status
from blueprints.dashboard.owned import own_calendar
from oncecal.app_objects import runtime
from oncecal.embed import embed_code
from oncecal.forms import add_error
from oncecal.models import utcnow
from oncecal.services import bookings, links
from oncecal.services import calendars as calendars_service
from oncecal.services.calendars import WEEKDAYS
from oncecal.urls import link_url, permanent_url, scheduling_url

SHARE_TABS = (
    ("scheduling", "Scheduling Link"),
    ("permanent", "Permanent Link"),
    ("one-time", "One Time Link"),
    ("embed", "Embed Code"),
)
SLUG_TAKEN = "Another calendar uses this address. Choose another."


def _lists() -> dict[str, object]:
    """What the calendars page shows under any dialog: the calendars in use and the archived ones."""
    return {
        "calendars": calendars_service.calendars_of(current_user.id),
        "archived": calendars_service.calendars_of(current_user.id, archived=True),
        "action": ActionForm(),
    }


@bp.get("/")
def calendars() -> str:
    """List the owner's calendars."""
    return render_template("dashboard/calendars.html", **_lists())


@bp.route("/calendars/new", methods=["GET", "POST"])
def new_calendar() -> Response | tuple[str, int]:
    """Create a calendar."""
    form = CalendarForm()
    if request.method == "GET":
        form.show_new(request.args.get("tz") or "UTC")
    if form.validate_on_submit():
        try:
            calendar = calendars_service.create_calendar(
                current_user.id, slug=form.slug.data or None, **form.settings()
            )
        except calendars_service.SlugTaken:
            add_error(form.slug, SLUG_TAKEN)
        else:
            flash(f"“{calendar.name}” is ready. Share it with a one-time link.", "success")
            return redirect(url_for("dashboard.share", calendar_id=calendar.id, tab="one-time"))
    return render_template(
        "dashboard/calendar_form.html", form=form, calendar=None, weekdays=WEEKDAYS
    ), form_status()


@bp.route("/calendars/<int:calendar_id>/edit", methods=["GET", "POST"])
def edit_calendar(calendar_id: int) -> Response | tuple[str, int]:
    """Change a calendar's settings and hours."""
    calendar = own_calendar(calendar_id)
    form = CalendarForm(obj=calendar)
    if request.method == "GET":
        form.show(calendar)
    if form.validate_on_submit():
        try:
            calendars_service.edit_calendar(calendar, slug=form.slug.data or None, **form.settings())
        except calendars_service.SlugTaken:
            add_error(form.slug, SLUG_TAKEN)
        else:
            flash("Saved.", "success")
            return redirect(url_for("dashboard.calendars"))
    return render_template(
        "dashboard/calendar_form.html", form=form, calendar=calendar, weekdays=WEEKDAYS
    ), form_status()


@bp.route("/calendars/<int:calendar_id>/delete", methods=["GET", "POST"])
def delete_calendar(calendar_id: int) -> Response | tuple[str, int]:
    """Ask first, listing the upcoming bookings; confirmed, cancel them and archive (or remove) the calendar."""
    calendar = own_calendar(calendar_id)
    form = DeleteCalendarForm()
    now = utcnow()
    notice = None
    if form.validate_on_submit():
        name = calendar.name
        try:
            deletion = calendars_service.delete_calendar(
                calendar_id, now, confirmed=form.confirmed_ids(), message=form.message.data
            )
        except calendars_service.CalendarGone:
            abort(404)
        except calendars_service.UpcomingChanged:
            calendar = own_calendar(calendar_id)
            notice = "Bookings changed since this page was shown. Check the list again before you confirm."
        else:
            flash(_deleted_message(name, deletion), "info")
            return redirect(url_for("dashboard.calendars"))
    upcoming = bookings.bookings_of(calendar.id, now, upcoming=True, live=True)
    form.upcoming.data = ",".join(str(booking.id) for booking in upcoming)
    return render_template(
        "dashboard/delete_calendar.html",
        calendar=calendar,
        form=form,
        upcoming=upcoming,
        has_history=calendars_service.has_history(calendar.id),
        notice=notice,
    ), 409 if notice else form_status()


def _deleted_message(name: str, deletion: calendars_service.Deletion) -> str:
    if not deletion.archived:
        return f"Deleted “{name}”."
    if deletion.cancelled == 0:
        return f"Archived “{name}”. Its past bookings stay in your exports."
    told = "its invitee was" if deletion.cancelled == 1 else f"each of the {deletion.cancelled} invitees was"
    return f"Archived “{name}” and cancelled its upcoming bookings; {told} told by email."


@bp.get("/calendars/<int:calendar_id>/share")
def share(calendar_id: int) -> str:
    """Show the Share dialog of a calendar; opening it never creates a link."""
    calendar = own_calendar(calendar_id)
    tab = request.args.get("tab", "scheduling")
    if tab not in dict(SHARE_TABS):
        tab = "scheduling"
    newest = links.newest_share_link(calendar.id, utcnow())
    token = links.token_of(runtime().link_keys, newest) if newest else None
    one_time_url = link_url(token) if token else None
    embed_target = scheduling_url(calendar.slug) if calendar.public_page_enabled else one_time_url
    return render_template(
        "dashboard/calendars.html",
        **_lists(),
        share=calendar,
        tabs=SHARE_TABS,
        tab=tab,
        scheduling_url=scheduling_url(calendar.slug),
        permanent_url=permanent_url(calendar.key),
        one_time_url=one_time_url,
        embed=embed_code(embed_target) if embed_target else None,
    )


@bp.post("/calendars/<int:calendar_id>/share/generate")
def generate_link(calendar_id: int) -> Response:
    """Make a fresh one-time link from the Share dialog; older ones stay active."""
    calendar = own_calendar(calendar_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    calendars_service.issue_link(calendar, runtime().link_keys, utcnow(), source="share")
    flash("New one-time link ready to copy.", "success")
    return redirect(url_for("dashboard.share", calendar_id=calendar.id, tab="one-time"))
