"""A provider's focal point on USSD: its open referrals, and accept, decline or close each one.

The host puts the provider's open referrals in `state.facts.assigned` when a provider's number
dials (code, the need's neutral label as SMS show it, region, status); the answers are the SMS
commands' use cases (`OK`, `NON`, `FINI`), asked for as an effect. Only the number's session
starts here: no returnee screen leads to these, and none of these leads to a returnee's.
"""

from __future__ import annotations

from flows import effects
from flows.engine import State
from flows.i18n import _
from flows.options import REFERRAL_STATUSES
from flows.screens import Choose, End, Journey, Option, confirm
from flows.sms_commands import Command

ROOT = "focal.list"

# What the host says the answer did (filled into `{outcome}` once the effect is performed).
ACCEPTED = _("{code} is yours. The person's first name and number come to you by SMS.")
DECLINED = _("{code} declined. Thank you, we will send it to another service.")
CLOSED = _("{code} closed. Thank you.")
NOT_YOURS = _("request {code} is not assigned to you.")
UNCHANGED = _("request {code} is {status}; nothing changed.")

# A decline's reason is one digit, not a typed text; its label, in the provider's language, is the note.
REASONS = (
    Option("full", _("No place at the moment")),
    Option("not_offered", _("We do not offer this service")),
    Option("area", _("Outside our area")),
    Option("other", _("Other reason")),
)


def _assigned(state: State) -> list[dict[str, str]]:
    return list(state.facts.assigned)


def _chosen(state: State) -> dict[str, str] | None:
    code = state.answers.get("referral")
    return next((r for r in _assigned(state) if r["code"] == code), None)


def referral_lines(state: State) -> tuple[Option, ...]:
    """One line each: code, neutral need, region; an accepted one says so (it waits for FINI)."""
    return tuple(
        Option(r["code"], (r["code"], r["category"], r["region"], *(() if r["status"] == "sent" else
                                                                    (REFERRAL_STATUSES[r["status"]],))))
        for r in _assigned(state)
    )  # fmt: skip


def list_title(state: State) -> dict[str, str]:
    return {"count": str(len(_assigned(state)))}


def selected(state: State) -> dict[str, str]:
    chosen = _chosen(state) or {"code": "", "category": "", "region": "", "status": ""}
    status = chosen["status"]
    return {"code": chosen["code"], "category": chosen["category"], "region": chosen["region"],
            "status": REFERRAL_STATUSES.get(status, status)}  # fmt: skip


def awaiting_answer(state: State) -> bool:
    return (_chosen(state) or {}).get("status") == "sent"


def accepted(state: State) -> bool:
    return (_chosen(state) or {}).get("status") == "accepted"


def _answer(action: str):
    def make(state: State) -> effects.AnswerReferral:
        return effects.AnswerReferral(state.answers["referral"], action, state.answers.get("reason", ""))

    make.__name__ = f"answer_{action}"
    return make


JOURNEY = Journey(
    "focal",
    screens=(
        Choose(
            ROOT,
            _("Sira: your open requests ({count}):"),
            options_from=referral_lines,
            params=list_title,
            save="referral",
            next="focal.referral",
        ),
        Choose(
            "focal.referral",
            _("Request {code} ({category}, {region}): {status}."),
            options=(
                Option(Command.ACCEPT, _("Accept"), goto="focal.accept", when=awaiting_answer),
                Option(Command.DECLINE, _("Decline"), goto="focal.reason", when=awaiting_answer),
                Option(Command.CLOSE, _("Close: person served"), goto="focal.close", when=accepted),
            ),
            params=selected,
            save="action",
        ),
        confirm(
            "focal.accept",
            _("Accept {code}? The person's first name and number will come to you by SMS."),
            yes="focal.done",
            no=ROOT,
            on_yes=(_answer(Command.ACCEPT),),
            params=selected,
        ),
        Choose(
            "focal.reason",
            _("Why do you decline {code}?"),
            REASONS,
            params=selected,
            save="reason",
            next="focal.done",
            effects=(_answer(Command.DECLINE),),
        ),
        confirm(
            "focal.close",
            _("Close {code}: was the person served? They will be asked by SMS if they were helped."),
            yes="focal.done",
            no=ROOT,
            on_yes=(_answer(Command.CLOSE),),
            params=selected,
        ),
        End("focal.done", _("Sira: {outcome}")),
    ),
)
