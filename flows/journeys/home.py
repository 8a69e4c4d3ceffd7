"""First dial (language), the main menu and changing language."""

from __future__ import annotations

from flows import effects
from flows.engine import State
from flows.i18n import _
from flows.options import LANGUAGE_NAMES
from flows.screens import Choose, Journey, Option, menu

FIRST_DIAL = "home.first_language"
MAIN_MENU = "home.main"


def set_language(state: State) -> effects.SetLanguage:
    return effects.SetLanguage(state.answers["language"])


def ask_for_help(state: State) -> str:
    """Registered returnees choose their need; others register first, then choose."""
    return "help.category" if state.facts.get("registered") else "registration.first_name"


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
            Option("help", _("Ask for help"), goto=ask_for_help),
            Option("requests", _("My requests"), goto="requests.list"),
            Option("register", _("Register"), goto="registration.first_name"),
            Option("language", _("Language"), goto="home.language"),
            Option("mydata", _("My data"), goto="mydata.menu"),
            save="intent",
        ),
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
