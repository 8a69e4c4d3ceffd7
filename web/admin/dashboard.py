"""The dashboard: what the programme did over a period, counted by the database.

Every figure is a GROUP BY or a COUNT; Python only adds up the few rows they return. Weeks
start on Monday, in UTC (Mali's time). The median time to acceptance is `percentile_cont` on
PostgreSQL; SQLite has no percentile, so it counts the rows and reads the middle one (or two)
with ORDER BY ... LIMIT 2 OFFSET n/2: the sort stays in the database and one row comes back.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from flask import Response, g, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import ColumnElement, Select, func, literal_column, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from wtforms import Form, StringField, ValidationError
from wtforms.validators import Regexp

from models.admin import Role, audit
from models.base import utcnow
from models.follow_up import OUTCOMES as FOLLOW_UP_OUTCOMES
from models.follow_up import FollowUp, FollowUpStatus
from models.messaging import OutboundSms, SmsStatus
from models.referral import Referral, ReferralEvent, Status
from models.returnee import Returnee
from models.ussd import NETWORKS, UssdSession
from web.admin.access import bp, current_user, require
from web.admin.forms import cut
from web.admin.i18n import _
from web.admin.inputs import day as parse_day
from web.admin.labels import FOLLOW_UP_STATUSES as FOLLOW_UP_LABELS
from web.admin.referrals import STATUS_LABELS, directory, overdue_clause, to_handle_clause
from web.context import sira
from web.db import get_session

DASHBOARD_ROLES = (Role.ADMIN, Role.COORDINATOR, Role.VIEWER)  # a provider's focal point has its list
DEFAULT_WEEKS = 12
MAX_DAYS = 3 * 366  # a longer period would draw a chart nobody can read
DELIVERED = "Success"
BAD_PERIOD = _("These dates cannot be read: showing the last 12 weeks.")
OUTCOME_TITLES = {"need": _("Follow-up outcomes by need"), "region": _("Follow-up outcomes by region"),
                  "provider": _("Follow-up outcomes by provider")}  # fmt: skip
TOO_LONG = _("The period is limited to three years: showing the last 12 weeks.")


TO_HANDLE_COUNTED = 99  # the header counts this many, then says "99+" (the list shows them all)


@bp.context_processor
def waiting_on_coordinators() -> dict[str, int | str | None]:
    """The header's count: referrals at the coordination desk, past a provider's deadline, flagged
    for a coordinator or whose follow-up asked for other help (`to_handle_clause`), so
    that staff see them from any page (a provider's focal point has its own list to watch, and a
    reception agent registers people, nothing else). Past `TO_HANDLE_COUNTED` it says "99+"."""
    user = g.get("admin_user")
    if user is None or user.role in (Role.PROVIDER, Role.AGENT):
        return {"to_handle": None}
    settings = sira().settings
    # Counted up to the cap only: every admin page shows it, and counting thousands of waiting
    # referrals on each page cost more than the page itself.
    waiting = (
        select(Referral.id)
        .where(to_handle_clause(settings.reminder_after_hours))
        .limit(TO_HANDLE_COUNTED + 1)
    )
    count = get_session().scalar(select(func.count()).select_from(waiting.subquery())) or 0
    return {"to_handle": count if count <= TO_HANDLE_COUNTED else f"{TO_HANDLE_COUNTED}+"}


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def readable_day(_form: Form, field: StringField) -> None:
    if field.data and parse_day(field.data) is None:
        raise ValidationError(BAD_PERIOD)


class PeriodForm(Form):
    """The dashboard's query: `from` and `to` (ISO days, either may be missing) and a region code."""

    start = StringField(name="from", filters=[cut(20)], validators=[readable_day])
    end = StringField(name="to", filters=[cut(20)], validators=[readable_day])
    # a region code, or nothing: never a formula (the CSV carries it)
    region = StringField(filters=[cut(20)], validators=[Regexp(r"[a-z0-9_-]*\Z", message=BAD_PERIOD)])


