"""Email through the outbox: queued in the change's transaction, sent by the worker.

Without ONCECAL_SMTP_URL the worker prints each email to its log, so a
newcomer running `make run` sees what invitees and owners would get.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from oncecal.services import outbox
from oncecal.services.outbox import Outcome
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


def email_message(
    payload: dict[str, Any],
    *,
    owner_id: int,
    event_type: str,
    event_id: str | None = None,
    send_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    """Return the outbox row of an email, for ``outbox.add``.

    ``payload`` has the recipient ("to"), the "subject" and what the worker
    renders the body from (see oncecal.notices).
    """
    return outbox.message(
        "email",
        event_id=event_id or "msg_" + uuid.uuid4().hex,
        event_type=event_type,
        owner_id=owner_id,
        payload=payload,
        now=now,
        send_at=send_at,
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
