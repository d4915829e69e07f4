"""Dashboard routes: load the owner's object (404 for anyone else's), call a service, render."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints.auth.routes import safe_next
from blueprints.dashboard import bp
from blueprints.dashboard.forms import (
    ActionForm,
    CalendarForm,
    CancelBookingForm,
    DeleteCalendarForm,
    LinkForm,
    ProfileForm,
)
from oncecal.db import write_transaction
from oncecal.embed import embed_code
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink, utcnow
from oncecal.runtime import base_url, link_url, runtime
from oncecal.services import bookings, changes, links, owners
from oncecal.services import calendars as calendars_service
from oncecal.services.calendars import (
    WEEKDAYS,
    format_overrides,
    format_ranges,
    parse_origins_text,
    parse_overrides_text,
    parse_ranges_text,
    slug_taken,
    slugify,
)
from oncecal.services.links import LinkStatus

SHARE_TABS = (
    ("scheduling", "Scheduling Link"),
    ("permanent", "Permanent Link"),
    ("one-time", "One Time Link"),
    ("embed", "Embed Code"),
)


@bp.before_request
@login_required
def _owners_only() -> None:
    """Every dashboard page needs a logged-in owner."""


def _own_calendar(calendar_id: int, *, archived_too: bool = False) -> Calendar:
    """The owner's calendar; an archived one only where its records are read (``archived_too``)."""
    calendar = db.session.get(Calendar, calendar_id)
    if calendar is None or calendar.owner_id != current_user.id:
        abort(404)
    if calendar.archived_at is not None and not archived_too:
        abort(404)
    return calendar


def _own_calendars(*, archived: bool) -> list[Calendar]:
    kept = Calendar.archived_at.is_not(None) if archived else Calendar.archived_at.is_(None)
    return list(
        db.session.scalars(
            sa.select(Calendar).where(Calendar.owner_id == current_user.id, kept).order_by(Calendar.name)
        )
    )


def _own_link(link_id: int) -> OneTimeLink:
    link = db.session.get(OneTimeLink, link_id)
    if link is None or link.calendar.owner_id != current_user.id:
        abort(404)
    return link


def _own_booking(booking_id: int) -> Booking:
    booking = db.session.get(Booking, booking_id)
    if booking is None or booking.calendar.owner_id != current_user.id:
        abort(404)
    return booking


def _status() -> int:
    """A form shown again after a POST is a 400: its input had errors."""
    return 400 if request.method == "POST" else 200


@bp.get("/")
def calendars() -> str:
    """List the owner's calendars."""
    return render_template(
        "dashboard/calendars.html",
        calendars=_own_calendars(archived=False),
        archived=_own_calendars(archived=True),
        action=ActionForm(),
    )


def _fill_calendar(calendar: Calendar, form: CalendarForm) -> None:
    calendar.name = form.name.data
    calendar.slug = form.slug.data or calendar.slug
    calendar.timezone = form.timezone.data
    calendar.duration_minutes = form.duration_minutes.data
    calendar.min_notice_minutes = form.min_notice_minutes.data
    calendar.days_ahead = form.days_ahead.data
    calendar.buffer_minutes = form.buffer_minutes.data
    calendar.location = form.location.data or None
    calendar.weekly_hours = {
        str(i): parse_ranges_text(getattr(form, f"hours_{i}").data or "") for i in range(7)
    }
    calendar.date_overrides = parse_overrides_text(form.date_overrides.data or "")
    days = form.default_link_expiry_days.data
    calendar.default_link_expiry_minutes = days * 24 * 60 if days else None
    calendar.public_page_enabled = form.public_page_enabled.data
    calendar.allow_cancel = form.allow_cancel.data
    calendar.allow_reschedule = form.allow_reschedule.data
    calendar.change_cutoff_hours = form.change_cutoff_hours.data
    hours = form.reminder_hours.data
    calendar.reminder_minutes = hours * 60 if hours else None
    calendar.embed_origins = parse_origins_text(form.embed_origins.data or "")


