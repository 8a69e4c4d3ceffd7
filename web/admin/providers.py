"""Providers in the admin: their load and response times, and the directory kept up to date.

Staff create, edit, deactivate and reactivate; viewers read. A deactivated provider keeps its
history but gets no new referral (services.referrals.match_provider and the re-route form
both take active ones only). A bad form is shown again with its messages and nothing saved.
"""

from __future__ import annotations

import json
import re
import statistics
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from flows.i18n import LANGUAGES
from models.admin import audit
from models.base import as_utc, utcnow
from models.directory import Provider, Region
from models.referral import IN_HAND, Referral, ReferralEvent, Status
from services.directory_hsds import export_directory
from web.admin.access import EVERYONE, STAFF, bp, current_user, require
from web.admin.forms import FieldErrors, field_errors, posted
from web.admin.i18n import _
from web.admin.labels import category_names
from web.admin.provider_form import EMPTY, ProviderForm, values_of
from web.admin.ussd import not_for_providers
from web.db import get_or_404, get_session

RESPONSE_WINDOW = timedelta(days=90)
DONE = {
    "created": _("Provider created."),
    "saved": _("Provider saved."),
    "deactivated": _("Provider deactivated: it gets no new referrals."),
    "reactivated": _("Provider reactivated."),
}


@dataclass(frozen=True)
class Load:
    open: int
    today: int
    median_response: timedelta | None
    responses: int


def response_times(session: Session, since: datetime) -> dict[int, list[timedelta]]:
    """Per provider, the time from each assignment to its acceptance or decline by the provider.

    A decline recorded by the coordination (a withdrawal) is not the provider's answer. Each
    answer is paired in SQL with the latest assignment of that referral to that provider, so
    only one row per answer leaves the database.
    """
    assigned = aliased(ReferralEvent)
    assigned_at = (
        select(func.max(assigned.at))
        .where(
            assigned.referral_id == ReferralEvent.referral_id,
            assigned.to_status == Status.SENT,
            assigned.provider_id == ReferralEvent.provider_id,
            assigned.at <= ReferralEvent.at,
        )
        .correlate(ReferralEvent)
        .scalar_subquery()
    )
    rows = session.execute(
        select(ReferralEvent.provider_id, ReferralEvent.at, assigned_at).where(
            ReferralEvent.to_status.in_([Status.ACCEPTED, Status.DECLINED]),
            ReferralEvent.at >= since,
            ReferralEvent.from_status == Status.SENT,
            ReferralEvent.actor.startswith("provider:"),
            ReferralEvent.provider_id.is_not(None),
        )
    )
    times: dict[int, list[timedelta]] = {}
    for provider_id, at, sent_at in rows:
        if sent_at is not None:
            times.setdefault(provider_id, []).append(as_utc(at) - as_utc(sent_at))
    return times


def loads(session: Session) -> dict[int, Load]:
    """Open referrals, referrals assigned in the last day (what matching weighs) and response times."""
    now = utcnow()
    open_counts = dict(
        session.execute(
            select(Referral.provider_id, func.count())
            .where(Referral.provider_id.is_not(None), Referral.status.in_([s.value for s in IN_HAND]))
            .group_by(Referral.provider_id)
        ).all()
    )
    today = dict(
        session.execute(
            select(Referral.provider_id, func.count())
            .where(Referral.provider_id.is_not(None), Referral.assigned_at >= now - timedelta(days=1))
            .group_by(Referral.provider_id)
        ).all()
    )
    times = response_times(session, now - RESPONSE_WINDOW)
    ids = set(open_counts) | set(today) | set(times)
    return {
        i: Load(open_counts.get(i, 0), today.get(i, 0),
                statistics.median(times[i]) if times.get(i) else None, len(times.get(i, [])))
        for i in ids
    }  # fmt: skip


def duration(value: timedelta | None) -> str:
    """A response time as people say it: 45 min, 3 h 10, 2 d 4 h."""
    if value is None:
        return "-"
    minutes = int(value.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d}"
    return f"{minutes // 1440} j {minutes % 1440 // 60} h"


