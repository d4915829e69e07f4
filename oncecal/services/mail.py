"""Email, in one module: the payload a delivery keeps, its rendering, its MIME, its sending.

A delivery row keeps what an email is about (the booking, its times and
SEQUENCE as the event saw them, the wording), not rendered text: a database
dump holds no password-reset link, since the worker rebuilds that from the
reset's nonce and the secret when it renders the email. Without
ONCECAL_SMTP_URL the worker prints each email to its log, so a newcomer
running `make run` sees what invitees and owners would get.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from flask import render_template

from oncecal.asof import as_of
from oncecal.extensions import db
from oncecal.models import Booking, Owner, PasswordReset, utcnow
from oncecal.services import outbox
from oncecal.services.ics import booking_ics
from oncecal.services.outbox import Outcome
from oncecal.services.policy import change_policy
from oncecal.services.tokens import LinkKeys
from oncecal.templating import long_date, owner_prefers_12_hour, time_range, zone_prefers_12_hour
from oncecal.text import as_one_line, one_line_fault

log = logging.getLogger("oncecal.mail")
TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str
    ics: bytes | None = None
    ics_method: str | None = None


class NoticeGone(LookupError):
    """What the email was about no longer exists (or its key was retired)."""


def booking_notice(
    booking: Booking,
    *,
    to_owner: bool,
    subject: str,
    headline: str,
    lines: list[str],
    method: str,
    base: str,
    twelve_hour: bool | None = None,
) -> dict[str, Any]:
    """The payload of an email about a booking, as ``booking`` reads (an event's view of it).

    ``twelve_hour`` is the invitee's clock if their own request told it (None:
    their zone's); the owner reads their calendar zone's. ``base`` is the
    origin of the links in it.
    """
    if to_owner:
        clock = owner_prefers_12_hour(booking.calendar)
    else:
        clock = zone_prefers_12_hour(booking.invitee_timezone) if twelve_hour is None else twelve_hour
    return {
        "to": booking.calendar.owner.email if to_owner else booking.invitee_email,
        "subject": subject,
        "base_url": base,
        "booking": {
            "id": booking.id,
            "to_owner": to_owner,
            "headline": headline,
            "lines": lines,
            "method": method,
            "start_at": booking.start_at.isoformat(),
            "end_at": booking.end_at.isoformat(),
            "sequence": booking.sequence,
            "cancelled": booking.cancelled_at is not None,
            "twelve_hour": clock,
        },
    }


def password_reset_notice(owner: Owner, reset: PasswordReset, *, base: str) -> dict[str, Any]:
    """The payload of a password-reset email: the reset's id, never its token."""
    return {
        "to": owner.email,
        "subject": "Reset your OnceCal password",
        "base_url": base,
        "password_reset": reset.id,
    }


def email_delivery(
    payload: dict[str, Any],
    *,
    owner_id: int,
    event_type: str,
    event_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Return the outbox row of an email (a payload of ``booking_notice`` or ``password_reset_notice``), due now.

    ``event_id``: the event it tells of (a reminder's: ``reminder-<booking id>``).
    """
    return outbox.message(
        "email", event_id=event_id, event_type=event_type, owner_id=owner_id, payload=payload, now=now
    )


def render(payload: dict[str, Any], keys: LinkKeys) -> Email:
    """Turn a delivery's payload into the email to send; raise NoticeGone if its subject is gone."""
    if "password_reset" in payload:
        return _password_reset_email(payload, payload["password_reset"], keys)
    return _booking_email(payload, payload["booking"])


def _booking_email(payload: dict[str, Any], facts: dict[str, Any]) -> Email:
    booking = db.session.get(Booking, facts["id"])
    if booking is None:
        raise NoticeGone(f"booking {facts['id']} no longer exists")
    then = as_of(
        booking,
        start_at=datetime.fromisoformat(facts["start_at"]),
        end_at=datetime.fromisoformat(facts["end_at"]),
        sequence=facts["sequence"],
    )
    calendar, owner, to_owner = booking.calendar, booking.calendar.owner, facts["to_owner"]
    zone = ZoneInfo(calendar.timezone if to_owner else booking.invitee_timezone)
    base = payload["base_url"]
    action_url = (
        f"{base}/dashboard/calendars/{calendar.id}/bookings" if to_owner else f"{base}/b/{booking.ref}"
    )
    context = {
        "calendar": calendar,
        "owner": owner,
        "greeting": f"Hello {owner.name}," if to_owner else f"Hello {booking.invitee_name},",
        "headline": facts["headline"],
        "lines": facts["lines"],
        "when": f"{long_date(then.start_at, zone)}, "
        f"{time_range(then.start_at, then.end_at, zone, facts['twelve_hour'])} ({zone.key.replace('_', ' ')})",
        "action_url": action_url,
        "action_label": "See your bookings" if to_owner else _invitee_action(booking, facts["cancelled"]),
    }
    method = facts["method"]
    return Email(
        to=payload["to"],
        subject=payload["subject"],
        text=render_template("emails/notice.txt", **context),
        html=render_template("emails/notice.html", **context),
        ics=booking_ics(then, method=method, manage_url=None if to_owner else action_url),
        ics_method=method,
    )


def _invitee_action(booking: Booking, cancelled: bool) -> str:
    """What the invitee's button offers: only the changes still open when the email is sent."""
    policy = change_policy(booking, utcnow())
    if cancelled or not (policy.can_cancel or policy.can_reschedule):
        return "View the booking"
    if not policy.can_cancel:
        return "View or reschedule"
    if not policy.can_reschedule:
        return "View or cancel"
    return "View, reschedule or cancel"


def _password_reset_email(payload: dict[str, Any], reset_id: int, keys: LinkKeys) -> Email:
    reset = db.session.get(PasswordReset, reset_id)
    raw = (
        keys.token_for(reset.nonce, reset.key_id)
        if reset is not None and reset.nonce and reset.key_id
        else None
    )
    if reset is None or raw is None:
        raise NoticeGone(f"password reset {reset_id} no longer exists or its key was retired")
    owner = db.session.get_one(Owner, reset.owner_id)
    url = f"{payload['base_url']}/password/reset/{raw}"
    return Email(
        to=payload["to"],
        subject=payload["subject"],
        text=render_template("emails/password_reset.txt", owner=owner, url=url),
        html=render_template("emails/password_reset.html", owner=owner, url=url),
    )


def build_message(email: Email, mail_from: str) -> EmailMessage:
    """Turn an email into a MIME message: text, HTML and the .ics."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = email.to
    # A name stored before names had to be one line must not end the header early.
    message["Subject"] = as_one_line(email.subject)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="oncecal")
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    if email.ics:
        message.add_attachment(
            email.ics,
            maintype="text",
            subtype="calendar",
            filename="invite.ics",
            params={"method": email.ics_method or "PUBLISH"},
        )
    return message


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    implicit_tls: bool

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """Read smtp://user:pass@host:587?starttls=1 (or smtps://host:465)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("ONCECAL_SMTP_URL must look like smtp://user:pass@host:587?starttls=1")
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if parts.scheme == "smtps" else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
            implicit_tls=parts.scheme == "smtps",
        )


def send_email(email: Email, smtp_url: str | None, mail_from: str) -> Outcome:
    """Send one email over SMTP, or print it when no SMTP server is set."""
    started = time.monotonic()
    if one_line_fault(email.to):
        # Stored before addresses had to be one line: no retry can mend it.
        return Outcome(None, f"the recipient {email.to!r} is not one email address", 0, permanent=True)
    mime = build_message(email, mail_from)
    if not smtp_url:
        log.info(
            "Email (set ONCECAL_SMTP_URL to send it)\nTo: %s\nSubject: %s\n\n%s",
            mime["To"],
            mime["Subject"],
            email.text,
        )
        return Outcome(None, None, int((time.monotonic() - started) * 1000), printed=True)
    try:
        settings = SmtpSettings.from_url(smtp_url)
        smtp_class = smtplib.SMTP_SSL if settings.implicit_tls else smtplib.SMTP
        with smtp_class(settings.host, settings.port, timeout=TIMEOUT_SECONDS) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            smtp.send_message(mime)
    except (smtplib.SMTPException, OSError, ValueError) as failure:
        return Outcome(
            None, f"{type(failure).__name__}: {failure}"[:500], int((time.monotonic() - started) * 1000)
        )
    return Outcome(250, None, int((time.monotonic() - started) * 1000))