@dataclass(frozen=True)
class Period:
    """The filter: a period in whole days (both ends included) and, optionally, a region."""

    start: date
    end: date
    region: str = ""
    error: str = ""

    @classmethod
    def default(cls, today: date, region: str = "", error: str = "") -> Period:
        """Twelve whole weeks: this one and the eleven before it."""
        return cls(monday(today) - timedelta(weeks=DEFAULT_WEEKS - 1), today, region, error)

    @classmethod
    def from_args(cls, args: MultiDict, today: date) -> Period:
        """A date that cannot be read, an inverted or overlong period: the default, said so."""
        form = PeriodForm(args)
        form.validate()
        region = "" if form.region.errors else form.region.data
        if not form.start.data and not form.end.data:
            return cls.default(today, region)
        if form.start.errors or form.end.errors:
            return cls.default(today, region, BAD_PERIOD)
        start, end = parse_day(form.start.data), parse_day(form.end.data)
        end = end or today
        start = start or monday(end) - timedelta(weeks=DEFAULT_WEEKS - 1)
        if start > end:
            return cls.default(today, region, BAD_PERIOD)
        if (end - start).days > MAX_DAYS:
            return cls.default(today, region, TOO_LONG)
        return cls(start, end, region)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """Exclusive: the start of the day after the last one."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def args(self) -> dict[str, str]:
        values = {"from": self.start.isoformat(), "to": self.end.isoformat(), "region": self.region}
        return {k: v for k, v in values.items() if v}


OUTCOME_DIMENSIONS = ("need", "region", "provider")


def outcome_rates(counts: Counter[str]) -> dict[str, float | None]:
    """Each outcome's share of the follow-ups that have one (the ones still waiting are left out)."""
    done = sum(counts[s] for s in FOLLOW_UP_OUTCOMES)
    return {s.value: (counts[s] / done if done else None) for s in FOLLOW_UP_OUTCOMES}


@dataclass
class Figures:
    period: Period
    registered: int = 0
    referrals: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_region: Counter[str] = field(default_factory=Counter)
    weeks: list[tuple[date, int]] = field(default_factory=list)
    accepted: int = 0
    median_hours: float | None = None
    overdue: int = 0
    sms: Counter[str] = field(default_factory=Counter)  # total, accepted, delivered, failed, waiting
    costs: dict[str, Decimal] = field(default_factory=dict)
    uncosted: int = 0  # accepted messages whose cost the gateway did not state in a form we read
    by_network: Counter[str] = field(default_factory=Counter)  # USSD sessions, by network code
    # Follow-ups of the period's referrals: {dimension: {key: Counter of follow-up statuses}},
    # dimension need (category code), region (code) or provider (id as text).
    outcomes: dict[str, dict[str, Counter[str]]] = field(
        default_factory=lambda: {d: {} for d in OUTCOME_DIMENSIONS}
    )

    @property
    def delivery_rate(self) -> float | None:
        """Delivered among the messages the gateway accepted (the others never left)."""
        return self.sms["delivered"] / self.sms["accepted"] if self.sms["accepted"] else None


def week_of(column: ColumnElement, dialect: str) -> ColumnElement:
    """The Monday of a timestamp's week (UTC), as the database computes it."""
    if dialect == "postgresql":
        return func.date(func.date_trunc("week", func.timezone("UTC", column)))
    return func.date(column, "weekday 0", "-6 days")  # next Sunday (or today), back six days


def seconds_between(start: ColumnElement, end: ColumnElement, dialect: str) -> ColumnElement:
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def in_period(query: Select, period: Period) -> Select:
    query = query.where(Referral.created_at >= period.since, Referral.created_at < period.until)
    return query.where(Referral.region == period.region) if period.region else query


