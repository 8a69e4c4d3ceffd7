"""Admin accounts, for admins: create, change role, disable or enable, unlock.

Disabling ends the user's sessions in Redis at once (a stolen cookie dies with the account).
An admin cannot disable or demote themselves: the last admin would lock everyone out. A
generated password is shown once, on the page that answers the creation, and stored nowhere.
"""

from __future__ import annotations

import re
import secrets

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import Form, PasswordField, StringField, ValidationError
from wtforms.validators import Optional

from models.admin import MIN_PASSWORD_LENGTH, Role, User, audit, find_user, normalise_email
from models.base import utcnow
from models.directory import Provider
from web.admin.access import bp, current_user, require, store
from web.admin.forms import FieldErrors, cut, field_errors, posted, strong_password
from web.admin.i18n import _
from web.admin.inputs import number
from web.admin.labels import ROLES
from web.db import get_or_404, get_session

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ROLE_LABELS = ROLES
DONE = {
    "created": _("User created."),
    "role": _("Role changed."),
    "disabled": _("User disabled: their sessions have ended."),
    "enabled": _("User enabled."),
    "unlocked": _("User unlocked."),
}
NOT_YOURSELF = _("You cannot disable or demote yourself: ask another administrator.")


def providers(session: Session) -> list[tuple[int, str]]:
    return [(i, n) for i, n in session.execute(select(Provider.id, Provider.name).order_by(Provider.name))]


class RoleForm(Form):
    """The role and, for a provider's focal point, its provider (`session` set by `posted`)."""

    role = StringField(filters=[cut(20)])
    provider_id = StringField(filters=[cut(12)])
    session: Session

    def validate_role(self, field: StringField) -> None:
        if field.data not in {r.value for r in Role}:
            raise ValidationError(_("Choose a role."))

    def validate_provider_id(self, field: StringField) -> None:
        if self.role.data != Role.PROVIDER:
            return
        provider_id = number(field.data)
        if provider_id is None or self.session.get(Provider, provider_id) is None:
            raise ValidationError(_("A provider focal point needs their provider."))

    def chosen_provider(self) -> int | None:
        return number(self.provider_id.data) if self.role.data == Role.PROVIDER else None


class NewUserForm(RoleForm):
    """An account: an email no one has, a role, and a password that the policy accepts, or none."""

    email = StringField(filters=[lambda v: normalise_email(v or "")[:300]])
    password = PasswordField(filters=[cut(1024)], validators=[Optional(), strong_password("email")])

    def validate_email(self, field: StringField) -> None:
        if not EMAIL.fullmatch(field.data) or len(field.data) > 254:
            raise ValidationError(_("Type a valid email address."))
        if find_user(self.session, field.data) is not None:
            raise ValidationError(_("This email already has an account."))


@bp.get("/users")
@require(Role.ADMIN)
def users() -> ResponseReturnValue:
    session = get_session()
    rows = list(session.scalars(select(User).order_by(User.active.desc(), User.email)))
    return render_template(
        "admin/users.html", users=rows, roles=ROLE_LABELS, providers=dict(providers(session)), now=utcnow(),
        done=DONE.get(request.args.get("done", "")),
    )  # fmt: skip


def new_user_page(form: dict, errors: FieldErrors, status: int) -> ResponseReturnValue:
    return render_template(
        "admin/user_new.html", form=form, errors=errors, roles=ROLE_LABELS, providers=providers(get_session()),
        min_length=MIN_PASSWORD_LENGTH,
    ), status  # fmt: skip


@bp.route("/users/new", methods=["GET", "POST"])
@require(Role.ADMIN)
def user_new() -> ResponseReturnValue:
    """Create an account; with no password typed, one is generated and shown this once."""
    if request.method == "GET":
        return new_user_page({}, {}, 200)
    session, admin = get_session(), current_user()
    form = posted(NewUserForm, request.form, session=session)
    email, password, role, provider_id = (
        form.email.data,
        form.password.data,
        form.role.data,
        form.chosen_provider(),
    )
    if not form.validate():
        shown = {"email": email, "role": role, "provider_id": provider_id}
        return new_user_page(shown, field_errors(form), 400)
    generated = None if password else secrets.token_urlsafe(12)
    user = User(email=email, role=role, provider_id=provider_id)
    user.set_password(password or generated)
    session.add(user)
    session.flush()
    audit(session, admin.id, "user.create", "user", user.id, role=role, provider_id=provider_id,
          generated_password=generated is not None)  # fmt: skip
    session.commit()
    if generated:
        return render_template("admin/user_created.html", created=user, password=generated)
    return redirect(url_for("admin.users", done="created"))


def refuse(message: str) -> ResponseReturnValue:
    return render_template("admin/error.html", status=409, message=message), 409


@bp.post("/users/<int:user_id>/role")
@require(Role.ADMIN)
def user_role(user_id: int) -> ResponseReturnValue:
    session, admin = get_session(), current_user()
    found = get_or_404(User, user_id)
    form = posted(RoleForm, request.form, session=session)
    if not form.validate():
        message = next(iter(field_errors(form).values()))[0]
        return render_template("admin/error.html", status=400, message=message), 400
    role, provider_id = form.role.data, form.chosen_provider()
    if found.id == admin.id and role != Role.ADMIN:
        return refuse(NOT_YOURSELF)
    before = found.role
    found.role, found.provider_id = role, provider_id
    audit(
        session, admin.id, "user.role", "user", found.id, before=before, after=role, provider_id=provider_id
    )
    session.commit()
    return redirect(url_for("admin.users", done="role"))


@bp.post("/users/<int:user_id>/active")
@require(Role.ADMIN)
def user_active(user_id: int) -> ResponseReturnValue:
    """Disable (every session ends now) or enable."""
    session, admin = get_session(), current_user()
    found = get_or_404(User, user_id)
    wanted = request.form.get("active")
    if wanted not in ("0", "1"):
        abort(400)
    if found.id == admin.id and wanted == "0":
        return refuse(NOT_YOURSELF)
    found.active = wanted == "1"
    ended = 0
    if not found.active:
        ended = store().end_all_for(found.id)
    audit(session, admin.id, "user.enable" if found.active else "user.disable", "user", found.id,
          sessions_ended=ended)  # fmt: skip
    session.commit()
    return redirect(url_for("admin.users", done="enabled" if found.active else "disabled"))


@bp.post("/users/<int:user_id>/unlock")
@require(Role.ADMIN)
def user_unlock(user_id: int) -> ResponseReturnValue:
    session, admin = get_session(), current_user()
    found = get_or_404(User, user_id)
    found.locked_until, found.failed_logins = None, 0
    audit(session, admin.id, "user.unlock", "user", found.id)
    session.commit()
    return redirect(url_for("admin.users", done="unlocked"))
