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

from models.admin import MIN_PASSWORD_LENGTH, Role, User, audit, find_user, normalise_email
from models.base import utcnow
from models.directory import Provider
from web.admin.access import bp, current_user, require, store
from web.admin.i18n import _
from web.admin.inputs import number
from web.admin.labels import ROLES
from web.db import get_session

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


def read_role(session: Session, form: dict) -> tuple[str, int | None, dict[str, str]]:
    """The role and, for a provider's focal point, its provider; errors by field."""
    errors: dict[str, str] = {}
    role, raw = form.get("role", ""), form.get("provider_id", "")
    provider_id = number(raw)
    if role not in {r.value for r in Role}:
        errors["role"] = _("Choose a role.")
    elif role == Role.PROVIDER:
        if provider_id is None or session.get(Provider, provider_id) is None:
            errors["provider_id"] = _("A provider focal point needs their provider.")
    else:
        provider_id = None
    return role, provider_id, errors


@bp.get("/users")
@require(Role.ADMIN)
def users() -> ResponseReturnValue:
    session = get_session()
    rows = list(session.scalars(select(User).order_by(User.active.desc(), User.email)))
    return render_template(
        "admin/users.html", users=rows, roles=ROLE_LABELS, providers=dict(providers(session)), now=utcnow(),
        done=DONE.get(request.args.get("done", "")),
    )  # fmt: skip


def new_user_page(form: dict, errors: dict[str, str], status: int) -> ResponseReturnValue:
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
    email = normalise_email(request.form.get("email", ""))[:300]
    password = request.form.get("password", "")[:1024]
    role, provider_id, errors = read_role(session, request.form)
    if not EMAIL.fullmatch(email) or len(email) > 254:
        errors["email"] = _("Type a valid email address.")
    elif find_user(session, email) is not None:
        errors["email"] = _("This email already has an account.")
    if password and len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = _("The password is too short.")
    if errors:
        shown = {"email": email, "role": role, "provider_id": provider_id}
        return new_user_page(shown, errors, 400)
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


def user_or_404(session: Session, user_id: int) -> User:
    found = session.get(User, user_id)
    if found is None:
        abort(404)
    return found


def refuse(message: str) -> ResponseReturnValue:
    return render_template("admin/error.html", status=409, message=message), 409


@bp.post("/users/<int:user_id>/role")
@require(Role.ADMIN)
def user_role(user_id: int) -> ResponseReturnValue:
    session, admin = get_session(), current_user()
    found = user_or_404(session, user_id)
    role, provider_id, errors = read_role(session, request.form)
    if errors:
        return render_template("admin/error.html", status=400, message=next(iter(errors.values()))), 400
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
    found = user_or_404(session, user_id)
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
    found = user_or_404(session, user_id)
    found.locked_until, found.failed_logins = None, 0
    audit(session, admin.id, "user.unlock", "user", found.id)
    session.commit()
    return redirect(url_for("admin.users", done="unlocked"))