def median_seconds(session: Session, period: Period, dialect: str) -> tuple[int, float | None]:
    """How many referrals of the period were accepted, and the median time it took."""
    duration = seconds_between(Referral.created_at, ReferralEvent.at, dialect).label("seconds")
    accepted = in_period(
        select(duration).select_from(Referral).join(ReferralEvent, ReferralEvent.referral_id == Referral.id),
        period,
    ).where(
        ReferralEvent.to_status == Status.ACCEPTED,
        ReferralEvent.at
        >= period.since,  # implied (accepted after created), and lets the index bound the events
    )
    if dialect == "postgresql":
        sub = accepted.subquery()
        row = session.execute(
            select(func.count(), func.percentile_cont(0.5).within_group(sub.c.seconds)).select_from(sub)
        ).one()
        return int(row[0]), None if row[1] is None else float(row[1])
    count = session.scalar(select(func.count()).select_from(accepted.subquery())) or 0
    if not count:
        return 0, None
    middle = list(
        session.scalars(
            accepted.order_by(literal_column("seconds")).limit(2 - count % 2).offset((count - 1) // 2)
        )
    )
    return count, sum(float(v) for v in middle) / len(middle)


def parse_cost(text: str) -> tuple[str, Decimal] | None:
    """'XOF 25.0000' as the gateway writes it; anything else is counted as not costed."""
    currency, _sep, amount = text.strip().partition(" ")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return None
    return (currency, value) if currency.isalpha() and value.is_finite() else None


def sms_figures(session: Session, period: Period, figures: Figures) -> None:
    """Outgoing SMS of the period, grouped by state and cost string (a handful of rows)."""
    query = select(OutboundSms.status, OutboundSms.delivery_status, OutboundSms.cost, func.count()).where(
        OutboundSms.created_at >= period.since, OutboundSms.created_at < period.until
    )
    if period.region:
        query = query.join(Referral, Referral.id == OutboundSms.referral_id).where(
            Referral.region == period.region
        )
    query = query.group_by(OutboundSms.status, OutboundSms.delivery_status, OutboundSms.cost)
    for status, delivery, cost, count in session.execute(query):
        figures.sms["total"] += count
        if status in (SmsStatus.FAILED, SmsStatus.DEAD):
            figures.sms["refused"] += count
        if status != SmsStatus.ACCEPTED:
            continue
        figures.sms["accepted"] += count
        if delivery == DELIVERED:
            figures.sms["delivered"] += count
        elif delivery is not None and delivery not in ("Sent", "Submitted", "Buffered"):
            figures.sms["undelivered"] += count
        parsed = parse_cost(cost or "")
        if parsed is None:
            figures.uncosted += count
        elif parsed[1]:
            figures.costs[parsed[0]] = figures.costs.get(parsed[0], Decimal(0)) + parsed[1] * count


def compute(session: Session, period: Period, reminder_hours: int) -> Figures:
    """All the figures of the page, in eight small queries."""
    dialect = session.get_bind().dialect.name
    figures = Figures(period)
    registered = select(func.count()).where(
        Returnee.registered_at >= period.since, Returnee.registered_at < period.until
    )
    if period.region:
        registered = registered.where(Returnee.region == period.region)
    figures.registered = session.scalar(registered) or 0
    counts = in_period(
        select(Referral.status, Referral.category, Referral.region, func.count()), period
    ).group_by(Referral.status, Referral.category, Referral.region)
    for status, category, region, count in session.execute(counts):
        figures.referrals += count
        figures.by_status[status] += count
        figures.by_category[category] += count
        figures.by_region[region or ""] += count
    week = week_of(Referral.created_at, dialect).label("week")
    per_week = {
        date.fromisoformat(str(w)[:10]): n
        for w, n in session.execute(in_period(select(week, func.count()), period).group_by(week))
    }
    first, last = monday(period.start), monday(period.end)
    figures.weeks = [
        (first + timedelta(weeks=i), per_week.get(first + timedelta(weeks=i), 0))
        for i in range((last - first).days // 7 + 1)
    ]
    figures.accepted, seconds = median_seconds(session, period, dialect)
    figures.median_hours = None if seconds is None else seconds / 3600
    overdue = select(func.count()).select_from(Referral).where(overdue_clause(reminder_hours))
    if period.region:
        overdue = overdue.where(Referral.region == period.region)
    figures.overdue = session.scalar(overdue) or 0
    sms_figures(session, period, figures)
    sessions = select(UssdSession.network_code, func.count()).where(
        UssdSession.started_at >= period.since, UssdSession.started_at < period.until
    )
    if period.region:
        sessions = sessions.join(Returnee, Returnee.phone_hash == UssdSession.phone_hash).where(
            Returnee.region == period.region
        )
    for code, count in session.execute(sessions.group_by(UssdSession.network_code)):
        figures.by_network[code or ""] += count
    outcome_figures(session, period, figures)
    return figures


def outcome_figures(session: Session, period: Period, figures: Figures) -> None:
    """The follow-ups of the period's referrals, by status, for each need, region and provider."""
    query = in_period(
        select(Referral.category, Referral.region, Referral.provider_id, FollowUp.status, func.count()).join(
            FollowUp, FollowUp.referral_id == Referral.id
        ),
        period,
    ).group_by(Referral.category, Referral.region, Referral.provider_id, FollowUp.status)
    for category, region, provider_id, status, count in session.execute(query):
        keys = {"need": category, "region": region or "", "provider": str(provider_id or "")}
        for dimension, key in keys.items():
            figures.outcomes[dimension].setdefault(key, Counter())[status] += count


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    week: date
    count: int
    label: bool  # whether the week's date is written under the bar


CHART_WIDTH, CHART_HEIGHT = 600, 150  # SVG user units; the page scales the drawing to its width


def chart(weeks: list[tuple[date, int]]) -> tuple[list[Bar], int]:
    """One slot per week across a fixed width, bars scaled to the busiest week."""
    top = max((n for _w, n in weeks), default=0) or 1
    slot = CHART_WIDTH / max(len(weeks), 1)
    every = max(1, round(len(weeks) / 8))  # about eight dates under the axis, whatever the period
    bars = [
        Bar(
            x=round(i * slot + slot * 0.1, 2),
            y=round(CHART_HEIGHT - n * CHART_HEIGHT / top, 2),
            width=round(slot * 0.8, 2),
            height=round(n * CHART_HEIGHT / top, 2),
            week=w,
            count=n,
            label=(len(weeks) - 1 - i) % every == 0,
        )
        for i, (w, n) in enumerate(weeks)
    ]
    return bars, top


def period_and_figures() -> Figures:
    settings = sira().settings
    period = Period.from_args(request.args, utcnow().date())
    return compute(get_session(), period, settings.reminder_after_hours)


@bp.get("/dashboard")
@require(*DASHBOARD_ROLES)
def dashboard() -> ResponseReturnValue:
    """The period's figures; a provider's focal point is refused (403), as on any staff page."""
    figures = period_and_figures()
    categories, regions, providers = directory(get_session())
    bars, top = chart(figures.weeks)
    names = {"need": categories, "region": regions, "provider": {str(k): v for k, v in providers.items()}}
    return render_template(
        "admin/dashboard.html", f=figures, period=figures.period, categories=categories, regions=regions,
        statuses=STATUS_LABELS, bars=bars, chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT, chart_top=top,
        costs=sorted(figures.costs.items()), networks=NETWORKS, outcome_names=names,
        outcome_labels=FOLLOW_UP_LABELS, outcome_titles=OUTCOME_TITLES, outcome_rates=outcome_rates,
    )  # fmt: skip


def dashboard_rows(figures: Figures) -> list[tuple[str, str, str]]:
    """The page's figures as (figure, key, value): codes and numbers, for a spreadsheet."""
    p = figures.period
    rows = [("period", "from", p.start.isoformat()), ("period", "to", p.end.isoformat()),
            ("period", "region", p.region), ("returnees", "registered", str(figures.registered)),
            ("referrals", "total", str(figures.referrals))]  # fmt: skip
    rows += [("status", s, str(n)) for s, n in sorted(figures.by_status.items())]
    rows += [("category", c, str(n)) for c, n in sorted(figures.by_category.items())]
    rows += [("region", r, str(n)) for r, n in sorted(figures.by_region.items())]
    rows += [("week", w.isoformat(), str(n)) for w, n in figures.weeks]
    rows += [("ussd_sessions_network", c, str(n)) for c, n in sorted(figures.by_network.items())]
    median = "" if figures.median_hours is None else f"{figures.median_hours:.2f}"
    rows += [("acceptance", "accepted", str(figures.accepted)), ("acceptance", "median_hours", median),
             ("overdue", "now", str(figures.overdue))]  # fmt: skip
    rows += [
        ("sms", k, str(figures.sms[k])) for k in ("total", "accepted", "delivered", "undelivered", "refused")
    ]
    rate = figures.delivery_rate
    rows += [("sms", "delivery_rate", "" if rate is None else f"{rate:.4f}")]
    rows += [("sms_cost", currency, str(amount)) for currency, amount in sorted(figures.costs.items())]
    rows += [("sms_cost", "not_stated", str(figures.uncosted))]
    for dimension in OUTCOME_DIMENSIONS:  # e.g. follow_up_need, jobs:served, 3 and its rate 0.7500
        for key, counts in sorted(figures.outcomes[dimension].items()):
            rows += [(f"follow_up_{dimension}", f"{key}:{s}", str(counts[s])) for s in FollowUpStatus]
            rows += [
                (f"follow_up_rate_{dimension}", f"{key}:{s}", "" if rate is None else f"{rate:.4f}")
                for s, rate in outcome_rates(counts).items()
            ]
    return rows


def csv_text(rows: list[tuple[str, ...]] | list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


@bp.get("/dashboard.csv")
@require(*DASHBOARD_ROLES)
def dashboard_csv() -> ResponseReturnValue:
    """The same figures as the page, for a report; audited like every export."""
    figures = period_and_figures()
    session = get_session()
    audit(session, current_user().id, "export", "dashboard", None, **figures.period.args())
    session.commit()
    body = csv_text([("figure", "key", "value"), *dashboard_rows(figures)])
    name = f"sira-dashboard-{figures.period.start.isoformat()}-{figures.period.end.isoformat()}.csv"
    return Response(
        body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
