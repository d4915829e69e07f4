"""Dashboard forms; their CSRF token lives in the owner's session."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields import SelectChoice  # type: ignore[attr-defined]  # new in WTForms 3.3; types-WTForms is of 3.2
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from oncecal import schemas
from oncecal.email_addresses import EmailAddress
from oncecal.forms import one_line, plain_text, strip
from oncecal.models import Calendar
from oncecal.services.calendars import (
    SLUG,
    WEEKDAYS,
    format_overrides,
    format_ranges,
    parse_origins_text,
    parse_overrides_text,
    parse_ranges_text,
)
from oncecal.services.connections import source_label
from oncecal.timezones import all_zones

CHANGE_CHOICES = [
    SelectChoice("", "As the calendar says"),
    SelectChoice("yes", "Allowed"),
    SelectChoice("no", "Not allowed"),
]


def _one_newline(value: str | None) -> str | None:
    # Browsers send a textarea's line breaks as CRLF but count them as one character.
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def _at_most(limit: int) -> Length:
    """A length limit whose error says how far over the text is; the field keeps the text."""
    return Length(max=limit, message="Up to %(max)d characters; this has %(length)d.")


def _parsed_by(parse: Any) -> Any:
    def check(form: FlaskForm, field: Any) -> None:
        if not isinstance(field.data, str | None):
            # Not posted: WTForms left the stored value (a list or dict) in place.
            raise ValidationError("This field is missing from the form.")
        try:
            parse(field.data or "")
        except ValueError as error:
            raise ValidationError(str(error)) from None

    return check


def form_status() -> int:
    """The status of a page with a form: 400 when it is shown again after a POST, its input had errors."""
    return 400 if request.method == "POST" else 200


class ActionForm(FlaskForm):
    """A button that posts: only the CSRF token."""


class CalendarForm(FlaskForm):
    name = StringField(
        "Name", [DataRequired("Give the calendar a name."), Length(max=120), one_line], filters=[strip]
    )
    slug = StringField(
        "Address (slug)",
        [Optional(), Length(max=80)],
        filters=[strip, lambda v: v.lower() if isinstance(v, str) else v],
        description="Lowercase letters, digits and dashes; leave empty to make one from the name.",
    )
    timezone = SelectField("Time zone", choices=[])
    duration_minutes = IntegerField("Meeting length (minutes)", [NumberRange(5, 720)], default=30)
    min_notice_minutes = IntegerField(
        "Minimum notice (minutes)",
        [NumberRange(0, 60 * 24 * 90)],
        default=240,
        description="How soon before a meeting it can still be booked.",
    )
    days_ahead = IntegerField("Bookable days ahead", [NumberRange(1, 365)], default=60)
    buffer_minutes = IntegerField("Buffer between meetings (minutes)", [NumberRange(0, 240)], default=0)
    location = StringField(
        "Location (place or video link)", [Optional(), _at_most(500), one_line], filters=[strip]
    )
    date_overrides = TextAreaField(
        "Date overrides",
        [_parsed_by(parse_overrides_text)],
        description="One per line: 2026-12-24: off, or 2026-12-31: 10:00-12:00.",
    )
    default_link_expiry_days = IntegerField(
        "Default expiry of new one-time links (days)",
        [Optional(), NumberRange(1, 365)],
        description="Leave empty: links do not expire until used.",
    )
    public_page_enabled = BooleanField("Public scheduling page on (off: one-time links only)", default=True)
    allow_cancel = BooleanField("Invitees may cancel", default=True)
    allow_reschedule = BooleanField("Invitees may reschedule", default=True)
    change_cutoff_hours = IntegerField(
        "…up to this many hours before the start",
        [NumberRange(0, 24 * 30)],
        default=0,
        description="0: until the meeting starts. The booking page says the cutoff before anyone books.",
    )
    reminder_hours = IntegerField(
        "Email a reminder this many hours before (empty: no reminder)",
        [Optional(), NumberRange(1, 24 * 14)],
        default=24,
    )
    embed_origins = TextAreaField(
        "Sites allowed to embed this calendar",
        [_parsed_by(parse_origins_text)],
        description="One origin per line, like https://www.example.com. Empty: any site.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = [SelectChoice(z, z.replace("_", " ")) for z in all_zones()]

    def validate_slug(self, field: StringField) -> None:
        if field.data and not SLUG.fullmatch(field.data):
            raise ValidationError("Use lowercase letters, digits and dashes, not at the start or end.")

    def show_new(self, zone: str) -> None:
        """Start a new calendar in ``zone``, open weekdays 09:00-17:00."""
        self.timezone.data = zone
        for i in range(7):
            getattr(self, f"hours_{i}").data = "09:00-17:00" if i < 5 else ""

    def show(self, calendar: Calendar) -> None:
        """Write a calendar's hours, overrides, origins, link expiry and reminder into their fields."""
        for i in range(7):
            getattr(self, f"hours_{i}").data = format_ranges(calendar.weekly_hours.get(str(i), []))
        self.date_overrides.data = format_overrides(calendar.date_overrides or {})
        self.embed_origins.data = "\n".join(calendar.embed_origins or [])
        minutes = calendar.default_link_expiry_minutes
        self.default_link_expiry_days.data = minutes // (24 * 60) if minutes else None
        self.reminder_hours.data = calendar.reminder_minutes // 60 if calendar.reminder_minutes else None

    def settings(self) -> dict[str, Any]:
        """Return the calendar's columns as the form sets them, all but its slug."""
        days = self.default_link_expiry_days.data
        hours = self.reminder_hours.data
        return {
            "name": self.name.data,
            "timezone": self.timezone.data,
            "duration_minutes": self.duration_minutes.data,
            "min_notice_minutes": self.min_notice_minutes.data,
            "days_ahead": self.days_ahead.data,
            "buffer_minutes": self.buffer_minutes.data,
            "location": self.location.data or None,
            "weekly_hours": {
                str(i): parse_ranges_text(getattr(self, f"hours_{i}").data or "") for i in range(7)
            },
            "date_overrides": parse_overrides_text(self.date_overrides.data or ""),
            "default_link_expiry_minutes": days * 24 * 60 if days else None,
            "public_page_enabled": self.public_page_enabled.data,
            "allow_cancel": self.allow_cancel.data,
            "allow_reschedule": self.allow_reschedule.data,
            "change_cutoff_hours": self.change_cutoff_hours.data,
            "reminder_minutes": hours * 60 if hours else None,
            "embed_origins": parse_origins_text(self.embed_origins.data or ""),
        }


