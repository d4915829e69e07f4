"""One booking's time reads the same for each reader on every page and in every email.

The invitee reads their own clock (Accept-Language, as on the booking page) on the
confirmation page and in their emails; the owner reads the clock of the calendar's zone
on the bookings page, the links page and in their notices, whatever their browser says.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import unescape
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Calendar, utcnow
from oncecal.services import links, owners
from tests.conftest import ALL_DAY
from tests.support.pages import BookingPage
from tests.test_dashboard import form_post
from tests.test_mail import INVITEE_EMAIL, OWNER_EMAIL, PASSWORD, Site, SmtpServer, by_recipient, tried

__all__ = ["site", "smtp"]  # the fixtures, used by name
from tests.test_mail import site, smtp


@pytest.mark.parametrize(
    ("zone", "invitee_language", "owner_language", "at", "invitee_reads", "owner_reads"),
    [
        ("America/New_York", "en-US", "en-GB", (11, 30), "11:30 AM–12:00 PM", "11:30 AM–12:00 PM"),
        ("America/New_York", "en-US", "de-DE", (0, 0), "12:00–12:30 AM", "12:00–12:30 AM"),
        ("Europe/Berlin", "en-US", "en-US", (0, 0), "12:00–12:30 AM", "00:00–00:30"),
        ("Europe/Berlin", "de-DE", "en-US", (9, 0), "09:00–09:30", "09:00–09:30"),
    ],
)
def test_one_booking_reads_the_same_on_every_page_and_email_of_each_reader(
    site: Site,
    smtp: SmtpServer,
    zone: str,
    invitee_language: str,
    owner_language: str,
    at: tuple[int, int],
    invitee_reads: str,
    owner_reads: str,
):
    tz = ZoneInfo(zone)
    local_day = (utcnow() + timedelta(days=3)).astimezone(tz).date()
    start = datetime(local_day.year, local_day.month, local_day.day, *at, tzinfo=tz)
    slot = start.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
    with site.app.app_context():
        owner = owners.create_owner(OWNER_EMAIL, "Olga Owner", PASSWORD)
        calendar = Calendar(
            owner_id=owner.id,
            name="Call",
            slug="call",
            timezone=zone,
            weekly_hours=ALL_DAY,
            min_notice_minutes=0,
        )
        db.session.add(calendar)
        db.session.commit()
        calendar_id = calendar.id
        _, token = links.issue_link(calendar, runtime().link_keys, now=utcnow())

    invitee = site.app.test_client()
    invitee.environ_base["HTTP_ACCEPT_LANGUAGE"] = invitee_language
    page = BookingPage.parse(invitee.get(f"/l/{token}?tz={zone}&date={local_day}").get_data(as_text=True))
    assert slot in page.slots
    booked = invitee.post(f"/l/{token}", data=page.form(slot, name="Ivy Invitee", email=INVITEE_EMAIL))
    assert booked.status_code == 303
    confirmation = unescape(invitee.get(urlsplit(booked.headers["Location"]).path).get_data(as_text=True))

    owner_client = site.app.test_client()
    owner_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = owner_language
    assert form_post(owner_client, "/login", {"email": OWNER_EMAIL, "password": PASSWORD}).status_code == 302
    bookings_page = owner_client.get(f"/dashboard/calendars/{calendar_id}/bookings").get_data(as_text=True)
    links_page = owner_client.get(f"/dashboard/calendars/{calendar_id}/links").get_data(as_text=True)

    assert tried(site.worker(smtp.url)) == 2
    mails = by_recipient(smtp.collector.take())

    read = {
        "confirmation page": (confirmation, invitee_reads),
        "invitee's email (text)": (mails[INVITEE_EMAIL].text, invitee_reads),
        "invitee's email (HTML)": (unescape(mails[INVITEE_EMAIL].html), invitee_reads),
        "bookings page": (unescape(bookings_page), owner_reads),
        "links page": (unescape(links_page), owner_reads),
        "owner's email (text)": (mails[OWNER_EMAIL].text, owner_reads),
        "owner's email (HTML)": (unescape(mails[OWNER_EMAIL].html), owner_reads),
    }
    missing = {where: expected for where, (text, expected) in read.items() if expected not in text}
    assert not missing, missing
