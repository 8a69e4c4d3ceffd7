"""My requests: each referral in one line, details on selection.

The host puts the returnee's referrals in `state.facts.referrals` when the session starts,
as dicts with `code`, `category` and `status`; nothing else about them is shown on USSD. The
category is the need's neutral label (a message id, as SMS show it), never the need itself:
a phone is often shared, and "Psychosocial support" on its screen says too much.
"""

from __future__ import annotations

from flows.engine import State
from flows.i18n import _
from flows.options import REFERRAL_STATUSES
from flows.screens import Choose, Journey, Option


def _referrals(state: State) -> list[dict[str, str]]:
    return list(state.facts.referrals)


def referral_lines(state: State) -> tuple[Option, ...]:
    return tuple(
        Option(r["code"], (r["code"], REFERRAL_STATUSES.get(r["status"], r["status"])))
        for r in _referrals(state)
    )


def list_title(state: State) -> dict[str, str]:
    return {"count": str(len(_referrals(state)))}


def selected(state: State) -> dict[str, str]:
    chosen = next((r for r in _referrals(state) if r["code"] == state.answers.get("referral")), None)
    if chosen is None:
        return {"code": "", "category": "", "status": ""}
    return {
        "code": chosen["code"],
        "category": chosen["category"],
        "status": REFERRAL_STATUSES.get(chosen["status"], chosen["status"]),
    }


JOURNEY = Journey(
    "requests",
    screens=(
        Choose(
            "requests.list",
            _("My requests ({count}):"),
            options_from=referral_lines,
            params=list_title,
            save="referral",
            next="requests.detail",
        ),
        Choose("requests.detail", _("Request {code}: {category}. Status: {status}."), params=selected),
    ),
)