for _index, _day in enumerate(WEEKDAYS):
    setattr(
        CalendarForm,
        f"hours_{_index}",
        StringField(
            _day,
            [_parsed_by(parse_ranges_text)],
            filters=[strip],
            description="e.g. 09:00-12:00, 13:00-17:00; empty: closed",
        ),
    )


class ProfileForm(FlaskForm):
    name = StringField("Name", [DataRequired("Enter your name."), Length(max=120), one_line], filters=[strip])
    email = EmailField(
        "Email",
        [
            DataRequired("Enter your email."),
            one_line,
            EmailAddress("Enter a valid email address."),
            Length(max=254),
        ],
        filters=[strip],
    )
    phone = StringField("Phone (optional)", [Optional(), Length(max=40), one_line], filters=[strip])
    show_name = BooleanField("Show my name")
    show_email = BooleanField("Show my email")
    show_phone = BooleanField("Show my phone")
    expired_message = TextAreaField(
        "Message on the expired-link page (optional)",
        [Optional(), _at_most(500), plain_text],
        filters=[_one_newline, strip],
        description="For example: Please call the office for a new link.",
    )


class LinkForm(FlaskForm):
    # The limits of schemas.LinkSettings, which links.issue_link checks again.
    label = StringField(
        "Label (who it is for)", [Optional(), Length(max=schemas.LABEL_LENGTH), one_line], filters=[strip]
    )
    max_uses = IntegerField("Bookings allowed", [NumberRange(1, schemas.MAX_USES)], default=1)
    expires_in_days = IntegerField("Expires after (days)", [Optional(), NumberRange(1, 365)])
    prefill_name = StringField(
        "Prefill name", [Optional(), Length(max=schemas.NAME_LENGTH), one_line], filters=[strip]
    )
    prefill_email = EmailField(
        "Prefill email",
        [
            Optional(),
            one_line,
            EmailAddress("Enter a valid email address."),
            Length(max=schemas.EMAIL_LENGTH),
        ],
        filters=[strip],
    )
    allow_cancel = SelectField("Invitee may cancel", choices=CHANGE_CHOICES, default="")
    allow_reschedule = SelectField("Invitee may reschedule", choices=CHANGE_CHOICES, default="")
    change_cutoff_hours = IntegerField(
        "Changes close (hours before)", [Optional(), NumberRange(0, schemas.MAX_CUTOFF_HOURS)]
    )

    def settings(self, now: datetime) -> dict[str, Any]:
        """Return the link's columns as the form sets them; no expiry or rule given: None, the calendar's."""
        days = self.expires_in_days.data
        return {
            "label": self.label.data or None,
            "max_uses": self.max_uses.data,
            "expires_at": now + timedelta(days=days) if days else None,
            "prefill_name": self.prefill_name.data or None,
            "prefill_email": self.prefill_email.data or None,
            "allow_cancel": _choice(self.allow_cancel.data),
            "allow_reschedule": _choice(self.allow_reschedule.data),
            "change_cutoff_hours": self.change_cutoff_hours.data,
        }


