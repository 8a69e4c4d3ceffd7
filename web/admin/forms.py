"""The admin's forms on WTForms: fields, filters and checks declared, not read by hand.

Plain `wtforms.Form` fed with `request.form`: the CSRF token stays the admin's own, checked for
every POST in `access.load_session` against the Redis-backed session, so WTForms' CSRF (and
Flask-WTF's, which wants Flask's cookie session) is not used. Messages are the admin catalog's
English ids; the templates translate them (`_()`), with the values a `Message` carries.
"""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict
from wtforms import Form, PasswordField, ValidationError

from models.admin import MIN_PASSWORD_LENGTH, Weakness, password_weakness
from web.admin.i18n import _

FieldErrors = dict[str, tuple[str, dict[str, Any]]]  # field name: (msgid, its values)

PASSWORD_TOO_SHORT = _("The password is too short: at least %(count)s characters.")
PASSWORD_GUESSABLE = _("This password is too common or too easy to guess: choose another.")
PASSWORDS_DIFFER = _("The two new passwords are not the same.")


class Message(str):
    """A message id with the values its `%(name)s` placeholders take once translated."""

    values: dict[str, Any]

    def __new__(cls, msgid: str, **values: Any) -> Message:
        made = super().__new__(cls, msgid)
        made.values = values
        return made


def posted(form_class: type[Form], formdata: MultiDict, **context: Any) -> Any:
    """A form filled from the request, with what its checks need (a session, an id) set on it."""
    form = form_class(formdata=formdata)
    for name, value in context.items():
        setattr(form, name, value)
    return form


def field_errors(form: Form) -> FieldErrors:
    """The first message of each field in error, as the templates' `field_error` shows them."""
    return {
        name: (str(errors[0]), getattr(errors[0], "values", {}))
        for name, errors in form.errors.items()
        if errors
    }


def squash(limit: int) -> Any:
    """A filter: inner runs of white space made one space, ends trimmed, cut at `limit`."""
    return lambda value: " ".join((value or "").split())[:limit]


def strip(limit: int) -> Any:
    return lambda value: (value or "").strip()[:limit]


def cut(limit: int) -> Any:
    return lambda value: (value or "")[:limit]


def strong_password(hint_field: str | None = None) -> Any:
    """A check: the password policy (`models.admin.password_weakness`), the email as a hint."""

    def check(form: Form, field: Any) -> None:
        hints = [form[hint_field].data] if hint_field else list(getattr(form, "hints", []))
        weakness = password_weakness(field.data or "", *hints)
        if weakness is Weakness.TOO_SHORT:
            raise ValidationError(Message(PASSWORD_TOO_SHORT, count=MIN_PASSWORD_LENGTH))
        if weakness is Weakness.GUESSABLE:
            raise ValidationError(PASSWORD_GUESSABLE)

    return check


def same_as(other: str) -> Any:
    def check(form: Form, field: Any) -> None:
        if field.data != form[other].data:
            raise ValidationError(PASSWORDS_DIFFER)

    return check


class NewPasswordForm(Form):
    """A new password typed twice (reset by link); `hints` holds the account's email."""

    new_password = PasswordField(filters=[cut(1024)], validators=[strong_password()])
    new_password2 = PasswordField(filters=[cut(1024)], validators=[same_as("new_password")])


class ChangePasswordForm(NewPasswordForm):
    """The current password, then the new one twice; the current one is checked by the view."""

    current_password = PasswordField(filters=[cut(1024)])
