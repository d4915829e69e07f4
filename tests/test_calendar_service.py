"""The calendar service called directly: slugs chosen or made, edits, the owner's links and profile."""

from __future__ import annotations

from datetime import timedelta

import pytest

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Calendar, utcnow
from oncecal.services import calendars, owners
from tests.conftest import MakeCalendar, MakeOwner

pytestmark = pytest.mark.usefixtures("ctx")


def test_a_slug_made_from_the_name_is_numbered_past_those_taken(make_owner: MakeOwner) -> None:
    owner = make_owner()
    made = [calendars.create_calendar(owner.id, name="Deep Dive", timezone="UTC").slug for _ in range(3)]
    assert made == ["deep-dive", "deep-dive-2", "deep-dive-3"]


def test_a_chosen_slug_another_calendar_has_is_refused_and_nothing_is_written(
    make_owner: MakeOwner, make_calendar: MakeCalendar
) -> None:
    make_calendar(slug="intro")
    owner = make_owner()
    with pytest.raises(calendars.SlugTaken):
        calendars.create_calendar(owner.id, slug="intro", name="Intro", timezone="UTC")
    assert db.session.query(Calendar).filter_by(owner_id=owner.id).count() == 0


def test_an_edit_keeps_its_own_slug_and_refuses_another_calendars(make_calendar: MakeCalendar) -> None:
    make_calendar(slug="taken")
    calendar = make_calendar(slug="mine", name="Mine")
    calendars.edit_calendar(calendar, slug="mine", name="Still mine", buffer_minutes=5)
    assert (calendar.slug, calendar.name, calendar.buffer_minutes) == ("mine", "Still mine", 5)
    with pytest.raises(calendars.SlugTaken):
        calendars.edit_calendar(calendar, slug="taken", name="Grabbed")
    assert (calendar.slug, calendar.name) == ("mine", "Still mine")


def test_an_edit_without_a_slug_makes_one_from_the_new_name(make_calendar: MakeCalendar) -> None:
    calendar = make_calendar(slug="old", name="Old")
    calendars.edit_calendar(calendar, name="New Name")
    assert calendar.slug == "new-name"


def test_an_owners_link_expires_after_the_calendars_default_unless_told_otherwise(
    make_calendar: MakeCalendar,
) -> None:
    calendar = make_calendar(default_link_expiry_minutes=60)
    now = utcnow()
    by_default, _ = calendars.issue_link(calendar, runtime().link_keys, now, source="share")
    told, _ = calendars.issue_link(
        calendar,
        runtime().link_keys,
        now,
        source="dashboard",
        expires_at=now + timedelta(days=2),
        allow_cancel=False,
    )
    assert by_default.expires_at == now + timedelta(minutes=60) and by_default.allow_cancel is None
    assert told.expires_at == now + timedelta(days=2) and told.allow_cancel is False


def test_a_profile_cannot_take_another_owners_email(make_owner: MakeOwner) -> None:
    make_owner(email="taken@example.com")
    owner = make_owner(email="me@example.com")
    fields = {"name": "Me", "phone": "", "show_name": True, "show_email": False, "show_phone": True}
    with pytest.raises(owners.EmailTaken):
        owners.update_profile(owner, email="Taken@Example.com", expired_message=None, **fields)
    owners.update_profile(owner, email=" Me2@Example.com ", expired_message="", **fields)
    assert (owner.email, owner.phone, owner.expired_message, owner.show_email) == (
        "me2@example.com",
        None,
        None,
        False,
    )
