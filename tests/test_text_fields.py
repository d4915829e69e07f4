"""One-line fields (names, emails, labels, phone, location) hold one line at every entry.

A line break in a name once reached an email's Subject and stopped the
worker for good (issue 13, defect 1). The booking form, the API, the CLI
and the dashboard all ask oncecal/text.py, and all refuse with the field's
own error; multi-line fields (notes, messages) keep their newlines.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from oncecal import text
from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import ApiKey, Booking, Calendar, OneTimeLink, Owner
from oncecal.services import apikeys, links, owners
from tests.conftest import ALL_DAY
from tests.support.pages import BookingPage
from tests.test_dashboard import PASSWORD, csrf_of, form_post, log_in

# A line feed, a carriage return, Unicode's line and paragraph separators,
# NEL (C1), a vertical tab, NUL, DEL, an escape and a tab.
BREAKING = ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x00", "\x7f", "\x1b", "\t"]


@pytest.mark.parametrize("bad", BREAKING)
def test_a_one_line_field_refuses_breaks_and_controls(bad: str) -> None:
    assert text.one_line_fault(f"Ivy{bad}Bcc: x@example.com") is not None


@pytest.mark.parametrize("good", ["Ivy Invitee", "Zoë O’Brien-Łukasz", "李小龍", "👩‍💻 Dev", "\u200fمرحبا"])
def test_a_one_line_field_takes_any_printable_text(good: str) -> None:
    assert text.one_line_fault(good) is None


def test_a_multi_line_field_keeps_newlines_and_tabs_but_refuses_other_controls() -> None:
    assert text.multi_line_fault("First line\r\nsecond\n\tindented") is None
    for bad in ("\x00", "\x0b", "\x1b", "\x7f", "\x85", "\ud800"):
        assert text.multi_line_fault(f"a{bad}b") is not None, repr(bad)


def test_a_fault_says_which_character_it_is() -> None:
    assert text.one_line_fault("a\nb") == "the line break"
    assert text.one_line_fault("a\u2028b") == "the line break"
    assert text.one_line_fault("a\tb") == "the tab"
    assert text.one_line_fault("a\x00b") == "the control character U+0000"
    assert text.one_line_fault("a\udc80b") == "the unpaired surrogate U+DC80"


def test_as_one_line_joins_the_lines_of_a_stored_value() -> None:
    assert text.as_one_line("Ivy\r\nBcc: x@example.com\u2028") == "Ivy Bcc: x@example.com"
    assert text.as_one_line("Ivy Invitee") == "Ivy Invitee"


# --- the booking form --------------------------------------------------------------------------


@pytest.fixture
def link_token(app) -> str:
    with app.app_context():
        owner = owners.create_owner("olga@example.com", "Olga Owner", PASSWORD)
        calendar = Calendar(
            owner=owner, name="Intro", slug="intro", weekly_hours=ALL_DAY, min_notice_minutes=0
        )
        db.session.add(calendar)
        db.session.commit()
        return links.issue_link(calendar, runtime().link_keys, now=calendar.created_at)[1]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Ivy\nBcc: x@example.com"),
        ("name", "Ivy\rInvitee"),
        ("name", "Ivy\u2028Invitee"),
        ("name", "Ivy\tInvitee"),
        ("email", "ivy@exam\u2029ple.com"),
    ],
)
def test_the_booking_form_refuses_a_name_or_email_with_a_line_break(
    app, client, link_token: str, field: str, value: str
) -> None:
    page = BookingPage.parse(client.get(f"/l/{link_token}").get_data(as_text=True))
    response = client.post(f"/l/{link_token}", data=page.form(**{field: value}))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'id="{field}-error">This field takes one line of text; remove the' in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Booking.id))) == 0
        assert db.session.scalar(sa.select(OneTimeLink.uses)) == 0


def test_the_booking_form_keeps_the_newlines_of_notes(app, client, link_token: str) -> None:
    page = BookingPage.parse(client.get(f"/l/{link_token}").get_data(as_text=True))
    response = client.post(f"/l/{link_token}", data=page.form(notes="Agenda:\r\n- budget\r\n- dates"))
    assert response.status_code == 303
    with app.app_context():
        assert db.session.scalar(sa.select(Booking.invitee_notes)) == "Agenda:\r\n- budget\r\n- dates"


def test_a_prefill_from_the_url_that_is_not_one_line_is_ignored(client, link_token: str) -> None:
    html = client.get(f"/l/{link_token}?name=Ivy%0ABcc%3A+x&email=ivy%40example.com").get_data(as_text=True)
    assert 'value="ivy@example.com"' in html
    assert "Bcc" not in html


# --- the API -----------------------------------------------------------------------------------


@pytest.fixture
def api_key(app, link_token: str) -> str:
    with app.app_context():
        owner = db.session.scalar(sa.select(Owner))
        return apikeys.create_api_key(owner, "test", owner.created_at)[1]


def test_the_api_refuses_one_line_fields_with_breaks_keyed_by_field(app, client, api_key: str) -> None:
    body = {
        "calendar": "intro",
        "label": "Ann\rLee",
        "external_id": "42\u2028",
        "prefill": {"name": "Ann\nBcc: x@example.com", "email": "ann@example.com\x85"},
        "metadata": {"note": "two\nlines are fine here"},
    }
    response = client.post(
        "/api/v1/one-time-links", json=body, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert set(errors) == {"label", "external_id", "prefill.name", "prefill.email"}
    assert errors["prefill.name"] == "must be one line of text; remove the line break"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(OneTimeLink.id))) == 1  # the fixture's


def test_the_api_takes_metadata_with_newlines_but_not_with_other_controls(client, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    made = client.post(
        "/api/v1/one-time-links", json={"calendar": "intro", "metadata": {"note": "a\nb"}}, headers=headers
    )
    assert made.status_code == 201
    refused = client.post(
        "/api/v1/one-time-links", json={"calendar": "intro", "metadata": {"note": "a\x0bb"}}, headers=headers
    )
    assert refused.status_code == 422 and set(refused.get_json()["errors"]) == {"metadata"}


# --- the CLI -----------------------------------------------------------------------------------


def invoke(runner, *args: str):
    return runner.invoke(args=list(args), catch_exceptions=False)


def test_the_cli_refuses_an_owner_name_with_a_line_break_and_stores_nothing(app, runner) -> None:
    result = invoke(
        runner, "owner", "create", "--email", "o@example.com", "--name", "Olga\nOwner", "--password", PASSWORD
    )
    assert result.exit_code != 0
    assert "--name" in result.output and "one line of text" in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Owner.id))) == 0


@pytest.mark.parametrize(
    "args",
    [
        ("calendar", "create", "--owner", "olga@example.com", "--name", "Intro\u2028call"),
        ("link", "create", "intro", "--label", "Ann\rLee"),
        ("apikey", "create", "--owner", "olga@example.com", "--name", "CRM\nkey"),
        ("webhook", "create", "--owner", "olga@example.com", "--url", "https://hooks.example.com/\n"),
    ],
)
def test_the_cli_refuses_breaks_in_every_one_line_option(app, runner, link_token: str, args) -> None:
    with app.app_context():
        before = [
            db.session.scalar(sa.select(sa.func.count(model.id))) for model in (Calendar, OneTimeLink, ApiKey)
        ]
    result = invoke(runner, *args)
    assert result.exit_code != 0, result.output
    assert "one line of text" in result.output
    with app.app_context():
        after = [
            db.session.scalar(sa.select(sa.func.count(model.id))) for model in (Calendar, OneTimeLink, ApiKey)
        ]
    assert after == before


# --- the dashboard ------------------------------------------------------------------------------


@pytest.fixture
def owner_client(app, client, link_token: str) -> SimpleNamespace:
    assert log_in(client, "olga@example.com").status_code == 302
    with app.app_context():
        calendar_id = db.session.scalar(sa.select(Calendar.id))
    return SimpleNamespace(client=client, calendar_id=calendar_id)


PROFILE = {"name": "Olga Owner", "email": "olga@example.com", "phone": "", "expired_message": ""}


@pytest.mark.parametrize(
    ("path", "form_page", "data", "field"),
    [
        ("/dashboard/profile", None, {**PROFILE, "name": "Olga\nOwner"}, "name"),
        ("/dashboard/profile", None, {**PROFILE, "phone": "+1 555\r\n0100"}, "phone"),
        ("/dashboard/profile", None, {**PROFILE, "email": "olga@exam\u2028ple.com"}, "email"),
        ("/dashboard/api-keys", "/dashboard/integrations", {"key-name": "CRM\nkey"}, "key-name"),
        (
            "/dashboard/webhooks",
            "/dashboard/integrations",
            {"hook-url": "https://h.example.com/a\rb"},
            "hook-url",
        ),
    ],
)
def test_dashboard_forms_refuse_breaks_in_one_line_fields(
    app, owner_client: SimpleNamespace, path: str, form_page: str | None, data: dict, field: str
) -> None:
    response = form_post(owner_client.client, path, data, page=form_page)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'id="{field}-error">This field takes one line of text; remove the' in html
    with app.app_context():
        assert db.session.scalar(sa.select(Owner.name)) == "Olga Owner"
        assert db.session.scalar(sa.select(sa.func.count(ApiKey.id))) == 0


def test_dashboard_link_and_calendar_forms_refuse_breaks(app, owner_client: SimpleNamespace) -> None:
    client, calendar_id = owner_client.client, owner_client.calendar_id
    link = form_post(
        client,
        f"/dashboard/calendars/{calendar_id}/links",
        {"label": "Ann\nLee", "max_uses": "1", "prefill_name": "Ann\u2028Lee"},
        page=f"/dashboard/calendars/{calendar_id}/links",
    )
    assert link.status_code == 400
    html = link.get_data(as_text=True)
    for field in ("label", "prefill_name"):
        assert f'id="{field}-error">This field takes one line of text; remove the line break.' in html
    edit_page = f"/dashboard/calendars/{calendar_id}/edit"
    token = csrf_of(client.get(edit_page).get_data(as_text=True))
    edit = client.post(edit_page, data={"csrf_token": token, "name": "Intro", "location": "Room\n12"})
    assert edit.status_code == 400
    html = edit.get_data(as_text=True)
    assert 'id="location-error">This field takes one line of text; remove the line break.' in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(OneTimeLink.id))) == 1
        assert db.session.scalar(sa.select(Calendar.location)) is None


def test_the_expired_message_keeps_its_newlines(app, owner_client: SimpleNamespace) -> None:
    message = "Please call the office.\r\nWe answer 9 to 5."
    response = form_post(owner_client.client, "/dashboard/profile", {**PROFILE, "expired_message": message})
    assert response.status_code == 302
    with app.app_context():
        # Kept on two lines; a browser's CRLF is stored as one newline, as the counter counts it.
        assert (
            db.session.scalar(sa.select(Owner.expired_message))
            == "Please call the office.\nWe answer 9 to 5."
        )


def test_a_multi_line_fault_names_the_control_character() -> None:
    assert text.multi_line_fault("a\x0bb") == "the control character U+000B"


def test_a_multi_line_field_keeps_unicode_line_separators() -> None:
    assert text.multi_line_fault("one\u2028two\u2029three") is None
