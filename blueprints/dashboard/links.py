"""A calendar's one-time links: the list by status, making one, revoking one, the CSV export."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from blueprints.dashboard import bp
from blueprints.dashboard.csv_files import csv_download, csv_safe
from blueprints.dashboard.forms import ActionForm, LinkForm, form_status
from blueprints.dashboard.owned import own_calendar, own_link
from oncecal.app_objects import runtime
from oncecal.models import utcnow
from oncecal.schemas import LinkStatus
from oncecal.services import calendars, links
from oncecal.urls import link_url, safe_next

LINKS_CSV_HEADER = (
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
)


@bp.route("/calendars/<int:calendar_id>/links", methods=["GET", "POST"])
def calendar_links(calendar_id: int) -> Response | tuple[str, int]:
    """List a calendar's one-time links, filter by status, and make new ones."""
    calendar = own_calendar(calendar_id, archived_too=request.method == "GET")
    now = utcnow()
    form = LinkForm()
    if form.validate_on_submit():
        link, _token = calendars.issue_link(
            calendar, runtime().link_keys, now, source="dashboard", **form.settings(now)
        )
        flash(f"Link #{link.id} created.", "success")
        return redirect(url_for("dashboard.calendar_links", calendar_id=calendar.id))
    status_filter = request.args.get("status")
    status = LinkStatus(status_filter) if status_filter in {s.value for s in LinkStatus} else None
    keys = runtime().link_keys
    return render_template(
        "dashboard/links.html",
        calendar=calendar,
        form=form,
        action=ActionForm(),
        rows=[
            (link, links.status_of(link, now), links.token_of(keys, link))
            for link in links.links_of(calendar.id, now, status)
        ],
        status_filter=status.value if status else None,
        statuses=[s.value for s in LinkStatus],
        link_url=link_url,
    ), form_status()


@bp.get("/calendars/<int:calendar_id>/links.csv")
def export_links(calendar_id: int) -> Response:
    """Export a calendar's links as CSV."""
    calendar = own_calendar(calendar_id, archived_too=True)
    now = utcnow()
    keys = runtime().link_keys
    rows = []
    for link in links.links_of(calendar.id, now):
        token = links.token_of(keys, link)
        latest = link.bookings[-1] if link.bookings else None
        status = links.status_of(link, now)
        rows.append(
            [
                link.id,
                csv_safe(link.label or ""),
                status.value,
                link.uses,
                link.max_uses,
                link.created_at.isoformat(),
                link.expires_at.isoformat() if link.expires_at else "",
                link_url(token) if token and status is LinkStatus.ACTIVE else "",
                csv_safe(f"{latest.invitee_name} <{latest.invitee_email}>") if latest else "",
                latest.created_at.isoformat() if latest else "",
                latest.start_at.isoformat() if latest else "",
            ]
        )
    return csv_download(f"{calendar.slug}-links.csv", LINKS_CSV_HEADER, rows)


@bp.post("/links/<int:link_id>/revoke")
def revoke_link(link_id: int) -> Response:
    """Revoke a link: its URL shows the expired page from now on."""
    link = own_link(link_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    links.revoke_link(link.id, utcnow())
    flash(f"Link #{link.id} revoked.", "info")
    return redirect(
        safe_next(request.form.get("back"), url_for("dashboard.calendar_links", calendar_id=link.calendar_id))
    )
