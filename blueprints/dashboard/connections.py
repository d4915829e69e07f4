"""Dashboard pages for calendar connections: the owner's CalDAV accounts and feeds, and each calendar's use of them."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from blueprints.dashboard import bp
from blueprints.dashboard.forms import (
    ActionForm,
    CalDAVForm,
    CalendarSourcesForm,
    FeedForm,
    NewPasswordForm,
    form_status,
)
from blueprints.dashboard.owned import own_calendar
from oncecal.extensions import db
from oncecal.forms import add_error
from oncecal.models import Connection, utcnow
from oncecal.services import connections
from oncecal.services.remote import AuthFailed, RemoteError


def _own_connection(connection_id: int) -> Connection:
    connection = db.session.get(Connection, connection_id)
    if connection is None or connection.owner_id != current_user.id:
        abort(404)
    return connection


def _page(
    caldav_form: CalDAVForm | None = None,
    feed_form: FeedForm | None = None,
    password_forms: dict[int, NewPasswordForm] | None = None,
) -> tuple[str, int]:
    owned = connections.connections_of(current_user.id)
    # A CalDAV connection whose password was refused offers to take a new one.
    refused = {c.id for c in owned if c.kind == "caldav" and any(s.error_kind == "auth" for s in c.calendars)}
    forms = {c: NewPasswordForm(prefix=f"password-{c}") for c in refused} | (password_forms or {})
    return render_template(
        "dashboard/connections.html",
        connections=owned,
        used_by=connections.calendars_using([s.id for c in owned for s in c.calendars]),
        caldav_form=caldav_form or CalDAVForm(prefix="caldav"),
        feed_form=feed_form or FeedForm(prefix="feed"),
        password_forms=forms,
        action=ActionForm(),
        now=utcnow(),
    ), form_status()


@bp.get("/connections")
def connections_page() -> tuple[str, int]:
    """The owner's connections: their calendars, last good read, error; adding one."""
    return _page()


@bp.post("/connections/caldav")
def add_caldav() -> Response | tuple[str, int]:
    """Connect a CalDAV account; a refused login or an unreachable server is shown on the form."""
    form = CalDAVForm(prefix="caldav")
    if form.validate_on_submit():
        try:
            connection = connections.add_caldav(
                current_user,
                form.url.data or "",
                form.username.data or "",
                form.password.data or "",
                utcnow(),
            )
        except AuthFailed as refused:
            add_error(form.password, f"{refused} Check them, or make an app password for OnceCal.")
        except RemoteError as failure:
            add_error(form.url, str(failure))
        else:
            found = len(connection.calendars)
            flash(
                f"Connected {connection.host}: {found} calendar{'s' if found != 1 else ''} found.", "success"
            )
            return redirect(url_for("dashboard.connections_page"), 303)
    return _page(caldav_form=form)


@bp.post("/connections/feed")
def add_feed() -> Response | tuple[str, int]:
    """Connect an ICS feed; one that cannot be read is shown on the form."""
    form = FeedForm(prefix="feed")
    if form.validate_on_submit():
        try:
            connection = connections.add_feed(current_user, form.url.data or "", utcnow())
        except RemoteError as failure:
            add_error(form.url, str(failure))
        else:
            flash(f"Connected the feed “{connection.calendars[0].name}”.", "success")
            return redirect(url_for("dashboard.connections_page"), 303)
    return _page(feed_form=form)


@bp.post("/connections/<int:connection_id>/sync")
def sync_connection(connection_id: int) -> Response:
    """Read a connection's calendars now."""
    connection = _own_connection(connection_id)
    if ActionForm().validate_on_submit():
        results = [connections.sync_source(source_id) for source_id in [s.id for s in connection.calendars]]
        failed = [r for r in results if not r.ok and not r.skipped]
        if failed:
            flash(f"Could not read {len(failed)} of {len(results)} calendars: {failed[0].error}", "error")
        else:
            flash("Read just now.", "success")
    return redirect(url_for("dashboard.connections_page"), 303)


@bp.post("/connections/<int:connection_id>/password")
def change_password(connection_id: int) -> Response | tuple[str, int]:
    """Give a CalDAV connection a new password: the server must take it; its calendar choices stay."""
    connection = _own_connection(connection_id)
    if connection.kind != "caldav":
        abort(404)
    form = NewPasswordForm(prefix=f"password-{connection.id}")
    if form.validate_on_submit():
        try:
            connections.change_password(connection, form.password.data or "", utcnow())
        except RemoteError as refused:
            add_error(form.password, str(refused))
        else:
            flash(f"The new password works: {connection.host} is read again now.", "success")
            return redirect(url_for("dashboard.connections_page"), 303)
    return _page(password_forms={connection.id: form})


@bp.post("/connections/<int:connection_id>/remove")
def remove_connection(connection_id: int) -> Response:
    """Remove a connection; its busy times stop counting at once."""
    connection = _own_connection(connection_id)
    if ActionForm().validate_on_submit():
        host = connection.host
        connections.remove_connection(connection.id)
        flash(f"Removed {host}. Events OnceCal wrote there stay in that calendar.", "success")
    return redirect(url_for("dashboard.connections_page"), 303)


@bp.route("/calendars/<int:calendar_id>/connections", methods=["GET", "POST"])
def calendar_sources(calendar_id: int) -> Response | tuple[str, int]:
    """Choose which connected calendars block this calendar's times and which receives its bookings."""
    calendar = own_calendar(calendar_id)
    sources = connections.owner_sources(current_user.id)
    form = CalendarSourcesForm()
    form.offer(sources)
    if not form.is_submitted():
        checked, target = connections.sources_of(calendar)
        form.check.data, form.write.data = checked, target or 0
    elif form.validate():
        try:
            connections.connect_calendar(calendar, form.check.data or [], form.write.data or None)
        except connections.ConnectionError_ as refused:
            add_error(form.write, str(refused))
        else:
            flash(f"Saved the connected calendars of “{calendar.name}”.", "success")
            return redirect(url_for("dashboard.calendar_sources", calendar_id=calendar.id), 303)
    return render_template(
        "dashboard/calendar_sources.html", calendar=calendar, form=form, sources=sources
    ), form_status()