@bp.get("/providers")
@require(*EVERYONE)
def providers() -> ResponseReturnValue:
    not_for_providers()
    session = get_session()
    rows = list(session.scalars(select(Provider).order_by(Provider.active.desc(), Provider.name)))
    return render_template(
        "admin/providers.html", providers=rows, loads=loads(session), empty=Load(0, 0, None, 0),
        duration=duration, can_edit=current_user().role in STAFF, done=DONE.get(request.args.get("done", "")),
        window_days=RESPONSE_WINDOW.days,
    )  # fmt: skip


@bp.get("/providers/directory.hsds.json")
@require(*EVERYONE)
def providers_hsds() -> ResponseReturnValue:
    """The whole directory in HSDS 3.0, as `flask directory export` writes it (audited, as every export)."""
    not_for_providers()
    session, user = get_session(), current_user()
    package = export_directory(session)
    audit(session, user.id, "export", "directory", None, format="hsds-3.0")
    session.commit()
    name = f"sira-directory-hsds-{utcnow().strftime('%Y%m%d-%H%M')}.json"
    return Response(
        json.dumps(package, ensure_ascii=False, indent=1) + "\n",
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def slug_for(session: Session, name: str) -> str:
    """A stable, readable, unique identifier from the name (accents folded)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:50] or "provider"
    slug, n = base, 1
    while session.scalar(select(Provider.id).where(Provider.slug == slug)) is not None:
        n += 1
        slug = f"{base}-{n}"
    return slug


def form_page(
    values: dict[str, Any], errors: FieldErrors, provider: Provider | None, status: int = 200
) -> ResponseReturnValue:
    session = get_session()
    categories = list(category_names(session).items())
    regions = session.execute(select(Region.code, Region.name).order_by(Region.name)).all()
    return render_template(
        "admin/provider_form.html", values=values, errors=errors, provider=provider, categories=categories,
        regions=regions, languages=LANGUAGES,
    ), status  # fmt: skip


def staff_only() -> None:
    not_for_providers()
    if current_user().role not in STAFF:
        abort(403)


@bp.route("/providers/new", methods=["GET", "POST"])
@require(*EVERYONE)
def provider_new() -> ResponseReturnValue:
    staff_only()
    if request.method == "GET":
        return form_page(EMPTY, {}, None)
    session, user = get_session(), current_user()
    form = posted(ProviderForm, request.form, session=session)
    if not form.validate():
        return form_page(form.values(), field_errors(form), None, 400)
    provider = Provider(slug=slug_for(session, form.name.data))
    form.apply(provider)
    session.add(provider)
    session.flush()
    audit(session, user.id, "provider.create", "provider", provider.id)
    session.commit()
    form.forget_profiles()
    return redirect(url_for("admin.providers", done="created"))


@bp.route("/providers/<int:provider_id>/edit", methods=["GET", "POST"])
@require(*EVERYONE)
def provider_edit(provider_id: int) -> ResponseReturnValue:
    staff_only()
    session, user = get_session(), current_user()
    provider = get_or_404(Provider, provider_id)
    if request.method == "GET":
        return form_page(values_of(provider), {}, provider)
    form = posted(ProviderForm, request.form, session=session, provider_id=provider.id)
    if not form.validate():
        return form_page(form.values(), field_errors(form), provider, 400)
    changed = form.apply(provider)
    if changed:
        audit(session, user.id, "provider.update", "provider", provider.id, fields=changed)
    session.commit()
    form.forget_profiles()
    return redirect(url_for("admin.providers", done="saved"))


@bp.post("/providers/<int:provider_id>/active")
@require(*EVERYONE)
def provider_active(provider_id: int) -> ResponseReturnValue:
    """Deactivate (no new referrals; open ones stay with it) or reactivate."""
    staff_only()
    session, user = get_session(), current_user()
    provider = get_or_404(Provider, provider_id)
    wanted = request.form.get("active")
    if wanted not in ("0", "1"):
        abort(400)
    provider.active = wanted == "1"
    audit(session, user.id, "provider.reactivate" if provider.active else "provider.deactivate",
          "provider", provider.id)  # fmt: skip
    session.commit()
    return redirect(url_for("admin.providers", done="reactivated" if provider.active else "deactivated"))
