"""Referrals as CSV, with the list's filters: facts about referrals, never about people.

No name, no phone number, no returnee id: a file leaves the system and is forwarded, so it holds
what a report needs (codes, dates, status, need, region, provider, times) and nothing that
identifies a returnee. Rows are streamed from a server-side cursor, so the first bytes leave
at once and memory stays flat however many referrals match. Every export is audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from flask import Response, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from models.admin import audit
from models.base import as_utc, utcnow
from models.referral import Referral, ReferralEvent, Status
from web.admin.access import EVERYONE, bp, current_user, require
from web.admin.referrals import Filters, directory, visible
from web.context import sira
from web.db import get_session

COLUMNS = ("code", "created_at", "status", "category", "region", "provider", "assigned_at",
           "accepted_at", "hours_to_acceptance", "last_change")  # fmt: skip
BATCH = 1000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as formulas


def stamp(moment: datetime | None) -> str:
    """ISO 8601 in UTC to the second (isoformat: strftime costs more than the rest of the row)."""
    return as_utc(moment).replace(tzinfo=None, microsecond=0).isoformat() + "Z" if moment else ""


def cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


@bp.get("/referrals.csv")
@require(*EVERYONE)
def referrals_csv() -> ResponseReturnValue:
    """What the list shows with the same filters, all pages; a provider gets its own referrals only."""
    user, session = current_user(), get_session()
    settings = sira().settings
    filters = Filters.from_args(request.args)
    accepted_at = (
        select(func.min(ReferralEvent.at))
        .where(ReferralEvent.referral_id == Referral.id, ReferralEvent.to_status == Status.ACCEPTED)
        .correlate(Referral)
        .scalar_subquery()
    )
    query = filters.apply(visible(user), settings.reminder_after_hours).with_only_columns(
        Referral.code, Referral.created_at, Referral.status, Referral.category, Referral.region,
        Referral.provider_id, Referral.assigned_at, accepted_at, Referral.updated_at,
    )  # fmt: skip
    query = query.order_by(Referral.created_at.desc(), Referral.id.desc())
    _categories, _regions, providers = directory(session)
    audit(session, user.id, "export", "referrals", None, **filters.args())
    session.commit()

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        yield buffer.getvalue()  # the download starts now, whatever the query takes
        buffer.seek(0)
        buffer.truncate()
        # Core rows from a server-side cursor: no ORM objects, BATCH rows in memory at a time.
        result = session.connection().execution_options(yield_per=BATCH).execute(query)
        for batch in result.partitions(BATCH):
            for code, created, status, category, region, provider_id, assigned, accepted, changed in batch:
                hours = (as_utc(accepted) - as_utc(created)).total_seconds() / 3600 if accepted else None
                writer.writerow((
                    code, stamp(created), status, category, region or "",
                    cell(providers.get(provider_id, "")) if provider_id else "", stamp(assigned),
                    stamp(accepted), "" if hours is None else f"{hours:.2f}", stamp(changed),
                ))  # fmt: skip
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    name = f"sira-referrals-{utcnow().strftime('%Y%m%d-%H%M')}.csv"
    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
