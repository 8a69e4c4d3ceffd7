"""First dial (language), the main menu, useful numbers and changing language."""

from __future__ import annotations

from flows import effects
from flows.engine import State
from flows.i18n import _
from flows.options import LANGUAGE_NAMES
from flows.screens import Choose, Journey, Option, menu

FIRST_DIAL = "home.first_language"
MAIN_MENU = "home.main"
USEFUL_NUMBERS = "home.numbers"


def set_language(state: State) -> effects.SetLanguage:
    return effects.SetLanguage(state.answers["language"])


def registered(state: State) -> bool:
    return state.facts.registered


def not_registered(state: State) -> bool:
    return not state.facts.registered


def offered_new_request(state: State) -> bool:
    """A follow-up answer said they need other help (2 or 3) and no request came since: the host
    marks the newest referral `more`; a request made now goes first and the offer is gone."""
    referrals = state.facts.referrals
    return state.facts.registered and bool(referrals) and bool(referrals[0].get("more"))


def ask_for_help(state: State) -> str:
    """Registered returnees choose their need; others register first, then choose."""
    return "help.category" if state.facts.registered else "registration.first_name"


LANGUAGES = tuple(Option(code, label) for code, label in LANGUAGE_NAMES)

JOURNEY = Journey(
    "home",
    screens=(
        Choose(
            FIRST_DIAL,
            _("Welcome to Sira. Choose your language:"),
            LANGUAGES,
            next=MAIN_MENU,
            save="language",
            effects=(set_language,),
        ),
        menu(
            MAIN_MENU,
            _("Sira, CNRM services:"),
            Option(
                "again", _("You asked for other help: ask now"), goto="help.again", when=offered_new_request
            ),
            Option("help", _("Ask for help"), goto=ask_for_help),
            Option("requests", _("My requests"), goto="requests.list"),
            # Same place, other words: who is registered updates their details, never "registers".
            Option("register", _("Register"), goto="registration.first_name", when=not_registered),
            Option("update", _("Update my details"), goto="registration.first_name", when=registered),
            Option("language", _("Language"), goto="home.language"),
            Option("mydata", _("My data"), goto="mydata.menu"),
            Option("numbers", _("Useful numbers"), goto=USEFUL_NUMBERS),
            save="intent",
        ),
        # Nothing to choose: the numbers to call, then 0 back to the menu (Mali's short numbers).
        Choose(USEFUL_NUMBERS, _("Useful numbers:\nAmbulance (SAMU) 15\nPolice 17\nFire brigade 18")),
        Choose(
            "home.language",
            _("Choose your language:"),
            LANGUAGES,
            next=MAIN_MENU,
            save="language",
            effects=(set_language,),
        ),
    ),
)
