"""Registration: who the returnee is, in category codes, then consent in plain words."""

from __future__ import annotations

from flows import checks, effects
from flows.engine import State
from flows.i18n import _
from flows.options import AGE_GROUPS, COUNTRIES, REGIONS, RETURNED_SINCE, SEXES
from flows.screens import Ask, Choose, End, Journey, confirm

CONSENT_VERSION = "consent-v1"
REGISTERED = "help.registered"  # straight on to the need, in the same call
# Read on the phone, or aloud by a reception agent (web/admin/agents.py): one wording, one version.
CONSENT_TEXT = _(
    "Sira shares your first name, number and need with one CNRM service, only to help you. Do you agree?"
)


def save_registration(state: State) -> effects.SaveRegistration:
    return effects.SaveRegistration(effects.Profile.of(state.answers), CONSENT_VERSION)


def refuse_consent(_state: State) -> effects.RefuseConsent:
    return effects.RefuseConsent(CONSENT_VERSION)


def after_refusal(state: State) -> str:
    """Who has requests still open is told that refusing cancels them, and asked again."""
    referrals = state.facts.referrals
    if state.facts.registered and any(r.get("open") for r in referrals):
        return "registration.refuse_open"
    return "registration.refused"


JOURNEY = Journey(
    "registration",
    resume=_("Continue your registration?"),
    screens=(
        Ask(
            "registration.first_name",
            _("Your first name?"),
            check=checks.first_name,
            save="first_name",
            next="registration.sex",
            hint=_("Letters only, 2 to 30."),
        ),
        Choose("registration.sex", _("You are:"), SEXES, save="sex", next="registration.age"),
        Choose("registration.age", _("Your age:"), AGE_GROUPS, save="age_group", next="registration.region"),
        Choose(
            "registration.region",
            _("Where do you live?"),
            REGIONS,
            save="region",
            next="registration.country",
        ),
        Choose(
            "registration.country",
            _("Which country did you come back from?"),
            COUNTRIES,
            save="returned_from",
            next="registration.since",
        ),
        Choose(
            "registration.since",
            _("When did you come back?"),
            RETURNED_SINCE,
            save="returned_since",
            next="registration.consent",
        ),
        confirm(
            "registration.consent",
            CONSENT_TEXT,
            yes=REGISTERED,
            no=after_refusal,
            yes_label=_("I agree"),
            no_label=_("I refuse"),
            on_yes=(save_registration,),
        ),
        confirm(
            "registration.refuse_open",
            _("Sira will no longer share your data and will cancel your open requests. Confirm?"),
            yes="registration.refused",
            no="registration.consent",
        ),
        End(
            "registration.refused",
            _("Without your consent we cannot refer you. You can register again at any time."),
            effects=(refuse_consent,),
        ),
    ),
)
