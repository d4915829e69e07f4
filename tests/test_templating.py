"""The template helpers: the fast field renderer writes what WTForms would; one time-range formatter."""

from __future__ import annotations

from datetime import datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from wtforms import BooleanField, EmailField, Form, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from oncecal.templating import text_field, time_range, zone_prefers_12_hour


class _Parsed(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, frozenset[tuple[str, str | None]]]] = []
        self.text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, frozenset(attrs)))

    def handle_data(self, data: str) -> None:
        self.text += data


class _Sample(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Length(min=3, max=254)])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)])


VALUES = ["", "Ada", 'a "quoted" <b>bold</b> & more', "line one\nline two", "</textarea><script>x</script>"]
ATTRS = [
    {},
    {"aria-invalid": "false", "autocomplete": "name"},
    {"aria-invalid": "true", "aria-describedby": "name-error x", "rows": 3, "required": True},
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("attrs", ATTRS)
@pytest.mark.parametrize("name", ["name", "email", "notes"])
def test_text_field_renders_what_wtforms_renders(name: str, value: str, attrs: dict) -> None:
    form = _Sample(data={name: value})
    field = form[name]
    ours, theirs = _Parsed(str(text_field(field, attrs))), _Parsed(str(field(**attrs)))
    assert ours.tags == theirs.tags
    assert ours.text == theirs.text
    assert "<script>" not in str(text_field(field, attrs))


def test_other_widgets_are_left_to_wtforms() -> None:
    class Other(Form):
        secret = PasswordField("Password", validators=[DataRequired()])
        agree = BooleanField("Agree")

    form = Other(data={"secret": "hunter2", "agree": True})
    for field in (form.secret, form.agree):
        assert str(text_field(field, {"aria-invalid": "false"})) == str(field(**{"aria-invalid": "false"}))
    assert "hunter2" not in str(text_field(form.secret, {}))


NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("start", "minutes", "twelve_hour", "expected"),
    [
        ((9, 0), 30, True, "9:00–9:30 AM"),
        ((9, 0), 30, False, "09:00–09:30"),
        ((11, 30), 60, True, "11:30 AM–12:30 PM"),
        ((11, 30), 60, False, "11:30–12:30"),
        ((0, 0), 30, True, "12:00–12:30 AM"),
        ((0, 0), 30, False, "00:00–00:30"),
        ((12, 0), 45, True, "12:00–12:45 PM"),
        ((23, 30), 60, True, "11:30 PM–12:30 AM"),
        ((23, 30), 60, False, "23:30–00:30"),
        ((8, 0), 720, True, "8:00 AM–8:00 PM"),
    ],
)
def test_a_time_range_says_its_clock_once(start, minutes, twelve_hour, expected) -> None:
    begins = datetime(2026, 12, 1, *start, tzinfo=NEW_YORK)
    assert time_range(begins, begins + timedelta(minutes=minutes), NEW_YORK, twelve_hour) == expected


@pytest.mark.parametrize(
    ("zone", "twelve_hour"),
    [("America/New_York", True), ("Australia/Sydney", True), ("Europe/Berlin", False), ("UTC", False)],
)
def test_a_zone_has_the_clock_of_its_country(zone: str, twelve_hour: bool) -> None:
    assert zone_prefers_12_hour(zone) is twelve_hour
