"""Ask for help: choose a need, see what will be shared and with whom, confirm."""

from __future__ import annotations

from flows import effects
from flows.engine import State
from flows.i18n import _
from flows.journeys.home import MAIN_MENU
from flows.options import CATEGORIES, NEUTRAL_LABELS
from flows.screens import Choose, End, Journey, confirm

# What comes next depends on whether the returnee sent STOP: the host fills `{updates}` with one
# of these when it creates the referral (the state does not know about SMS opt-outs).
WILL_SMS = _("You will receive an SMS.")
NO_SMS = _("You sent STOP, so no SMS: dial again to follow it.")


def create_referral(state: State) -> effects.CreateReferral:
    return effects.CreateReferral(category=state.answers["category"])


def what_is_sent(state: State) -> dict[str, str]:
    """The need in its neutral word, so the person sees what goes out before saying yes."""
    return {"need": NEUTRAL_LABELS.get(state.answers.get("category", ""), "")}


JOURNEY = Journey(
    "help",
    resume=_("Continue your request for help?"),
    screens=(
        Choose("help.category", _("What do you need?"), CATEGORIES, save="category", next="help.confirm"),
        # Just registered (by "Register" or on the way to "Ask for help"): on to the need, no second dial.
        Choose(
            "help.registered",
            _("You are registered. What do you need?"),
            CATEGORIES,
            save="category",
            next="help.confirm",
        ),
        # Offered on the main menu after a follow-up answered "not served" or "need something else".
        Choose(
            "help.again",
            _("What other help do you need?"),
            CATEGORIES,
            save="category",
            next="help.confirm",
        ),
        confirm(
            "help.confirm",
            _(
                "Your need ({need}), first name and number go to one CNRM service, who will contact you. Send?"
            ),
            yes="help.sent",
            no=MAIN_MENU,
            on_yes=(create_referral,),
            params=what_is_sent,
        ),
        End("help.sent", _("Your request {code} is sent. {updates}")),
    ),
)
