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
            (_("Register"), "registration.first_name"),
            (_("Language"), "home.language"),
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
