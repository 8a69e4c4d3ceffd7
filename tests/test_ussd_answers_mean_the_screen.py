"""An answer means what the screen showed: on a paged list only the numbers on the current page
(and 0, 00, 98) are taken, and the confirmation names the need before anything is sent."""

from __future__ import annotations

import pytest

from flows.engine import Engine, State
from flows.i18n import LANGUAGES, Catalogs
from flows.journeys import conversation
from flows.options import CATEGORIES
from models import Referral
from tests.conftest import Phone

# language choice; the region question, "invalid choice", the need question (just registered),
# the confirmation's words for "employment" and "support" (the neutral labels SMS use)
SAY = {
    "fr": ("1", "Ou habitez-vous", "Choix invalide", "Votre besoin ?", "(emploi)", "(accompagnement)"),
    "bm": ("2", "I sigilen be min", "Sugandili fili", "I mago be mun na", "(baara)", "(deme)"),
    "en": ("3", "Where do you live", "Invalid choice", "What do you need", "(employment)", "(support)"),
}  # fmt: skip


def _numbers(screen: str) -> set[int]:
    return {int(line.split(" ", 1)[0]) for line in screen.split("\n")[1:] if line.split(" ", 1)[0].isdigit()}


@pytest.mark.parametrize("lang", SAY)
def test_a_number_from_another_page_of_the_regions_is_asked_again(phone: Phone, db, lang: str) -> None:
    choice, region_question, invalid, *_ = SAY[lang]
    phone.dial()
    phone.send(choice)
    for answer in ("3", "Awa", "2"):  # Register, a first name, a woman
        phone.send(answer)
    first = phone.send("3")  # 26 to 35: the regions, first page
    assert region_question in first and 3 in _numbers(first)
    second = phone.send("98")
    shown = _numbers(second) - {0, 98}
    assert 3 not in shown and shown, second
    again = phone.send("3")  # Koulikoro is on the first page, not on this one
    assert again.startswith("CON ") and invalid in again and region_question in again, again
    assert _numbers(again) - {0, 98} == shown  # still the second page
    country = phone.send(str(min(shown)))  # a number that is on this page is taken
    assert region_question not in country and invalid not in country


@pytest.mark.parametrize("lang", SAY)
def test_the_need_is_chosen_from_its_own_page_and_named_before_it_is_sent(
    phone: Phone, db, lang: str
) -> None:
    choice, _q, invalid, need_question, employment, support = SAY[lang]
    phone.dial()
    phone.send(choice)
    phone.send("1")  # Ask for help: register on the way
    for answer in ("Awa", "2", "3", "1", "1", "1"):
        phone.send(answer)
    needs = phone.send("1")  # I agree: on to the need
    assert need_question in needs and 1 in _numbers(needs) and 98 in _numbers(needs)
    second = phone.send("98")
    shown = _numbers(second) - {0, 98}
    assert 1 not in shown and 9 in shown, second
    again = phone.send("1")  # jobs is on the first page, not on this one
    assert again.startswith("CON ") and invalid in again and need_question in again, again
    assert _numbers(again) - {0, 98} == shown
    confirm = phone.send("9")  # emergency, protection: named by its neutral word only
    assert confirm.startswith("CON ") and support in confirm, confirm
    phone.send("0")  # back to the list, then its first page
    assert 1 in _numbers(phone.send("0"))
    confirm = phone.send("1")  # jobs and training
    assert employment in confirm, confirm
    assert db.query(Referral).count() == 0  # nothing is sent before "Yes"


ENGINE = Engine(conversation(), Catalogs.load())


def test_the_confirmation_names_every_need_within_the_screen_limit_in_every_language() -> None:
    for lang in LANGUAGES:
        for option in CATEGORIES:
            state = State(
                screen="help.confirm",
                answers={"language": lang, "category": option.code},
                history=[["help.category", 0]],
            )
            for hint in (None, "Invalid choice."):
                text = ENGINE.render(state, hint=hint).text
                assert len(text) <= 160 and "()" not in text and "{" not in text, (lang, option.code, text)
