"""Returnees in the admin: found by number or referral code, their file, and erasure on request.

A number typed in the search is posted, normalised and replaced by its keyed hash, exactly as
the returnee table stores it: it never reaches a URL, a log, or a LIKE over numbers. The file
is found by id afterwards. Every view of a file is audited; so is an erasure.
"""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from wtforms import Form, StringField, ValidationError

from infra.referral_code import is_code
from models.admin import audit
from models.phone import InvalidPhone, PhoneNumber
from models.referral import Referral
from models.returnee import ConsentRecord, Returnee
from models.ussd import UssdSession
from services.erasure import erase_returnee
from web.admin.access import EVERYONE, STAFF, bp, current_user, require
from web.admin.forms import field_errors, strip
from web.admin.i18n import _
from web.admin.masking import person
from web.admin.referrals import STATUS_LABELS, directory
from web.admin.ussd import not_for_providers
from web.context import sira
from web.db import get_or_404, get_session

SESSIONS_SHOWN = 20
NOT_FOUND = _("No returnee found.")
BAD_PHONE = _("Invalid phone number.")
BAD_CODE = _("A referral code has 5 letters or digits.")
NOTHING = _("Type a phone number or a referral code.")
CONFIRM_FIRST = _("Tick the box to confirm the erasure.")
# A viewer sees numbers masked: searching by number would let them try the hidden digits.
STAFF_ONLY_PHONE = _("Only coordinators search by phone number; search by referral code.")
DONE = {"erased": _("The returnee's data has been erased.")}


class SearchForm(Form):
    """A phone number (looked up by its keyed hash) or, when none is typed, a referral code."""

    phone = StringField(filters=[strip(64)])
    code = StringField(filters=[strip(64)])
    digest: str | None = None

    def validate_phone(self, field: StringField) -> None:
        if field.data:
            try:
                self.digest = PhoneNumber.parse(field.data[:32], sira().settings).digest
            except InvalidPhone:
                raise ValidationError(BAD_PHONE) from None

    def validate_code(self, field: StringField) -> None:
        code = field.data.upper()
        if self.phone.data:
            return  # a number was typed: it is what is searched
        if not code:
            raise ValidationError(NOTHING)
        if not is_code(code):
            raise ValidationError(BAD_CODE)


def find_returnee(form: SearchForm) -> Returnee | None:
    """The returnee for a checked search form's number or referral code."""
    session = get_session()
    if form.digest is not None:
        return session.scalar(select(Returnee).where(Returnee.phone_hash == form.digest))
    return session.scalar(
        select(Returnee)
        .join(Referral, Referral.returnee_id == Returnee.id)
        .where(Referral.code == form.code.data.upper())
    )


@bp.get("/returnees")
@require(*EVERYONE)
def returnees() -> ResponseReturnValue:
    """The search form; there is no list of everyone, one finds a person or no one."""
    not_for_providers()
    return render_template("admin/returnees.html", done=DONE.get(request.args.get("done", "")))


@bp.post("/returnees")
@require(*EVERYONE)
def returnees_search() -> ResponseReturnValue:
    not_for_providers()
    form = SearchForm(request.form)
    if form.phone.data and current_user().role not in STAFF:
        return render_template("admin/returnees.html", error=STAFF_ONLY_PHONE), 403
    found = find_returnee(form) if form.validate() else None
    if found is None:
        error = next(iter(field_errors(form).values()))[0] if form.errors else NOT_FOUND
        return render_template("admin/returnees.html", error=error, code=form.code.data[:8]), 200
    return redirect(url_for("admin.returnee", returnee_id=found.id))


def returnee_or_404(returnee_id: int) -> Returnee:
    not_for_providers()
    return get_or_404(Returnee, returnee_id)


@bp.get("/returnees/<int:returnee_id>")
@require(*EVERYONE)
def returnee(returnee_id: int) -> ResponseReturnValue:
    """Profile, consent history, referrals and latest USSD sessions; the view is audited."""
    user, session = current_user(), get_session()
    found = returnee_or_404(returnee_id)
    shown = person(found, user)
    referrals = list(
        session.scalars(
            select(Referral).where(Referral.returnee_id == found.id).order_by(Referral.created_at.desc())
        )
    )
    sessions = list(
        session.scalars(
            select(UssdSession)
            .where(UssdSession.phone_hash == found.phone_hash)
            .order_by(UssdSession.started_at.desc())
            .limit(SESSIONS_SHOWN)
        )
    )
    consents = list(
        session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.returnee_id == found.id)
            .order_by(ConsentRecord.id.desc())
        )
    )
    categories, regions, providers = directory(session)
    audit(session, user.id, "returnee.view", "returnee", found.id, masked=shown.masked)
    session.commit()
    return render_template(
        "admin/returnee.html", returnee=found, person=shown, referrals=referrals, sessions=sessions,
        consents=consents, categories=categories, regions=regions, providers=providers, statuses=STATUS_LABELS,
        can_erase=user.role in STAFF, sessions_shown=SESSIONS_SHOWN,
    )  # fmt: skip


@bp.route("/returnees/<int:returnee_id>/erase", methods=["GET", "POST"])
@require(*EVERYONE)
def erase(returnee_id: int) -> ResponseReturnValue:
    """Erasure on request: a confirmation page, then the same erasure as the returnee's own SMS.

    The referrals stay anonymised for the figures; the phone's cached USSD state goes too, so
    the next dial meets a stranger.
    """
    user, session = current_user(), get_session()
    found = returnee_or_404(returnee_id)
    if user.role not in STAFF:
        abort(403)
    shown = person(found, user)
    if request.method == "GET" or request.form.get("confirm") != "1":
        error = CONFIRM_FIRST if request.method == "POST" else None
        count = session.scalar(select(Referral.id).where(Referral.returnee_id == found.id).limit(1))
        audit(session, user.id, "returnee.view", "returnee", found.id, masked=shown.masked, page="erase")
        session.commit()
        return render_template(
            "admin/returnee_erase.html",
            returnee=found,
            person=shown,
            error=error,
            has_referrals=count is not None,
        ), 400 if error else 200
    digest = found.phone_hash
    referrals = list(session.scalars(select(Referral.id).where(Referral.returnee_id == found.id)))
    erase_returnee(session, found, actor=f"user:{user.id}", channel="web")
    audit(session, user.id, "returnee.erase", "returnee", returnee_id, referrals=len(referrals))
    session.commit()
    store = sira().ussd_store
    store.forget_profile(digest)
    store.forget_phone(digest)
    return redirect(url_for("admin.returnees", done="erased"))
