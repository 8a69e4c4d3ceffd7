"""Resume is offered only where a dropped call would lose something, and says what it resumes."""

from __future__ import annotations

import pytest

from tests.conftest import Phone
from tests.test_registration_ussd import register

# language choice; the two offers; the age question; the confirmation's "Send?"; the main menu
SAY = {
    "fr": ("1", "Reprendre votre inscription ?", "Reprendre votre demande d'aide ?", "Votre age", "Envoyer ?",
           "Demander de l'aide"),
    "bm": ("2", "I b'a fe ka i ka togoseben taa a fe wa?", "I b'a fe ka i ka demenyini taa a fe wa?", "I si",
           "A ci?", "Deme nyini"),
    "en": ("3", "Continue your registration?", "Continue your request for help?", "Your age", "Send?",
           "Ask for help"),
}  # fmt: skip


@pytest.mark.parametrize("lang", SAY)
def test_a_dropped_registration_is_offered_by_name_and_resumed(phone: Phone, lang: str) -> None:
    choice, registration, _help, age, _send, _menu = SAY[lang]
    phone.dial()
    for answer in (choice, "3", "Awa", "2"):  # Register, a first name, a woman; the call drops
        phone.send(answer)
    offer = phone.dial()
    assert offer.startswith("CON ") and registration in offer, offer
    assert age in phone.send("1")


@pytest.mark.parametrize("lang", SAY)
def test_a_dropped_request_is_offered_by_name_and_resumed_at_its_confirmation(
    phone: Phone, lang: str
) -> None:
    choice, registration, help_, _age, send, _menu = SAY[lang]
    register(phone, language=choice)
    phone.dial()
    phone.send("1")  # Ask for help
    assert send in phone.send("1")  # jobs and training; the call drops before the answer
    offer = phone.dial()
    assert help_ in offer and registration not in offer, offer
    assert send in phone.send("1")


@pytest.mark.parametrize("lang", SAY)
def test_nothing_is_offered_after_read_only_screens_or_a_journey_not_begun(phone: Phone, lang: str) -> None:
    choice, registration, help_, _age, _send, menu = SAY[lang]
    register(phone, language=choice)
    # My requests, the useful numbers, the list of needs, a request chosen on an empty list
    for path in (("2",), ("6",), ("1",), ("2", "1")):
        phone.dial()
        for answer in path:
            phone.send(answer)
        again = phone.dial()
        assert menu in again and registration not in again and help_ not in again, (path, again)
