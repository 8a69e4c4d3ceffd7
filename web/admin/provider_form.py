"""A provider's form: what staff may type for a provider, checked field by field (WTForms).

The checks that need the directory (known categories and regions, a number no other provider
has) read it through the `session` given to `posted`; `provider_id` is the provider edited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import Form, SelectMultipleField, StringField, TextAreaField, ValidationError
from wtforms.validators import AnyOf, DataRequired, Length

from flows.i18n import LANGUAGES
from models.directory import Category, Provider, ProviderNumber, Region
from models.phone import InvalidPhone, PhoneNumber, to_e164
from services.directory_rules import MAX_CAPACITY
from web.admin.forms import Message, cut, squash, strip
from web.admin.i18n import _
from web.admin.inputs import number
from web.context import sira

MAX_NUMBERS = 10
FIELDS = ("name", "kind", "national", "capacity", "language", "contact_phone", "categories", "regions")


def codes(value: list[str] | None) -> list[str]:
    return list(value or [])[:200]


class ProviderForm(Form):
    """Name, kind, capacity, language, categories, regions (or national) and the SMS numbers."""

    name = StringField(filters=[squash(200)], validators=[
        DataRequired(_("A name is required.")), Length(max=120, message=_("The name is too long (120 characters at most)."))
    ])  # fmt: skip
    kind = StringField(filters=[squash(200)], validators=[
        DataRequired(_("A kind of service is required.")), Length(max=40, message=_("The kind is too long (40 characters at most)."))
    ])  # fmt: skip
    national = StringField(filters=[lambda v: v == "1"])
    capacity = StringField(filters=[strip(12)])
    language = StringField(filters=[cut(10)], validators=[AnyOf(LANGUAGES, message=_("Choose a language."))])
    contact_phone = StringField(filters=[strip(40)])
    categories = SelectMultipleField(validate_choice=False, filters=[codes])
    regions = SelectMultipleField(validate_choice=False, filters=[codes])
    numbers = TextAreaField(filters=[cut(1000)])
    session: Session
    provider_id: int | None = None
    parsed_contact: str | None = None
    parsed_numbers: list[tuple[str, str]]  # (E.164, keyed hash), in the order typed

    def validate_capacity(self, field: StringField) -> None:
        if not 1 <= (number(field.data) or 0) <= MAX_CAPACITY:
            raise ValidationError(_("The capacity is a whole number of referrals a day, from 1 to 10000."))

    def validate_categories(self, field: SelectMultipleField) -> None:
        known = set(self.session.scalars(select(Category.code)))
        if not field.data or not set(field.data) <= known:
            raise ValidationError(_("Choose at least one category."))

    def validate_regions(self, field: SelectMultipleField) -> None:
        if not set(field.data) <= set(self.session.scalars(select(Region.code))):
            raise ValidationError(_("Unknown region."))
        if not field.data and not self.national.data:
            raise ValidationError(_("Choose at least one region, or make the provider national."))

    def validate_contact_phone(self, field: StringField) -> None:
        self.parsed_contact = None
        if field.data:
            try:
                self.parsed_contact = to_e164(field.data, sira().settings.default_region_code)
            except InvalidPhone:
                raise ValidationError(_("The contact number is not a valid phone number.")) from None

    def validate_numbers(self, field: TextAreaField) -> None:
        settings, self.parsed_numbers = sira().settings, []
        for line in (line.strip() for line in field.data.splitlines()):
            if not line:
                continue
            try:
                e164, digest = PhoneNumber.parse(line, settings)
            except InvalidPhone:
                raise ValidationError(
                    Message(_("%(line)s is not a valid phone number."), line=line[:32])
                ) from None
            if digest not in {h for _, h in self.parsed_numbers}:
                self.parsed_numbers.append((e164, digest))
        if not self.parsed_numbers:
            raise ValidationError(_("At least one SMS number is required."))
        if len(self.parsed_numbers) > MAX_NUMBERS:
            raise ValidationError(_("At most 10 SMS numbers."))
        taken = self.session.scalar(
            select(ProviderNumber.phone_e164).where(
                ProviderNumber.phone_hash.in_([h for _, h in self.parsed_numbers]),
                ProviderNumber.provider_id != (self.provider_id or 0),
            )
        )
        if taken:
            raise ValidationError(
                Message(_("%(number)s is already the number of another provider."), number=taken)
            )

    def values(self) -> dict[str, Any]:
        """What was typed, cleaned, to show the form again."""
        return {name: self[name].data for name in (*FIELDS, "numbers")}

    def forget_profiles(self) -> None:
        """A number that dialled as a returnee has its profile cached for minutes: dropped, its
        next dial reads it again as a provider's and gets the focal points' menu at once."""
        sira().ussd_store.forget_profile(*(digest for _, digest in self.parsed_numbers))

    def apply(self, provider: Provider) -> list[str]:
        """Write a valid form onto the provider; returns the names of the fields that changed."""
        before = values_of(provider) if provider.id else {}
        provider.name, provider.kind, provider.national = self.name.data, self.kind.data, self.national.data
        provider.daily_capacity, provider.language = int(self.capacity.data), self.language.data
        provider.contact_phone = self.parsed_contact
        provider.categories = list(
            self.session.scalars(select(Category).where(Category.code.in_(self.categories.data)))
        )
        provider.regions = list(
            self.session.scalars(select(Region).where(Region.code.in_(self.regions.data)))
        )
        wanted = {h for _, h in self.parsed_numbers}
        have = {n.phone_hash for n in provider.numbers}
        provider.replace_numbers(self.parsed_numbers)
        after = values_of(provider)
        changed = [n for n in FIELDS if sorted_value(before.get(n)) != sorted_value(after[n])]
        return [*changed, "numbers"] if wanted != have else changed


def values_of(provider: Provider) -> dict[str, Any]:
    """A provider as its form shows it."""
    return {
        "name": provider.name, "kind": provider.kind, "national": provider.national,
        "capacity": str(provider.daily_capacity), "language": provider.language,
        "contact_phone": provider.contact_phone or "", "categories": [c.code for c in provider.categories],
        "regions": [r.code for r in provider.regions], "numbers": "\n".join(n.phone_e164 for n in provider.numbers),
    }  # fmt: skip


EMPTY = {"name": "", "kind": "", "national": False, "capacity": "10", "language": "fr", "contact_phone": "",
         "categories": [], "regions": [], "numbers": ""}  # fmt: skip


def sorted_value(value: object) -> object:
    return sorted(value) if isinstance(value, list) else value