def _unique_slug(form: CalendarForm, except_id: int | None) -> str | None:
    slug = form.slug.data or slugify(form.name.data)
    if not form.slug.data:
        base, n = slug, 2
        while slug_taken(slug, except_id):
            slug, n = f"{base}-{n}", n + 1
        return slug
    if slug_taken(slug, except_id):
        form.slug.errors.append("Another calendar uses this address. Choose another.")
        return None
    return slug


@bp.route("/calendars/new", methods=["GET", "POST"])
def new_calendar() -> Response | tuple[str, int]:
    """Create a calendar."""
    form = CalendarForm()
    if request.method == "GET":
        form.timezone.data = request.args.get("tz") or "UTC"
        for i in range(7):
            getattr(form, f"hours_{i}").data = "09:00-17:00" if i < 5 else ""
    if form.validate_on_submit() and (slug := _unique_slug(form, None)):
        form.slug.data = slug
        calendar = Calendar(owner_id=current_user.id, slug=slug)
        with write_transaction():
            _fill_calendar(calendar, form)
            db.session.add(calendar)
        flash(f"“{calendar.name}” is ready. Share it with a one-time link.", "success")
        return redirect(url_for("dashboard.share", calendar_id=calendar.id, tab="one-time"))
    return render_template(
        "dashboard/calendar_form.html", form=form, calendar=None, weekdays=WEEKDAYS
    ), _status()


@bp.route("/calendars/<int:calendar_id>/edit", methods=["GET", "POST"])
def edit_calendar(calendar_id: int) -> Response | tuple[str, int]:
    """Change a calendar's settings and hours."""
    calendar = _own_calendar(calendar_id)
    form = CalendarForm(obj=calendar)
    if request.method == "GET":
        for i in range(7):
            getattr(form, f"hours_{i}").data = format_ranges(calendar.weekly_hours.get(str(i), []))
        form.date_overrides.data = format_overrides(calendar.date_overrides or {})
        form.embed_origins.data = "\n".join(calendar.embed_origins or [])
        minutes = calendar.default_link_expiry_minutes
        form.default_link_expiry_days.data = minutes // (24 * 60) if minutes else None
        form.reminder_hours.data = calendar.reminder_minutes // 60 if calendar.reminder_minutes else None
    if form.validate_on_submit() and (slug := _unique_slug(form, calendar.id)):
        form.slug.data = slug
        with write_transaction():
            _fill_calendar(calendar, form)
        flash("Saved.", "success")
        return redirect(url_for("dashboard.calendars"))
    return render_template(
        "dashboard/calendar_form.html", form=form, calendar=calendar, weekdays=WEEKDAYS
    ), _status()


@bp.route("/calendars/<int:calendar_id>/delete", methods=["GET", "POST"])
def delete_calendar(calendar_id: int) -> Response | tuple[str, int]:
    """Ask first, listing the upcoming bookings; confirmed, cancel them and archive (or remove) the calendar."""
    calendar = _own_calendar(calendar_id)
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
            calendar = _own_calendar(calendar_id)
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
    ), 409 if notice else _status()


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
    calendar = _own_calendar(calendar_id)
    tab = request.args.get("tab", "scheduling")
    if tab not in dict(SHARE_TABS):
        tab = "scheduling"
    newest = links.newest_share_link(calendar.id, utcnow())
    token = links.token_of(runtime().link_keys, newest) if newest else None
    one_time_url = link_url(token) if token else None
    scheduling_url = f"{base_url()}/c/{calendar.slug}"
    embed_target = scheduling_url if calendar.public_page_enabled else one_time_url
    return render_template(
        "dashboard/calendars.html",
        calendars=_own_calendars(archived=False),
        archived=_own_calendars(archived=True),
        action=ActionForm(),
        share=calendar,
        tabs=SHARE_TABS,
        tab=tab,
        scheduling_url=scheduling_url,
        permanent_url=f"{base_url()}/p/{calendar.key}",
        one_time_url=one_time_url,
        embed=embed_code(embed_target) if embed_target else None,
    )


