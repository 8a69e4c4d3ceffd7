"""Assisted registration: a reception agent registers a returnee from a phone, on the spot.

The fields and checks are the USSD journey's (flows.options, flows.checks); the consent is
shown in the person's language for the agent to read aloud, and must be ticked as agreed.
A number already registered is found by its keyed hash and nothing is written twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from flows import checks
from flows.i18n import LANGUAGES
from flows.journeys.registration import CONSENT_TEXT
from flows.options import AGE_GROUPS, CATEGORIES, COUNTRIES, LANGUAGE_NAMES, REGIONS, RETURNED_SINCE, SEXES
from flows.screens import Option
from infra.forgetting import forget_profiles
from models.admin import Role, audit
from models.phone import InvalidPhone, PhoneNumber
from services.assisted import Answers, register_on_the_spot
from web.admin.access import STAFF, bp, current_user, require
from web.admin.i18n import _
from web.context import sira
from web.db import get_session

CHOICES: dict[str, tuple[Option, ...]] = {
    "sex": SEXES, "age_group": AGE_GROUPS, "region": REGIONS, "returned_from": COUNTRIES,
    "returned_since": RETURNED_SINCE,
}  # fmt: skip
DONE = {
    "registered": _("Registered. The person receives a welcome SMS with the code to dial."),
    "already": _("This number is already registered: nothing was changed. The person can dial the code."),
}


@dataclass
class RegistrationForm:
    """What the agent typed, as typed (to show it again), and what is wrong with it, field by field."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    answers: Answers | None = None

    @classmethod
    def read(cls, form: dict) -> RegistrationForm:
        names = ("phone", "language", "first_name", *CHOICES, "category", "consent")
        self = cls(values={n: form.get(n, "").strip()[:64] for n in names})
        v, errors = self.values, self.errors
        settings = sira().settings
        number = name = None
        try:
            number = PhoneNumber.parse(v["phone"], settings)
        except InvalidPhone:
            errors["phone"] = _("This is not a valid phone number.")
        if v["language"] not in LANGUAGES:
            errors["language"] = _("Choose the person's language.")
        if (name := checks.first_name(v["first_name"])) is None:
            errors["first_name"] = _("A first name: letters only, 2 to 30.")
        for key, options in CHOICES.items():
            if v[key] not in {o.code for o in options}:
                errors[key] = _("Choose one.")
        if v["category"] and v["category"] not in {o.code for o in CATEGORIES}:
            errors["category"] = _("Choose one.")
        if v["consent"] != "1":
            errors["consent"] = _(
                "Read the consent aloud: without the person's agreement, nothing is recorded."
            )
        if not errors and number and name:
            self.answers = Answers(
                phone_e164=number.e164, phone_digest=number.digest, language=v["language"],
                first_name=name, sex=v["sex"], age_group=v["age_group"], region=v["region"],
                returned_from=v["returned_from"], returned_since=v["returned_since"], category=v["category"] or None,
            )  # fmt: skip
        return self


def page(form: RegistrationForm, status: int = 200) -> ResponseReturnValue:
    """The form; option labels in the agent's language, the consent in the person's."""
    catalogs = sira().sms_texts.catalogs
    person = form.values.get("language") or request.args.get("lang", "fr")
    person = person if person in LANGUAGES else "fr"

    def labels(options: tuple[Option, ...]) -> list[tuple[str, str]]:
        return [(o.code, catalogs.gettext(g.admin_lang, o.label)) for o in options]

    return render_template(
        "admin/register.html", form=form, person=person, consent=catalogs.gettext(person, CONSENT_TEXT),
        languages=[(code, catalogs.gettext(code, name)) for code, name in LANGUAGE_NAMES],
        choices={key: labels(options) for key, options in CHOICES.items()}, categories=labels(CATEGORIES),
        done=DONE.get(request.args.get("done", "")), code=request.args.get("code", "")[:8],
    ), status  # fmt: skip


@bp.route("/register", methods=["GET", "POST"])
@require(Role.AGENT, *STAFF)
def register() -> ResponseReturnValue:
    if request.method == "GET":
        return page(RegistrationForm(values={"language": request.args.get("lang", "fr")}))
    form = RegistrationForm.read(request.form)
    if form.answers is None:
        return page(form, 400)
    session, agent = get_session(), current_user()
    texts, settings = sira().sms_texts, sira().settings
    result = register_on_the_spot(session, form.answers, agent.id, texts, settings.phone_hash_key)
    audit(session, agent.id, "returnee.register", "returnee", result.returnee_id, channel="agent",
          already=result.already, request=bool(result.referral_code))  # fmt: skip
    sira().outbox.send_after_commit(session, result.sms_ids)
    forget_profiles(sira().redis, form.answers.phone_digest)  # their next dial reads the registration
    done = "already" if result.already else "registered"
    return redirect(url_for("admin.register", done=done, code=result.referral_code or None))
