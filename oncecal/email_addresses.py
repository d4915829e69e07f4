"""The one judge of an entered email address: every form, the API and the CLI ask it."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from wtforms import Field, ValidationError

# RFC 2606 and RFC 6761 keep these top-level names for tests and documentation: no mail
# reaches them. example.com and its siblings are registered domains: only a DNS query (their
# null MX) could refuse them, and a booking never waits on DNS.
RESERVED_TOP_LEVEL = frozenset({"test", "example", "invalid", "localhost"})


class InvalidEmail(ValueError):
    """The text is not an address this deployment can send to."""

    def __init__(self, reserved_domain: str | None = None) -> None:
        self.reserved_domain = reserved_domain
        super().__init__(
            f"{reserved_domain} is reserved for tests and receives no email"
            if reserved_domain
            else "not an email address"
        )


def check_email_address(text: str, *, reserved_allowed: bool) -> None:
    """Refuse text that is not an email address, or names a reserved domain where not allowed.

    No DNS query: a booking must not wait on, or fail with, the invitee's mail server.
    """
    local, _, domain = text.rpartition("@")
    labels = domain.lower().split(".")
    # A reserved name stands after a domain (studio.test); a bare one (kim@example) is no address.
    reserved = len(labels) > 1 and labels[-1] in RESERVED_TOP_LEVEL
    checked = text
    if reserved:
        # email-validator refuses .invalid and .localhost outright and takes .test only in its
        # test environment, so a reserved top-level name is checked as if it were .test.
        checked = f"{local}@{'.'.join([*domain.split('.')[:-1], 'test'])}"
    try:
        validate_email(checked, check_deliverability=False, test_environment=reserved)
    except EmailNotValidError:
        raise InvalidEmail() from None
    if reserved and not reserved_allowed:
        raise InvalidEmail(domain.lower())


def reserved_domains_allowed() -> bool:
    """Tell whether this app takes reserved test domains: everywhere but production."""
    env_name: str = current_app.config["ENV_NAME"]
    return env_name != "production"


class EmailAddress:
    """A form validator: the field holds an address check_email_address takes."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, form: object, field: Field) -> None:
        if not field.data:
            return
        try:
            check_email_address(field.data, reserved_allowed=reserved_domains_allowed())
        except InvalidEmail as refused:
            if refused.reserved_domain:
                raise ValidationError(f"{refused}. Use a real address.") from None
            raise ValidationError(self.message) from None
