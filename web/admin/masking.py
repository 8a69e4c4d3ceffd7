"""What a page may show of a returnee: clear for staff, masked for viewers (one rule, every page)."""

from __future__ import annotations

from dataclasses import dataclass

from models.admin import Role, User
from models.phone import masked
from models.returnee import Returnee


@dataclass(frozen=True)
class Person:
    """The file as this user may read it: clear for staff, masked for viewers."""

    first_name: str
    phone: str
    masked: bool


def person(returnee: Returnee, user: User) -> Person:
    hide = user.role == Role.VIEWER
    name = returnee.first_name or "-"
    phone = returnee.phone_e164 or "-"
    return Person(
        first_name=(name[0] + " •••") if hide and name != "-" else name,
        phone=masked(phone) if hide and phone != "-" else phone,
        masked=hide,
    )
