"""The owner's long texts are taken whole or refused, never cut; the expired message shows only where a link expired."""

from __future__ import annotations

import re
from html import unescape

import pytest

from oncecal.extensions import db
from oncecal.models import Owner
from oncecal.services import owners
from tests.conftest import MakeCalendar, MakeLink
from tests.test_dashboard import PASSWORD, form_post, log_in

pytestmark = pytest.mark.usefixtures("ctx")

PROFILE = {"name": "Olga Owner", "email": "olga@example.com", "phone": "", "show_name": "y"}
# Sentences, so a cut shows: the last one is the one that would be lost.
LONG_MESSAGE = " ".join(f"Sentence {n} of the message." for n in range(1, 25)) + " The last one."


@pytest.fixture
def owner() -> Owner:
    return owners.create_owner("olga@example.com", "Olga Owner", PASSWORD)


@pytest.fixture
def logged_in(client, owner):
    assert log_in(client, owner.email).status_code == 302
    return client


def textarea(html: str, name: str) -> tuple[str, str]:
    """Return a textarea's attributes and its text."""
    match = re.search(rf'<textarea ([^>]*name="{name}"[^>]*)>\r?\n?(.*?)</textarea>', html, re.DOTALL)
    assert match, f"no textarea {name}"
    return match.group(1), unescape(match.group(2))


def test_the_profile_states_the_limit_and_lets_the_browser_take_the_whole_text(logged_in):
    attributes, _ = textarea(logged_in.get("/dashboard/profile").get_data(as_text=True), "expired_message")
    # A maxlength would make the browser drop the rest of a pasted text without a word.
    assert "maxlength" not in attributes
    assert 'data-count-limit="500"' in attributes
    assert "Up to 500 characters." in logged_in.get("/dashboard/profile").get_data(as_text=True)


def test_an_over_long_expired_message_is_refused_with_the_text_kept(logged_in, owner):
    assert len(LONG_MESSAGE) > 500
    response = form_post(logged_in, "/dashboard/profile", {**PROFILE, "expired_message": LONG_MESSAGE})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f"Up to 500 characters; this has {len(LONG_MESSAGE)}." in html
    assert "Profile saved." not in html
    assert textarea(html, "expired_message")[1] == LONG_MESSAGE
    assert db.session.get_one(Owner, owner.id).expired_message is None


def test_an_expired_message_of_500_characters_is_kept_whole(logged_in, owner):
    message = LONG_MESSAGE[:486] + " The last one."
    assert len(message) == 500
    response = form_post(logged_in, "/dashboard/profile", {**PROFILE, "expired_message": message})
    assert response.status_code == 302
    assert db.session.get_one(Owner, owner.id).expired_message == message


def test_the_calendars_location_states_its_limit(logged_in):
    html = logged_in.get("/dashboard/calendars/new").get_data(as_text=True)
    field = re.search(r'<input [^>]*name="location"[^>]*>', html).group(0)
    assert "maxlength" not in field and 'data-count-limit="500"' in field


def test_the_expired_message_shows_on_the_expired_page_only(
    client, make_owner, make_calendar: MakeCalendar, make_link: MakeLink
):
    owner = make_owner(name="Olga Owner", show_name=True, expired_message="Call the office for a new link.")
    closed = make_calendar(owner, weekly_hours={})
    _, token = make_link(closed)

    no_times = client.get(f"/l/{token}")
    assert no_times.status_code == 200
    html = no_times.get_data(as_text=True)
    assert "No times are open right now" in html and "Olga Owner" in html
    assert "Call the office for a new link." not in html
    assert "Call the office for a new link." not in client.get(f"/c/{closed.slug}").get_data(as_text=True)

    revoked, revoked_token = make_link(closed)
    revoked.revoked_at = revoked.created_at
    db.session.commit()
    expired = client.get(f"/l/{revoked_token}")
    assert expired.status_code == 410
    assert "Call the office for a new link." in expired.get_data(as_text=True)
