"""Who is asking: the admin blueprint, its server-side session, CSRF, roles, login and logout.

Every view declares the roles it admits with `@require(...)`; a test checks that none is left
without. Objects are checked as well as pages (see `referrals.referral_or_404`).
"""

from __future__ import annotations

import hmac
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
from web.db import get_session

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")

COOKIE = "sira_admin"
LOGIN_FAILED = _("Wrong email or password.")
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
    return current_app.extensions["sira.admin_sessions"]


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
    if request.method == "POST":
        sent = request.form.get("csrf_token", "").encode()
        if session is None or not hmac.compare_digest(sent, session.csrf.encode()):
            abort(400)


@bp.context_processor
def template_helpers() -> dict[str, Any]:
    session: AdminSession | None = g.get("admin_session")
    return {"csrf_token": session.csrf if session else "", "user": g.get("admin_user"), "Role": Role}


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


def set_cookie(response: Response, session_id: str) -> Response:
    response.set_cookie(
        COOKIE,
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
    """The login form; the same answer for an unknown email, a wrong password or a locked account."""
    if current_user() is not None:
        return redirect(url_for("admin.index"))
    if request.method == "GET":
        session_id = None
        if g.admin_session is None:
            # The form needs a CSRF token, so an anonymous session holds it until login.
            session_id, g.admin_session = store().start(None)
        response = Response(render_template("admin/login.html", next=request.args.get("next", "")))
        return set_cookie(response, session_id) if session_id else response
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:1024]
    db, now = get_session(), utcnow()
    user = find_user(db, email)
    if user is None:
        spend_password_check(password)
    elif user.active and not user.is_locked(now):
        if user.password_matches(password):
            user.record_login(now)
            audit(db, user.id, "login")
            db.commit()
            store().end(g.admin_session)
            session_id, _ = store().start(user.id)
            return set_cookie(redirect(safe_next(request.form.get("next"))), session_id)
        user.record_failed_login(now)
    else:
        spend_password_check(password)
    audit(db, user.id if user else None, "login.failed", locked=bool(user and user.is_locked(now)))
    db.commit()
    page = render_template("admin/login.html", error=LOGIN_FAILED, email=email, next=request.form.get("next"))
    return page, 200


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
