"""My data: withdraw consent, or erase everything (confirmed by a code sent by SMS)."""

from __future__ import annotations

from flows import effects
from flows.engine import State
from flows.i18n import _
from flows.journeys.home import MAIN_MENU, registered
from flows.journeys.registration import CONSENT_VERSION
from flows.screens import End, Journey, Option, confirm, menu


def withdraw(_state: State) -> effects.RefuseConsent:
    return effects.RefuseConsent(CONSENT_VERSION)


def request_erasure(_state: State) -> effects.RequestErasure:
    return effects.RequestErasure()


JOURNEY = Journey(
    "mydata",
    screens=(
        menu(
            "mydata.menu",
            _("My data:"),
            # Only who gave consent (registered) can withdraw it.
            Option("withdraw", _("Withdraw my consent"), goto="mydata.withdraw", when=registered),
            Option("erase", _("Erase my data"), goto="mydata.erase"),
        ),
        confirm(
            "mydata.withdraw",
            _("Sira will no longer share your data and will cancel your open requests. Confirm?"),
            yes="mydata.withdrawn",
            no=MAIN_MENU,
            on_yes=(withdraw,),
        ),
        End("mydata.withdrawn", _("Your consent is withdrawn. You can register again at any time.")),
        confirm(
            "mydata.erase",
            _(
                "You will receive an SMS with a code. Reply SUPPRIMER and the code to erase all your data. Continue?"
            ),
            yes="mydata.erase_sent",
            no=MAIN_MENU,
            on_yes=(request_erasure,),
        ),
        End("mydata.erase_sent", _("An SMS with your code is on its way.")),
    ),
)
