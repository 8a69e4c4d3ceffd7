"""Passwords after creation: each user changes their own; an admin makes a one-time reset link.

A reset link's token is random and shown once; Redis holds only its SHA-256, for
PASSWORD_RESET_MINUTES, and the first good use deletes it (GETDEL: two tabs cannot both use it).
A changed or reset password ends every session of the account (a stolen cookie dies with the old
password); the person changing their own keeps working in a new one. Every step is audited.
"""

from __future__ import annotations

import hashlib
import secrets

from flask import Response, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from infra.keys import admin_password_reset
from models.admin import MIN_PASSWORD_LENGTH, Role, User, audit
from web.admin.access import ANY_ROLE, COOKIE, FORM_COOKIE, bp, current_user, require, set_cookie, store
from web.admin.forms import ChangePasswordForm, FieldErrors, NewPasswordForm, field_errors, posted
from web.admin.i18n import _
from web.context import sira
from web.db import get_session

WRONG_CURRENT = _("The current password is wrong.")
BUSY = _("Too many sign-ins at once: try again in a few seconds.")


def token_key(token: str) -> str:
    return admin_password_reset(hashlib.sha256(token.encode()).hexdigest())


def change_page(errors: FieldErrors, status: int = 200, done: bool = False) -> ResponseReturnValue:
    page = render_template(
        "admin/password_change.html", errors=errors, done=done, min_length=MIN_PASSWORD_LENGTH
    )
    return page, status


@bp.route("/account/password", methods=["GET", "POST"])
@require(*ANY_ROLE)
def password_change() -> ResponseReturnValue:
    """The current password, then the new one twice; a wrong current one changes nothing."""
    if request.method == "GET":
        return change_page({}, done=request.args.get("done") == "1")
    db, user = get_session(), current_user()
    assert user is not None
    form = posted(ChangePasswordForm, request.form, hints=[user.email])
    valid = form.validate()
    with sira().login_throttle.password_check() as turn:
        if not turn:
            return change_page({"current_password": (BUSY, {})}, 503)
        matches = user.password_matches(form.current_password.data or "")
    errors = field_errors(form)
    if not matches:
        errors = {"current_password": (WRONG_CURRENT, {}), **errors}
        audit(db, user.id, "user.password.change", "user", user.id, changed=False)
        db.commit()
    if errors:
        return change_page(errors, 400)
    assert valid
    user.set_password(form.new_password.data)
    ended = store().end_all_for(user.id)
    audit(db, user.id, "user.password.change", "user", user.id, changed=True, sessions_ended=ended)
    db.commit()
    session_id, _session = store().start(user.id)
    return set_cookie(redirect(url_for("admin.password_change", done="1")), session_id, COOKIE)


@bp.post("/users/<int:user_id>/password-reset")
@require(Role.ADMIN)
def password_reset_link(user_id: int) -> ResponseReturnValue:
    """Make a one-time link for another user; shown once, on this page, and stored hashed."""
    db, admin = get_session(), current_user()
    assert admin is not None
    found = db.get(User, user_id)
    if found is None:
        abort(404)
    token = secrets.token_urlsafe(32)
    minutes = sira().settings.password_reset_minutes
    sira().redis.set(token_key(token), found.id, ex=minutes * 60)
    audit(db, admin.id, "user.password.reset_link", "user", found.id, minutes=minutes)
    db.commit()
    link = url_for("admin.password_reset", token=token, _external=True)
    return render_template("admin/password_reset_link.html", found=found, link=link, minutes=minutes)


def reset_page(errors: FieldErrors, status: int = 200, done: bool = False) -> ResponseReturnValue:
    page = render_template(
        "admin/password_reset.html", errors=errors, done=done, min_length=MIN_PASSWORD_LENGTH
    )
    return page, status


def link_dead() -> ResponseReturnValue:
    message = _("This link has expired or was already used: ask an administrator for a new one.")
    return render_template("admin/error.html", status=410, message=message), 410


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
def password_reset(token: str) -> ResponseReturnValue:
    """The link's page: a new password twice. Needs no sign-in; the token is the proof."""
    key, redis = token_key(token[:100]), sira().redis
    user_id = redis.get(key)
    db = get_session()
    found = db.get(User, int(user_id)) if user_id is not None else None
    if found is None or not found.active:
        return link_dead()
    if request.method == "GET":
        new_nonce = g.admin_session is None and g.form_nonce is None  # the anonymous form's CSRF
        if new_nonce:
            g.form_nonce = secrets.token_urlsafe(32)
        response = Response(*reset_page({}))
        return set_cookie(response, g.form_nonce, FORM_COOKIE) if new_nonce else response
    form = posted(NewPasswordForm, request.form, hints=[found.email])
    if not form.validate():
        return reset_page(field_errors(form), 400)
    if redis.getdel(key) is None:  # used meanwhile, or just expired
        return link_dead()
    found.set_password(form.new_password.data)
    found.locked_until, found.failed_logins = None, 0
    ended = store().end_all_for(found.id)
    audit(db, found.id, "user.password.reset", "user", found.id, sessions_ended=ended)
    db.commit()
    return reset_page({}, done=True)
