"""Assisted registration: a reception agent registers a returnee from a phone, on the spot.

The fields and checks are the USSD journey's (flows.options, flows.checks); the consent is
shown in the person's language for the agent to read aloud, and must be ticked as agreed.
A number already registered is found by its keyed hash and nothing is written twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from wtforms import Form, StringField, ValidationError
from wtforms.validators import AnyOf, Optional

from flows import checks
from flows.effects import PROFILE_FIELDS, Profile
from flows.i18n import LANGUAGES
from flows.journeys.registration import CONSENT_TEXT
from flows.options import AGE_GROUPS, CATEGORIES, COUNTRIES, LANGUAGE_NAMES, REGIONS, RETURNED_SINCE, SEXES
from flows.screens import Option
from infra.forgetting import forget_profiles
from models.admin import Role, audit
from models.phone import InvalidPhone, PhoneNumber
from services.assisted import Answers, register_on_the_spot
from web.admin.access import STAFF, bp, current_user, require
from web.admin.forms import field_errors, strip
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


def one_of(options: tuple[Option, ...]) -> AnyOf:
    return AnyOf([o.code for o in options], message=_("Choose one."))


class RegistrationForm(Form):
    """The USSD journey's answers, checked by its own rules (flows.checks, flows.options)."""

    phone = StringField(filters=[strip(64)])
    language = StringField(
        filters=[strip(64)], validators=[AnyOf(LANGUAGES, message=_("Choose the person's language."))]
    )
    first_name = StringField(filters=[strip(64)])
    sex = StringField(filters=[strip(64)], validators=[one_of(SEXES)])
    age_group = StringField(filters=[strip(64)], validators=[one_of(AGE_GROUPS)])
    region = StringField(filters=[strip(64)], validators=[one_of(REGIONS)])
    returned_from = StringField(filters=[strip(64)], validators=[one_of(COUNTRIES)])
    returned_since = StringField(filters=[strip(64)], validators=[one_of(RETURNED_SINCE)])
    category = StringField(filters=[strip(64)], validators=[Optional(), one_of(CATEGORIES)])
    consent = StringField(filters=[strip(64)], validators=[
        AnyOf(["1"], message=_("Read the consent aloud: without the person's agreement, nothing is recorded."))
    ])  # fmt: skip
    number: PhoneNumber | None = None
    name: str | None = None

    def validate_phone(self, field: StringField) -> None:
        try:
            self.number = PhoneNumber.parse(field.data, sira().settings)
        except InvalidPhone:
            raise ValidationError(_("This is not a valid phone number.")) from None

    def validate_first_name(self, field: StringField) -> None:
        if (name := checks.first_name(field.data)) is None:
            raise ValidationError(_("A first name: letters only, 2 to 30."))
        self.name = name

    def answers(self) -> Answers:
        """The checked answers, for a form that validated."""
        assert self.number is not None and self.name is not None
        profile = Profile.of({**{name: self[name].data for name in PROFILE_FIELDS}, "first_name": self.name})
        return Answers(
            phone_e164=self.number.e164, phone_digest=self.number.digest, language=self.language.data,
            profile=profile, category=self.category.data or None,
        )  # fmt: skip


@dataclass(frozen=True)
class Shown:
    """The form as the page shows it: what was typed, and one message id per field in error."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, form: RegistrationForm) -> Shown:
        return cls(
            {f.name: f.data or "" for f in form},
            {n: e[0] for n, e in field_errors(form).items()},
        )


def page(form: Shown, status: int = 200) -> ResponseReturnValue:
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
        return page(Shown(values={"language": request.args.get("lang", "fr")}))
    form = RegistrationForm(request.form)
    if not form.validate():
        return page(Shown.of(form), 400)
    answers, session, agent = form.answers(), get_session(), current_user()
    texts, settings = sira().sms_texts, sira().settings
    result = register_on_the_spot(session, answers, agent.id, texts, settings.phone_hash_key)
    audit(session, agent.id, "returnee.register", "returnee", result.returnee_id, channel="agent",
          already=result.already, request=bool(result.referral_code))  # fmt: skip
    sira().outbox.send_after_commit(session, result.sms_ids)
    forget_profiles(sira().redis, answers.phone_digest)  # their next dial reads the registration
    done = "already" if result.already else "registered"
    return redirect(url_for("admin.register", done=done, code=result.referral_code or None))
