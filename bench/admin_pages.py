"""Admin page benchmark: every admin page on a database holding 100,000 referrals.

`python -m bench.admin_pages` (what `make bench-admin` runs) fills a throw-away database with
referrals, their events, returnees, SMS, USSD sessions and audit entries (COPY on PostgreSQL,
bulk Core inserts on SQLite), serves `app:create_app()` with gunicorn as deployed, signs in as
an admin and asks each page in turn, one request at a time, as a person clicking would.

Each request to a page is paired with one to the baseline, the login page of the same server
(template, session in Redis, no query), in alternating order, so drift weighs on both alike;
the report gives p50/p95 per page in ms, the ratio of p50s to the baseline's, and the verdict
against PRODUCT.md's target (every page under 300 ms). The exit status is 1 only if a page
did not answer 200.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.options import add_servers, add_services, run
from bench.ussd_load import bench_phone
from bench.ussd_steps import (
    Server,
    percentile,
    run_header,
    save_json,
    served,
    server_env,
    throwaway,
)
from config import parse_encryption_keys
from infra import referral_code
from infra.sealing import Keyring

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "admin_pages.json"
TARGET_MS = 300.0
ADMIN_EMAIL = "bench-admin@example.org"
ADMIN_PASSWORD = "bench admin password"
PAGE_SIZE = 50


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.admin_pages", description=__doc__.split("\n\n")[0])
    p.add_argument("--referrals", type=int, default=100_000, help="referrals in the database (100000)")
    p.add_argument("--requests", type=int, default=20, help="timed requests per page (20)")
    p.add_argument("--exports", type=int, default=3, help="timed CSV exports of every referral (3)")
    add_servers(p, "the admin")
    add_services(p, redis_db=12, results=RESULTS)
    args = p.parse_args(argv)
    if args.referrals < 100 or args.requests < 1 or args.exports < 1:
        p.error("need --referrals >= 100, --requests >= 1 and --exports >= 1")
    return args


# -- the data -------------------------------------------------------------------------


def codes(rng: random.Random, n: int) -> list[str]:
    """`n` distinct referral codes, as `models.referral.new_code` draws them."""
    base = len(referral_code.ALPHABET)
    out = []
    for number in rng.sample(range(base**referral_code.LENGTH), n):
        chars = []
        for _ in range(referral_code.LENGTH):
            number, digit = divmod(number, base)
            chars.append(referral_code.ALPHABET[digit])
        out.append("".join(chars))
    return out


def generate(n: int, directory: dict[str, Any], now: datetime, seed: int = 7) -> dict[str, list[tuple]]:
    """Rows for every table, spread over two years; statuses in the proportions a live service has."""
    rng = random.Random(seed)
    categories, regions = directory["categories"], directory["regions"]
    by_category: dict[str, list[int]] = directory["providers"]
    span = timedelta(weeks=104).total_seconds()
    people = n // 2
    returnees = []
    for i in range(1, people + 1):
        registered = now - timedelta(seconds=rng.random() * span)
        phone = bench_phone(i)  # one per returnee
        returnees.append((i, secrets.token_hex(32), phone, "fr", "Awa", rng.choice(regions), "25_34",
                          "v1", registered, registered, registered, registered))  # fmt: skip
    referrals, events, outbound = [], [], []
    statuses = ["closed"] * 35 + ["accepted"] * 20 + ["sent"] * 12 + ["cancelled"] * 8 + ["declined"] * 3
    statuses += ["expired"] * 2 + ["new"] * 2 + ["sent_old"] * 3
    for i, code in enumerate(codes(rng, n), start=1):
        returnee = (i - 1) // 2 + 1
        category = categories[(returnee * 2 + i) % len(categories)]  # two different needs per returnee
        created = now - timedelta(seconds=rng.random() * span)
        status = rng.choice(statuses)
        at_desk = status in ("new", "declined", "expired")
        provider = None if at_desk or not by_category.get(category) else rng.choice(by_category[category])
        if provider is None and not at_desk:
            status, at_desk = "new", True
        assigned = created + timedelta(minutes=1) if provider else None
        if status == "sent_old":
            status = "sent"
        elif status == "sent":
            assigned = now - timedelta(minutes=rng.randint(1, 600))  # within its deadline
            created = min(created, assigned)
        referrals.append((i, code, returnee, category, category, rng.choice(regions), provider,
                          status, created, created, assigned))  # fmt: skip
        eid = len(events)
        events.append((eid + 1, i, created, None, "new", "returnee", "ussd", None))
        if provider:
            events.append((eid + 2, i, assigned, "new", "sent", "system", "ussd", provider))
        accepted = created + timedelta(hours=rng.expovariate(1 / 20))
        if status in ("accepted", "closed"):
            events.append(
                (len(events) + 1, i, accepted, "sent", "accepted", f"provider:{provider}", "sms", provider)
            )
        if status == "closed":
            events.append(
                (
                    len(events) + 1,
                    i,
                    accepted + timedelta(days=3),
                    "accepted",
                    "closed",
                    "provider",
                    "sms",
                    None,
                )
            )
        if status in ("declined", "expired", "cancelled"):
            events.append(
                (len(events) + 1, i, created + timedelta(hours=30), "sent", status, "system", "cron", None)
            )
        for purpose in ("returnee_received", "provider_alert"):
            delivery = rng.choices(["Success", "Failed", None], [90, 5, 5])[0]
            outbound.append((len(outbound) + 1, bench_phone(returnee), "0" * 64, "Sira", "bench", purpose, i, 1,
                             "accepted", 1, created, None, f"ATXid_{len(outbound) + 1}", "Success",
                             "XOF 25.0000", created, delivery, None, created if delivery else None, created))  # fmt: skip
    inbound = [
        (i, f"ATin_{i}", bench_phone(i), "0" * 64, "7472", "OK", None, now, now - timedelta(hours=i), "provider", "reply")
        for i in range(1, n // 10 + 1)
    ]  # fmt: skip
    sessions, steps = [], []
    for i in range(1, n // 4 + 1):
        started = now - timedelta(seconds=rng.random() * span)
        sid = f"ATUid_bench_{i}"
        sessions.append((i, sid, "0" * 64, "*384*7472#", "61001", "fr", None, started, "registered",
                         None, None, None, None, None, None))  # fmt: skip
        for seq in range(1, 5):
            steps.append(
                (
                    len(steps) + 1,
                    sid,
                    seq,
                    str(seq),
                    "CON bench screen",
                    3.0,
                    started + timedelta(seconds=seq * 5),
                )
            )
    audits = [
        (i, now - timedelta(seconds=i * 60), None, "referral.view", "referral", referrals[i % n][1], json.dumps({"masked": False}))
        for i in range(1, n // 2 + 1)
    ]  # fmt: skip
    return {
        "returnee": returnees, "referral": referrals, "referral_event": events, "outbound_sms": outbound,
        "inbound_sms": inbound, "ussd_session": sessions, "ussd_step": steps, "audit_entry": audits,
    }  # fmt: skip


COLUMNS = {
    "returnee": ("id", "phone_hash", "phone_e164", "language", "first_name", "region", "age_group",
                 "consent_version", "consent_at", "registered_at", "created_at", "updated_at"),
    "referral": ("id", "code", "returnee_id", "category", "requested_category", "region", "provider_id",
                 "status", "created_at", "updated_at", "assigned_at"),
    "referral_event": ("id", "referral_id", "at", "from_status", "to_status", "actor", "channel", "provider_id"),
    "outbound_sms": ("id", "to_e164", "to_hash", "sender", "body", "purpose", "referral_id", "segments", "status",
                     "attempts", "next_attempt_at", "claimed_at", "gateway_id", "gateway_status", "cost",
                     "accepted_at", "delivery_status", "delivery_reason", "delivered_at", "created_at"),
    "inbound_sms": ("id", "gateway_id", "from_e164", "from_hash", "to", "text", "link_id", "sent_at",
                    "received_at", "sender_kind", "handled_as"),
    "ussd_session": ("id", "session_id", "phone_hash", "service_code", "network_code", "language", "origin",
                     "started_at", "outcome", "end_status", "end_duration_ms", "end_hops", "end_error",
                     "end_report", "ended_at"),
    "ussd_step": ("id", "session_id", "seq", "user_input", "screen", "server_ms", "at"),
    "audit_entry": ("id", "at", "user_id", "action", "object_type", "object_id", "detail"),
}  # fmt: skip


def load(url: str, tables: dict[str, list[tuple]], keyring: Keyring) -> None:
    """COPY into PostgreSQL (seconds for a million rows); executemany on SQLite.

    Names, numbers and texts are stored encrypted as the app stores them: COPY bypasses the
    column types, so its rows are encrypted here first.
    """
    from sqlalchemy import text

    import models
    from models.db import make_engine
    from models.encrypted import encrypted_columns

    engine = make_engine(url, keyring)
    try:
        if url.startswith("postgresql"):
            for name, column in encrypted_columns(models.Base.metadata):
                if name in tables and column in COLUMNS[name]:
                    at = COLUMNS[name].index(column)
                    tables[name] = [
                        (*row[:at], None if row[at] is None else keyring.encrypt(row[at]), *row[at + 1 :])
                        for row in tables[name]
                    ]
            raw = engine.raw_connection()
            try:
                with raw.cursor() as cur:
                    for name, rows in tables.items():
                        cols = ", ".join(f'"{c}"' for c in COLUMNS[name])
                        with cur.copy(f"COPY {name} ({cols}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
                        cur.execute(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {len(rows) or 1})"
                        )
                raw.commit()
            finally:
                raw.close()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
            return
        meta = models.Base.metadata.tables
        with engine.begin() as conn:
            for name, rows in tables.items():
                cols = COLUMNS[name]
                values = [dict(zip(cols, row, strict=True)) for row in rows]
                if name in ("audit_entry",):
                    for v in values:
                        v["detail"] = json.loads(v["detail"])
                conn.execute(meta[name].insert(), values)
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def read_directory(url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine, select

    from models.directory import Category, Provider, Region, provider_category

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            categories = list(conn.scalars(select(Category.code).order_by(Category.code)))
            regions = list(conn.scalars(select(Region.code).order_by(Region.code)))
            providers: dict[str, list[int]] = {}
            rows = conn.execute(
                select(provider_category.c.category_code, Provider.id)
                .join(Provider, Provider.id == provider_category.c.provider_id)
                .where(Provider.active.is_(True))
            )
            for category, provider in rows:
                providers.setdefault(category, []).append(provider)
    finally:
        engine.dispose()
    return {"categories": categories, "regions": regions, "providers": providers}


def make_admin(url: str, keyring: Keyring) -> None:
    from models.admin import Role, User
    from models.db import make_session_factory

    with make_session_factory(url, keyring)() as session:
        user = User(email=ADMIN_EMAIL, role=Role.ADMIN)
        user.set_password(ADMIN_PASSWORD)
        session.add(user)
        session.commit()


# -- the client -----------------------------------------------------------------------


class Browser:
    """One keep-alive connection and the admin cookie: a person's browser, without the rendering."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""

    def request(
        self, method: str, path: str, body: str | None = None, cookie: bool = True
    ) -> tuple[int, float, float, bytes, dict]:
        """Status, ms to the first byte of the body, ms to the last, body and headers."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        if cookie and self.cookie:
            headers["Cookie"] = self.cookie
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            raise
        first = response.read(1)
        ttfb = (time.perf_counter() - start) * 1000
        data = first + response.read()
        total = (time.perf_counter() - start) * 1000
        headers = dict(response.getheaders())
        cookies = [c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or []]
        headers["Set-Cookie"] = "; ".join(c for c in cookies if not c.endswith("="))  # those set, not cleared
        return response.status, ttfb, total, data, headers

    def sign_in(self) -> None:
        status, _t, _w, page, headers = self.request("GET", "/admin/login", cookie=False)
        self.cookie = headers.get("Set-Cookie", "")  # the login form's own cookie (its CSRF token's)
        csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        from urllib.parse import urlencode

        form = urlencode({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": csrf})
        status, _t, _w, _b, headers = self.request("POST", "/admin/login", body=form)
        if status != 302 or "/login" in headers.get("Location", "") or not self.cookie_from(headers):
            raise RuntimeError(
                f"sign-in failed ({status} {headers.get('Location', '')} {headers.get('Set-Cookie')})"
            )
        self.cookie = self.cookie_from(headers)  # the session's cookie (the form's is cleared)

    @staticmethod
    def cookie_from(headers: dict) -> str:
        return headers.get("Set-Cookie", "")


def pages(
    n: int, codes_for_detail: list[str], today: str, year_ago: str
) -> list[tuple[str, Callable[[int], str]]]:
    """What is timed: each page as a coordinator opens it; deep pages at the middle and the end."""
    last = max(1, -(-n // PAGE_SIZE))
    middle = max(1, last // 2)
    return [
        ("dashboard", lambda i: "/admin/dashboard"),
        ("dashboard, region + 1 year", lambda i: f"/admin/dashboard?from={year_ago}&to={today}&region=bamako"),
        ("referrals p1", lambda i: "/admin/referrals"),
        (f"referrals p{middle}", lambda i: f"/admin/referrals?page={middle}"),
        (f"referrals p{last} (last)", lambda i: f"/admin/referrals?page={last}"),
        ("referrals status=sent", lambda i: "/admin/referrals?status=sent"),
        ("referrals overdue", lambda i: "/admin/referrals?overdue=1"),
        ("referrals need+region", lambda i: "/admin/referrals?category=jobs&region=kayes"),
        (f"referrals closed p{max(1, last // 6)}", lambda i: f"/admin/referrals?status=closed&page={max(1, last // 6)}"),
        ("referral detail", lambda i: f"/admin/referrals/{codes_for_detail[i % len(codes_for_detail)]}"),
        ("sms p1", lambda i: "/admin/sms"),
        (f"sms p{max(1, last)}", lambda i: f"/admin/sms?page={max(1, last)}"),
        ("sms attention", lambda i: "/admin/sms?status=attention"),
        ("ussd sessions p1", lambda i: "/admin/ussd/sessions"),
        ("ussd sessions p100", lambda i: "/admin/ussd/sessions?page=100"),
        ("audit p1", lambda i: "/admin/audit"),
        ("audit p200", lambda i: "/admin/audit?page=200"),
        ("dashboard.csv", lambda i: "/admin/dashboard.csv"),
        ("returnees (search form)", lambda i: "/admin/returnees"),
        ("returnee detail", lambda i: f"/admin/returnees/{1 + (i * 7919) % max(1, n // 2)}"),
        ("providers (load, response times)", lambda i: "/admin/providers"),
        ("users", lambda i: "/admin/users"),
        ("queues", lambda i: "/admin/queues"),
        ("simulator", lambda i: "/admin/simulator"),
    ]  # fmt: skip


def summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "p50_ms": percentile(ordered, 50),
        "p95_ms": percentile(ordered, 95),
        "max_ms": ordered[-1] if ordered else None,
    }


def measure(browser: Browser, args: argparse.Namespace, detail_codes: list[str]) -> dict[str, Any]:
    """Each page N times beside the login page; then the whole CSV export, first byte and last."""
    today = datetime.now(UTC).date()
    plan = pages(args.referrals, detail_codes, today.isoformat(), (today - timedelta(days=365)).isoformat())
    results: dict[str, Any] = {"pages": {}, "errors": 0, "error_examples": []}

    def get(path: str, cookie: bool = True) -> tuple[float, float, int]:
        status, ttfb, total, body, headers = browser.request("GET", path, cookie=cookie)
        if status != 200:
            results["errors"] += 1
            results["error_examples"].append(f"{path}: {status} {headers.get('Location', '')}".strip())
        return ttfb, total, len(body)

    for name, path in plan:
        get(path(0))  # warm the worker's caches, as a second visit would find them
        timed, base = [], []
        for i in range(args.requests):
            if i % 2:
                timed.append(get(path(i + 1))[1])
                base.append(get("/admin/login", cookie=False)[1])
            else:
                base.append(get("/admin/login", cookie=False)[1])
                timed.append(get(path(i + 1))[1])
        page, baseline = summary(timed), summary(base)
        results["pages"][name] = {**page, "baseline": baseline,
                                  "ratio_p50": page["p50_ms"] / baseline["p50_ms"] if baseline["p50_ms"] else None}  # fmt: skip
        print(f"admin_pages: {name}: p50 {page['p50_ms']:.1f} ms", file=sys.stderr, flush=True)
    first, whole, size = [], [], 0
    for _ in range(args.exports):
        ttfb, total, size = get("/admin/referrals.csv")
        first.append(ttfb)
        whole.append(total)
    results["export"] = {"first_byte": summary(first), "whole": summary(whole), "bytes": size}
    return results


# -- report ---------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    rows = [
        f"admin_pages: {args.referrals} referrals, {args.database}, {args.workers} workers x {args.threads} threads, "
        f"{args.requests} requests per page, one at a time, each paired with the login page (baseline)",
        f"{'page':<34}{'p50 ms':>9}{'p95 ms':>9}{'base p50':>10}{'p50/base':>10}   target p95 < {TARGET_MS:g} ms",
    ]
    worst = 0.0
    for name, f in results["pages"].items():
        worst = max(worst, f["p95_ms"] or 0.0)
        verdict = "ok" if (f["p95_ms"] or 0) < TARGET_MS else "MISSED"
        rows.append(f"{name:<34}{_fmt(f['p50_ms']):>9}{_fmt(f['p95_ms']):>9}{_fmt(f['baseline']['p50_ms']):>10}"
                    f"{_fmt(f['ratio_p50'], 2):>10}   {verdict}")  # fmt: skip
    export = results["export"]
    verdict = "ok" if (export["first_byte"]["p95_ms"] or 0) < TARGET_MS else "MISSED"
    rows.append(f"{'referrals.csv first byte':<34}{_fmt(export['first_byte']['p50_ms']):>9}"
                f"{_fmt(export['first_byte']['p95_ms']):>9}{'':>10}{'':>10}   {verdict}")  # fmt: skip
    rows.append(f"{'referrals.csv whole':<34}{_fmt(export['whole']['p50_ms']):>9}{_fmt(export['whole']['p95_ms']):>9}"
                f"   ({export['bytes'] / 1e6:.1f} MB)")  # fmt: skip
    for example in results["error_examples"][:5]:
        rows.append(f"  ! {example}")
    rows.append(f"admin_pages: slowest page p95 {worst:.1f} ms (target < {TARGET_MS:g}); "
                f"csv first byte p95 {_fmt(export['first_byte']['p95_ms'])} ms; errors {results['errors']}")  # fmt: skip
    return "\n".join(rows)


def write_json(path: Path, results: dict[str, Any], args: argparse.Namespace, fill_s: float) -> None:
    doc = {
        **run_header("admin_pages", args),
        "target_ms": TARGET_MS,
        "fill_s": fill_s,
        **results,
    }
    save_json(path, doc)


def flask_seed(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "seed"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"seed failed:\n{done.stdout}{done.stderr}")


def sample_codes(url: str, count: int = 200) -> list[str]:
    from sqlalchemy import create_engine, select

    from models.referral import Referral

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(Referral.code).order_by(Referral.id).limit(count)))
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        workdir, database_url, redis_url = throwaway(stack, args.database, args.pg_admin_url, args.redis_db)
        env = server_env(database_url, redis_url, args.workers, args.threads)
        started = time.monotonic()
        flask_seed(env)
        tables = generate(args.referrals, read_directory(database_url), datetime.now(UTC))
        keyring = Keyring(parse_encryption_keys(env["ENCRYPTION_KEYS"]))
        load(database_url, tables, keyring)
        make_admin(database_url, keyring)
        fill_s = time.monotonic() - started
        counts = {name: len(rows) for name, rows in tables.items()}
        print(f"admin_pages: filled in {fill_s:.1f} s: {counts}", file=sys.stderr, flush=True)
        del tables
        app = Server("app", "app:create_app()", env, workdir / "app.log")
        stack.enter_context(served([app]))
        app.wait_ready("/healthz", 200)
        browser = Browser(app.port)
        browser.sign_in()
        results = measure(browser, args, sample_codes(database_url))
        results["rows"] = counts
    print(report(results, args))
    write_json(args.output, results, args, fill_s)
    print(f"results: {args.output}", file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    run(main, "admin_pages")
