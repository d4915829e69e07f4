"""The booking form, whose CSRF token is a signed form id bound to its page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from wtforms import EmailField, Form, HiddenField, StringField, TextAreaField
from wtforms.csrf.core import CSRF, CSRFTokenField
from wtforms.fields.core import UnboundField
from wtforms.form import BaseForm
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from oncecal.email_addresses import EmailAddress
from oncecal.forms import one_line, plain_text, strip
from oncecal.services.formtokens import FormTokens, InvalidFormToken
from oncecal.timezones import is_valid_zone


@dataclass(frozen=True)
class FormScope:
    tokens: FormTokens
    scope: str  # "l:<link id>" or "c:<calendar id>"
    max_age: int


class _TokenShownWhenRendered(CSRFTokenField):
    """A CSRF field that issues its token only when the form is shown.

    WTForms issues one whenever a form is made, also for a POST that is only
    read and then redirected: every booking would sign a token nobody sees.
    """

    _token: str | None = None

    def process(self, *args: Any, **kwargs: Any) -> None:
        HiddenField.process(self, *args, **kwargs)

    @property
    def current_token(self) -> str:
        if self._token is None:
            self._token = self.csrf_impl.generate_csrf_token(self)
        return self._token

    @current_token.setter
    def current_token(self, token: str) -> None:
        self._token = token


class SignedFormCSRF(CSRF):
    """CSRF without the session: works where third-party cookies are blocked."""

    field_class = _TokenShownWhenRendered

    def setup_form(self, form: BaseForm) -> list[tuple[str, UnboundField[Any]]]:
        # make_form puts the FormScope in the form's meta.
        self.context = cast(FormScope, form.meta.csrf_context)
        return super().setup_form(form)

    def generate_csrf_token(self, csrf_token_field: CSRFTokenField) -> str:
        return self.context.tokens.issue(self.context.scope)

    def validate_csrf_token(self, form: BaseForm, field: CSRFTokenField) -> None:
        assert isinstance(form, SignedForm)  # the only forms whose Meta names this class
        try:
            form.form_id = self.context.tokens.read(
                field.data or "", self.context.scope, self.context.max_age
            )
        except InvalidFormToken:
            raise ValidationError(
                "This form has expired. Please choose your time again and resubmit."
            ) from None


class SignedForm(Form):
    """A form of the invitee pages: its CSRF token is a signed form id, read into ``form_id``."""

    class Meta:
        csrf = True
        csrf_class = SignedFormCSRF

    csrf_token: _TokenShownWhenRendered  # the field WTForms adds for Meta.csrf
    form_id: str | None = None


class SlotForm(SignedForm):
    """Choose a time: the reschedule form, and the first half of the booking form."""

    slot = StringField("Time", validators=[DataRequired("Choose a time.")], filters=[strip])
    timezone = StringField("Time zone", filters=[strip])

    slot_start: datetime | None = None

    def validate_slot(self, field: StringField) -> None:
        try:
            # fromisoformat() lets a trailing NUL through: only printable ASCII is a time.
            if not (field.data or "").isascii() or not (field.data or "").isprintable():
                raise ValueError
            start = datetime.fromisoformat(field.data or "")
        except ValueError:
            raise ValidationError("That time is not valid. Choose one of the times shown.") from None
        if start.tzinfo is None:
            raise ValidationError("That time is not valid. Choose one of the times shown.")
        try:
            self.slot_start = start.astimezone(UTC)
        except OverflowError:
            # A real time, only past either end of what UTC can hold here: one no page
            # offers, so it is refused as not offered (409), not as malformed (400).
            edge = datetime.min if start.year == 1 else datetime.max
            self.slot_start = edge.replace(tzinfo=UTC)

    def validate_timezone(self, field: StringField) -> None:
        if not is_valid_zone(field.data):
            raise ValidationError("Choose a valid time zone.")


class BookingForm(SlotForm):
    name = StringField(
        "Your name",
        validators=[DataRequired("Enter your name."), Length(max=120), one_line],
        filters=[strip],
    )
    email = EmailField(
        "Email",
        validators=[
            DataRequired("Enter your email address."),
            Length(max=254),
            one_line,
            EmailAddress("Enter a valid email address, like name@example.com."),
        ],
        filters=[strip],
    )
    notes = TextAreaField(
        "Anything to share before the meeting? (optional)",
        validators=[Optional(), Length(max=2000), plain_text],
        filters=[strip],
    )


class CancelForm(SignedForm):
    reason = TextAreaField(
        "Reason (optional, sent to the organiser)",
        validators=[Optional(), Length(max=1000), plain_text],
        filters=[strip],
    )