@bp.post("/calendars/<int:calendar_id>/share/generate")
def generate_link(calendar_id: int) -> Response:
    """Make a fresh one-time link from the Share dialog; older ones stay active."""
    calendar = _own_calendar(calendar_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    now = utcnow()
    links.issue_link(
        calendar, runtime().link_keys, now=now, source="share", expires_at=_default_expiry(calendar, now)
    )
    flash("New one-time link ready to copy.", "success")
    return redirect(url_for("dashboard.share", calendar_id=calendar.id, tab="one-time"))


def _default_expiry(calendar: Calendar, now: datetime) -> datetime | None:
    minutes = calendar.default_link_expiry_minutes
    return now + timedelta(minutes=minutes) if minutes else None


@bp.route("/calendars/<int:calendar_id>/links", methods=["GET", "POST"])
def calendar_links(calendar_id: int) -> Response | tuple[str, int]:
    """List a calendar's one-time links, filter by status, and make new ones."""
    calendar = _own_calendar(calendar_id, archived_too=request.method == "GET")
    now = utcnow()
    form = LinkForm()
    if form.validate_on_submit():
        days = form.expires_in_days.data
        link, _token = links.issue_link(
            calendar,
            runtime().link_keys,
            now=now,
            label=form.label.data or None,
            max_uses=form.max_uses.data,
            expires_at=now + timedelta(days=days) if days else _default_expiry(calendar, now),
            prefill_name=form.prefill_name.data or None,
            prefill_email=form.prefill_email.data or None,
            source="dashboard",
            allow_cancel=_choice(form.allow_cancel.data),
            allow_reschedule=_choice(form.allow_reschedule.data),
            change_cutoff_hours=form.change_cutoff_hours.data,
        )
        flash(f"Link #{link.id} created.", "success")
        return redirect(url_for("dashboard.calendar_links", calendar_id=calendar.id))
    status_filter = request.args.get("status")
    status = LinkStatus(status_filter) if status_filter in {s.value for s in LinkStatus} else None
    rows = links.links_of(calendar.id, now, status)
    keys = runtime().link_keys
    return render_template(
        "dashboard/links.html",
        calendar=calendar,
        form=form,
        action=ActionForm(),
        rows=[(link, links.status_of(link, now), links.token_of(keys, link)) for link in rows],
        status_filter=status.value if status else None,
        statuses=[s.value for s in LinkStatus],
        link_url=link_url,
    ), _status()


@bp.get("/calendars/<int:calendar_id>/links.csv")
def export_links(calendar_id: int) -> Response:
    """Export a calendar's links as CSV."""
    calendar = _own_calendar(calendar_id, archived_too=True)
    now = utcnow()
    out, writer = _csv_writer()
    writer.writerow(
        [
            "id",
            "label",
            "status",
            "uses",
            "max_uses",
            "created_at",
            "expires_at",
            "url",
            "booked_by",
            "booked_at",
            "meeting_start",
        ]
    )
    keys = runtime().link_keys
    for link in links.links_of(calendar.id, now):
        token = links.token_of(keys, link)
        latest = link.bookings[-1] if link.bookings else None
        status = links.status_of(link, now)
        writer.writerow(
            [
                link.id,
                _csv_safe(link.label or ""),
                status.value,
                link.uses,
                link.max_uses,
                link.created_at.isoformat(),
                link.expires_at.isoformat() if link.expires_at else "",
                link_url(token) if token and status is LinkStatus.ACTIVE else "",
                _csv_safe(f"{latest.invitee_name} <{latest.invitee_email}>") if latest else "",
                latest.created_at.isoformat() if latest else "",
                latest.start_at.isoformat() if latest else "",
            ]
        )
    return _csv_download(out, f"{calendar.slug}-links.csv")


@bp.get("/bookings.csv")
def export_bookings() -> Response:
    """Export every booking of the owner's calendars as CSV, deleted (archived) calendars included."""
    rows = db.session.execute(
        sa.select(Booking, Calendar.name)
        .join(Calendar)
        .where(Calendar.owner_id == current_user.id)
        .order_by(Booking.start_at, Booking.id)
    )
    out, writer = _csv_writer()
    writer.writerow(
        [
            "calendar",
            "start",
            "end",
            "invitee_name",
            "invitee_email",
            "notes",
            "status",
            "cancelled_by",
            "link_id",
            "booked_at",
        ]
    )
    for booking, calendar_name in rows:
        writer.writerow(
            [
                _csv_safe(calendar_name),
                booking.start_at.isoformat(),
                booking.end_at.isoformat(),
                _csv_safe(booking.invitee_name),
                _csv_safe(booking.invitee_email),
                _csv_safe(booking.invitee_notes or ""),
                "cancelled" if booking.cancelled_at else "confirmed",
                booking.cancelled_by or "",
                booking.link_id or "",
                booking.created_at.isoformat(),
            ]
        )
    return _csv_download(out, "bookings.csv")


def _csv_writer() -> tuple[io.StringIO, Any]:
    out = io.StringIO()
    return out, csv.writer(out)


def _csv_download(out: io.StringIO, filename: str) -> Response:
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _choice(value: str) -> bool | None:
    """Map a "yes"/"no"/"" select to an override, or None for the calendar's rule."""
    return {"yes": True, "no": False}.get(value)


def _csv_safe(text: str) -> str:
    """Keep spreadsheet apps from running a cell as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.post("/links/<int:link_id>/revoke")
def revoke_link(link_id: int) -> Response:
    """Revoke a link: its URL shows the expired page from now on."""
    link = _own_link(link_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    links.revoke_link(link.id, utcnow())
    flash(f"Link #{link.id} revoked.", "info")
    return redirect(
        safe_next(request.form.get("back"), url_for("dashboard.calendar_links", calendar_id=link.calendar_id))
    )


@bp.get("/calendars/<int:calendar_id>/bookings")
def calendar_bookings(calendar_id: int) -> str:
    """List a calendar's upcoming and past bookings."""
    calendar = _own_calendar(calendar_id, archived_too=True)
    now = utcnow()
    return render_template(
        "dashboard/bookings.html",
        calendar=calendar,
        upcoming=bookings.bookings_of(calendar.id, now, upcoming=True),
        past=bookings.bookings_of(calendar.id, now, upcoming=False),
        cancel_form=CancelBookingForm(),
    )


@bp.post("/bookings/<int:booking_id>/cancel")
def cancel_booking(booking_id: int) -> Response:
    """Cancel a booking; its time is free again and its link stays used."""
    booking = _own_booking(booking_id)
    form = CancelBookingForm()
    if not form.validate_on_submit():
        abort(400)
    changes.cancel_booking(booking.id, utcnow(), by="owner", reason=form.message.data)
    flash(f"Cancelled the booking of {booking.invitee_name}.", "info")
    return redirect(url_for("dashboard.calendar_bookings", calendar_id=booking.calendar_id))


@bp.route("/profile", methods=["GET", "POST"])
def profile() -> Response | tuple[str, int]:
    """Edit the owner's contact details and what the expired page shows."""
    owner = current_user._get_current_object()
    form = ProfileForm(obj=owner)
    if form.validate_on_submit():
        taken = owners.owner_by_email(form.email.data)
        if taken is not None and taken.id != owner.id:
            form.email.errors.append("Another account uses this email.")
        else:
            with write_transaction():
                form.populate_obj(owner)
                owner.email = owners.normalise_email(form.email.data)
                owner.phone = form.phone.data or None
                owner.expired_message = form.expired_message.data or None
            flash("Profile saved.", "success")
            return redirect(url_for("dashboard.profile"))
    return render_template("dashboard/profile.html", form=form, owner=owner), _status()
