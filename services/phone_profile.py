"""What a USSD dial needs to know of a phone, read from the database: a returnee's language,
registration and latest referrals (the newest marked `more` when a follow-up answer asked for
other help and no request came since), or, for a provider's registered number, its open referrals.

A provider's number is a provider first, whatever else it is: its session starts on its own
menu, never the returnees'. Its open referrals change with every assignment, re-route and
deadline, so the host reads them at each dial and never caches them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Referral
from models import returnee as returnees
from models.directory import Category, Provider, ProviderNumber, Region
from models.follow_up import wants_new_request_clause
from models.referral import Status, open_clause


def read(session: Session, digest: str) -> dict | None:
    """The phone's profile by its keyed hash; None for a number Sira knows nothing of."""
    number = session.execute(  # one round trip: the provider's language with its number
        select(ProviderNumber.provider_id, Provider.language)
        .join(Provider, Provider.id == ProviderNumber.provider_id)
        .where(ProviderNumber.phone_hash == digest)
    ).first()
    if number is not None:
        provider_id, language = number
        return {"language": language, "registered": False, "referrals": [],
                "provider": True, "assigned": assigned(session, provider_id)}  # fmt: skip
    found = returnees.profile(session, digest)
    if found is None:
        return None
    referrals = latest_referrals(session, found.id) if found.registered else []
    if referrals and session.scalar(select(wants_new_request_clause(found.id))):
        referrals[0]["more"] = True  # the main menu offers a new request until one is made
    return {"language": found.language, "registered": found.registered, "referrals": referrals}


def assigned(session: Session, provider_id: int) -> list[dict[str, object]]:
    """A provider's open referrals, oldest first, for its focal points' menu: code, the need's
    neutral label and the region as its SMS alert gave them, and status; never who asked."""
    rows = session.execute(
        select(Referral.code, Category.sms_label, Region.name, Referral.status)
        .join(Category, Category.code == Referral.category)  # the need it was routed as, as in its alert
        .outerjoin(Region, Region.code == Referral.region)
        .where(Referral.provider_id == provider_id, open_clause())
        .order_by(Referral.id)
        .limit(50)
    )
    return [{"code": code, "category": category, "region": region or "-", "status": status}
            for code, category, region, status in rows]  # fmt: skip


def latest_referrals(session: Session, returnee_id: int) -> list[dict[str, object]]:
    """The returnee's latest referrals, for "My requests": code, status, whether it is still
    open, and the need's neutral label (as in SMS: health and psychosocial needs read "support"
    on a phone others may hold)."""
    rows = session.execute(
        select(Referral.code, Category.sms_label, Referral.status, Referral.provider_id)
        .join(Category, Category.code == Referral.requested_category)
        .where(Referral.returnee_id == returnee_id)
        .order_by(Referral.id.desc())
        .limit(20)
    )
    return [
        {"code": code, "category": category, "status": status, "open": Status(status).is_open(provider)}
        for code, category, status, provider in rows
    ]