def _choice(value: str) -> bool | None:
    """Map a "yes"/"no"/"" select to an override, or None for the calendar's rule."""
    return {"yes": True, "no": False}.get(value)


class CancelBookingForm(FlaskForm):
    message = TextAreaField(
        "Message to the invitee (optional)", [Optional(), Length(max=1000), plain_text], filters=[strip]
    )


class DeleteCalendarForm(FlaskForm):
    # The upcoming bookings the owner was shown: confirming cancels those, no others.
    upcoming = HiddenField(validators=[Regexp(r"^(\d{1,18}(,\d{1,18})*)?$")])
    message = TextAreaField(
        "Message to the invitees (optional)", [Optional(), Length(max=1000), plain_text], filters=[strip]
    )

    def confirmed_ids(self) -> set[int]:
        return {int(part) for part in (self.upcoming.data or "").split(",") if part}


class ApiKeyForm(FlaskForm):
    name = StringField(
        "Name (what uses it)", [DataRequired("Name the key."), Length(max=120), one_line], filters=[strip]
    )


class WebhookForm(FlaskForm):
    url = StringField(
        "Endpoint URL",
        [DataRequired("Enter the URL to call."), Length(max=2000), one_line],
        filters=[strip],
    )


class CalDAVForm(FlaskForm):
    """A CalDAV account to connect: the password is never shown back, not even after an error."""

    url = StringField(
        "Server URL",
        [DataRequired("Enter the server's address."), Length(max=2000), one_line],
        filters=[strip],
        description="Like https://caldav.icloud.com, https://caldav.fastmail.com or "
        "https://cloud.example.com/remote.php/dav. A bare host is looked up at /.well-known/caldav.",
    )
    username = StringField(
        "Username", [DataRequired("Enter the username."), Length(max=254), one_line], filters=[strip]
    )
    password = PasswordField(
        "Password or app password",
        [DataRequired("Enter the password."), Length(max=500)],
        description="iCloud and Fastmail need an app password made for OnceCal. It is stored encrypted.",
    )


class NewPasswordForm(FlaskForm):
    """A CalDAV connection's new password (the old one stopped working)."""

    password = PasswordField(
        "New password or app password", [DataRequired("Enter the new password."), Length(max=500)]
    )


class FeedForm(FlaskForm):
    """An ICS feed to connect; its URL is a secret, stored encrypted and never shown back."""

    url = StringField(
        "Feed URL",
        [DataRequired("Enter the feed's address."), Length(max=2000), one_line],
        filters=[strip],
        description="Google: Settings › your calendar › Secret address in iCal format. "
        "Outlook: Settings › Shared calendars › Publish › ICS. Read only, up to 10 MB.",
    )


class CalendarSourcesForm(FlaskForm):
    """Which connected calendars block a calendar's times, and which one receives its bookings."""

    check = SelectMultipleField(
        "Check for conflicts",
        coerce=int,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    write = RadioField("Add bookings to", coerce=int)

    def offer(self, sources: list[Any]) -> None:
        """Offer the owner's connected calendars: all to check, the CalDAV ones to write to."""
        self.check.choices = [(source.id, source_label(source)) for source in sources]
        self.write.choices = [(0, "None: don't add bookings to a calendar")] + [
            (source.id, source_label(source)) for source in sources if source.writable
        ]
