"""Who is asking: the admin blueprint, its server-side session, CSRF, roles, login and logout.

Every view declares the roles it admits with `@require(...)`; a test checks that none is left
without. Objects are checked as well as pages (see `referrals.referral_or_404`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from models.admin import Role, User, audit, find_user, spend_password_check
from models.base import utcnow
from web.admin.i18n import _, choose_language, language
from web.admin.inputs import MAX_ID
from web.admin.sessions import AdminSession, SessionStore
from web.context import sira
from web.db import get_session

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")

COOKIE = "sira_admin"
# Before login, the forms' CSRF token is derived from this cookie's random value: an anonymous
# visitor (or a script asking for the login page in a loop) costs no session in Redis.
FORM_COOKIE = "sira_admin_form"
LOGIN_FAILED = _("Wrong email or password.")
LOGIN_THROTTLED = _("Too many failed attempts from here: wait a few minutes before trying again.")
LOGIN_BUSY = _("Too many sign-ins at once: try again in a few seconds.")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
STAFF = (Role.ADMIN, Role.COORDINATOR)
# Every role that reads the admin's pages; a reception agent registers returnees and sees nothing else.
EVERYONE = tuple(r for r in Role if r != Role.AGENT)
ANY_ROLE = tuple(Role)  # signing out and the start page


def store() -> SessionStore:
    return sira().admin_sessions


def current_user() -> User | None:
    return g.get("admin_user")


def security_headers(response: Response) -> Response:
    """On every /admin response, errors and unknown URLs included (hence an app-wide hook)."""
    if request.path == "/admin" or request.path.startswith("/admin/"):
        response.headers.update(SECURITY_HEADERS)
        # The stylesheet may be cached (slow links); pages may hold personal data and may not.
        if request.endpoint != "admin.static":
            response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_request
def load_session() -> None:
    """Find the session and its user; refuse any POST whose CSRF token is not the session's."""
    g.admin_session, g.admin_user, g.admin_lang = None, None, language()
    if request.endpoint == "admin.static":
        return
    if any(isinstance(v, int) and v > MAX_ID for v in (request.view_args or {}).values()):
        abort(404)  # an id no row can have: the database would refuse even to compare it
    if any("\x00" in v for v in (*request.args.values(), *request.form.values(), request.path)):
        abort(400)  # no text we store or look up holds a NUL, and PostgreSQL refuses them
    session = store().load(request.cookies.get(COOKIE, ""))
    if session is not None and session.user_id is not None:
        user = get_session().get(User, session.user_id)
        if user is None or not user.active:
            store().end(session)
            session = None
        else:
            g.admin_user = user
    g.admin_session = session
    nonce = request.cookies.get(FORM_COOKIE, "")
    g.form_nonce = nonce if session is None and 32 <= len(nonce) <= 64 else None
    if request.method == "POST":
        sent, expected = request.form.get("csrf_token", "").encode(), csrf_token().encode()
        if not expected or not hmac.compare_digest(sent, expected):
            abort(400)


def csrf_token() -> str:
    """The session's token once signed in; before, one bound to the form cookie; else none."""
    session: AdminSession | None = g.get("admin_session")
    if session is not None:
        return session.csrf
    nonce = g.get("form_nonce")
    if not nonce:
        return ""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"admin-form:" + nonce.encode(), hashlib.sha256).hexdigest()


@bp.context_processor
def template_helpers() -> dict[str, Any]:
    return {"csrf_token": csrf_token(), "user": g.get("admin_user"), "Role": Role}


