"""The booking as an iCalendar event, with a UID that never changes."""

from __future__ import annotations

import hashlib

from icalendar import Calendar as ICalendar
from icalendar import Event, vCalAddress, vText

from oncecal.models import Booking, utcnow


def uid_of_ref(ref: str) -> str:
    """Return the event UID of the booking with ``ref``: stable for the booking, and not its secret ref."""
    return f"{hashlib.sha256(ref.encode()).hexdigest()[:32]}@oncecal"


def booking_uid(booking: Booking) -> str:
    """Return the booking's event UID (``uid_of_ref``)."""
    return uid_of_ref(booking.ref)


def booking_ics(
    booking: Booking,
    method: str | None = None,
    sequence: int | None = None,
    manage_url: str | None = None,
    *,
    for_server: bool = False,
) -> bytes:
    """Render a booking as an .ics document: an iTIP message with a method, or one for import.

    Without a method it is a plain calendar object (RFC 5545), which may name its attendees;
    RFC 5546 allows no ATTENDEE in METHOD:PUBLISH, so a download is not a PUBLISH.
    ``for_server``: the owner's copy written into their CalDAV calendar; its
    ATTENDEE says SCHEDULE-AGENT=CLIENT (RFC 6638), so the server sends no
    invitation of its own: OnceCal's email is the invitee's one.
    """
    calendar = booking.calendar
    owner = calendar.owner
    cal = ICalendar()
    cal.add("prodid", "-//OnceCal//OnceCal//EN")
    cal.add("version", "2.0")
    if method is not None:
        cal.add("method", method)
    event = Event()
    event.add("uid", booking_uid(booking))
    event.add("dtstamp", utcnow())
    event.add("dtstart", booking.start_at)
    event.add("dtend", booking.end_at)
    event.add("sequence", booking.sequence if sequence is None else sequence)
    event.add("summary", f"{calendar.name}: {booking.invitee_name} and {owner.name}")
    if calendar.location:
        event.add("location", calendar.location)
    description = f"Manage this booking: {manage_url}" if manage_url else ""
    if booking.invitee_notes:
        description = f"{booking.invitee_notes}\n\n{description}".strip()
    if description:
        event.add("description", description)
    organizer = vCalAddress(f"mailto:{owner.email}")
    organizer.params["cn"] = vText(owner.name)
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{booking.invitee_email}")
    attendee.params["cn"] = vText(booking.invitee_name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    if for_server:
        attendee.params["schedule-agent"] = vText("CLIENT")
    event.add("attendee", attendee)
    event.add("status", "CANCELLED" if booking.cancelled_at else "CONFIRMED")
    cal.add_component(event)
    ics: bytes = cal.to_ical()
    return ics
