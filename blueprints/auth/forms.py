"""Account forms, protected by the session's CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from oncecal.email_addresses import EmailAddress
from oncecal.forms import one_line, strip
from oncecal.services.owners import MIN_PASSWORD_LENGTH

NEW_PASSWORD = [
    DataRequired("Choose a password."),
    Length(min=MIN_PASSWORD_LENGTH, max=200, message=f"Use at least {MIN_PASSWORD_LENGTH} characters."),
]


class SignupForm(FlaskForm):
    name = StringField(
        "Your name", [DataRequired("Enter your name."), Length(max=120), one_line], filters=[strip]
    )
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
    password = PasswordField("Password", NEW_PASSWORD)


class LoginForm(FlaskForm):
    email = EmailField("Email", [DataRequired("Enter your email."), one_line], filters=[strip])
    password = PasswordField("Password", [DataRequired("Enter your password.")])


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", [DataRequired("Enter your current password.")])
    new = PasswordField("New password", NEW_PASSWORD)
    confirm = PasswordField(
        "Repeat the new password", [EqualTo("new", "The two new passwords differ."), Optional()]
    )


class ForgotForm(FlaskForm):
    email = EmailField(
        "Email", [DataRequired("Enter your email."), Length(max=254), one_line], filters=[strip]
    )


class ResetForm(FlaskForm):
    new = PasswordField("New password", NEW_PASSWORD)
    confirm = PasswordField(
        "Repeat the new password", [EqualTo("new", "The two new passwords differ."), Optional()]
    )