def require(
    *roles: Role,
) -> Callable[[Callable[..., ResponseReturnValue]], Callable[..., ResponseReturnValue]]:
    """Admit only signed-in users with one of `roles`: others are sent to login (GET) or refused."""

    def decorator(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
        @wraps(view)
        def guarded(**kwargs: Any) -> ResponseReturnValue:
            user = current_user()
            if user is None:
                if request.method == "GET":
                    return redirect(url_for("admin.login", next=request.full_path))
                abort(401)
            if user.role not in roles:
                abort(403)
            return view(**kwargs)

        guarded.admin_roles = roles  # type: ignore[attr-defined]
        return guarded

    return decorator


def set_cookie(response: Response, session_id: str, name: str = COOKIE) -> Response:
    response.set_cookie(
        name,
        session_id,
        path="/admin",
        secure=current_app.config.get("ADMIN_COOKIE_SECURE", True),
        httponly=True,
        samesite="Lax",
    )
    return response


def safe_next(target: str | None) -> str:
    """Only our own admin pages: an open redirect after login is a phishing tool.

    A control character (a decoded %0A from an edited address) cannot go in a Location header.
    """
    if (
        target
        and target.startswith("/admin/")
        and not target.startswith("/admin//")
        and "\\" not in target
        and target.isprintable()
    ):
        return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form; the same answer for an unknown email or a wrong password (see throttle.py)."""
    if current_user() is not None:
        return redirect(url_for("admin.index"))
    if request.method == "GET":
        new_nonce = g.admin_session is None and g.form_nonce is None
        if new_nonce:
            g.form_nonce = secrets.token_urlsafe(32)
        # The front sends back here, with `paced`, an attempt it refused in a flood (deploy/nginx).
        error = LOGIN_BUSY if "paced" in request.args else None
        page = render_template("admin/login.html", next=request.args.get("next", ""), error=error)
        response = Response(page)
        return set_cookie(response, g.form_nonce, FORM_COOKIE) if new_nonce else response
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:1024]
    address, throttle = request.remote_addr or "", sira().login_throttle
    wait = throttle.wait_seconds(address, email)
    if wait:  # no password check at all: a guesser spends none of our CPU
        return login_refused(LOGIN_THROTTLED, email, 429, wait)
    db, now = get_session(), utcnow()
    user = find_user(db, email)
    with throttle.password_check() as turn:
        if not turn:
            return login_refused(LOGIN_BUSY, email, 503, 5)
        if user is not None and user.active:
            matches = user.password_matches(password)
        else:
            spend_password_check(password)
            matches = False
    if matches and user is not None:
        throttle.succeeded(address, email)
        user.record_login(now)
        audit(db, user.id, "login")
        db.commit()
        if g.admin_session is not None:
            store().end(g.admin_session)
        session_id, _ = store().start(user.id)
        response = set_cookie(redirect(safe_next(request.form.get("next"))), session_id)
        response.delete_cookie(FORM_COOKIE, path="/admin")
        return response
    throttle.failed(address, email)
    audit(db, user.id if user else None, "login.failed")
    db.commit()
    return login_refused(LOGIN_FAILED, email, 200)


def login_refused(error: str, email: str, status: int, retry_after: int = 0) -> ResponseReturnValue:
    """The login form again, with why; a throttled or busy answer says when to come back."""
    page = render_template("admin/login.html", error=error, email=email, next=request.form.get("next"))
    return page, status, {"Retry-After": str(retry_after)} if retry_after else {}


@bp.post("/logout")
@require(*ANY_ROLE)
def logout() -> ResponseReturnValue:
    """End the session in Redis, so a copy of the cookie is worthless from now on."""
    db = get_session()
    audit(db, current_user().id, "logout")
    db.commit()
    store().end(g.admin_session)
    response = redirect(url_for("admin.login"))
    response.delete_cookie(COOKIE, path="/admin")
    return response


@bp.post("/language")
def set_language() -> ResponseReturnValue:
    """Signed in or not (the login page offers it too); the CSRF check applies as to any POST."""
    return choose_language(safe_next(request.form.get("next")))


@bp.get("/")
@require(*ANY_ROLE)
def index() -> ResponseReturnValue:
    """Staff and viewers start on the dashboard; a provider's focal point on its referrals; an
    agent on the registration form."""
    if current_user().role == Role.PROVIDER:
        return redirect(url_for("admin.referrals"))
    if current_user().role == Role.AGENT:
        return redirect(url_for("admin.register"))
    return redirect(url_for("admin.dashboard"))


ERRORS = {
    400: _("This form has expired or is invalid: reload the page."),
    401: _("Your session has ended: sign in again."),
    403: _("Access denied."),
    404: _("Page not found."),
    409: _("This action is not possible in the current state."),
    503: _("Service unavailable, try again later."),
}


def error_page(status: int) -> ResponseReturnValue:
    return render_template("admin/error.html", status=status, message=ERRORS[status]), status


for _status in (400, 401, 403, 404, 409):
    bp.register_error_handler(_status, lambda exc, status=_status: error_page(status))


@bp.errorhandler(RedisError)
def redis_down(_exc: RedisError) -> ResponseReturnValue:
    return error_page(503)
