"""Every SMS template, in every language, against the rules for shared phones and GSM-7."""

from __future__ import annotations

import json

import pytest

from flows.i18n import LANGUAGES, Catalogs
from flows.options import CATEGORIES, NEUTRAL_LABELS
from flows.sms import SMS_LABELS, SmsTexts
from flows.text import to_gsm7, to_ussd
from gateway.segments import is_gsm7, segment_count
from tests.conftest import ROOT

DIRECTORY = json.loads((ROOT / "seed" / "directory.hsds.json").read_text(encoding="utf-8"))
TERMS = next(r["data"] for r in DIRECTORY["resources"] if r["name"] == "taxonomy_term")
REGION_NAMES = [term["name"] for term in TERMS if term["taxonomy"] == "sira-regions"]
SMS_LABEL_OF_NEED = {
    term["code"]: term["sira_sms_label"] for term in TERMS if term["taxonomy"] == "sira-needs"
}
TEXTS = SmsTexts(Catalogs.load(), provider_sender="SIRA", returnee_sender="INFO", ussd_code="*384*7472#",
                 erase_pin_minutes=15)  # fmt: skip
LONGEST_REGION = max(REGION_NAMES, key=len)
# In plain letters: an SMS carries Bambara's ɛ and ɔ as è and ò (GSM-7), so "kɛnɛya" (health)
# reaches a phone as "kènèya", which neither "kɛnɛya" nor "keneya" would ever find unfolded.
SENSITIVE_WORDS = ("migrant", "sante", "health", "keneya", "psycho", "protection", "retour")


def sensitive_words_in(body: str) -> list[str]:
    """The sensitive words an SMS shows, compared in plain letters whatever its accents."""
    plain = to_ussd(body).lower()
    return [word for word in SENSITIVE_WORDS if word in plain]


def provider_alerts():
    for lang in LANGUAGES:
        for label in SMS_LABELS:
            yield lang, TEXTS.provider_alert(lang, "R7K3Q", label, LONGEST_REGION).body


def returnee_messages():
    from flows.sms import R_FOLLOW_UP, R_FOLLOW_UP_HELP, R_FOLLOW_UP_MORE

    for lang in LANGUAGES:
        yield lang, TEXTS.returnee_received(lang, "R7K3Q").body
        for msgid in (R_FOLLOW_UP, R_FOLLOW_UP_HELP, R_FOLLOW_UP_MORE):  # the follow-up, its help and answer
            yield lang, TEXTS.to_returnee(lang, msgid, code="R7K3Q").body


@pytest.mark.parametrize(("lang", "body"), [*provider_alerts(), *returnee_messages()])
def test_every_sms_is_one_gsm7_segment_without_sensitive_words(lang: str, body: str) -> None:
    assert is_gsm7(body), body
    assert segment_count(body) == 1, (len(body), body)
    assert sensitive_words_in(body) == [], (lang, body)


def test_the_sensitive_words_are_found_as_an_sms_carries_them() -> None:
    """The check above can fail: Bambara's health, written in GSM-7, and French with its accents."""
    assert sensitive_words_in(to_gsm7("I ka Kɛnɛya ko")) == ["keneya"]
    assert sensitive_words_in(to_gsm7("Santé, retour")) == ["sante", "retour"]


def test_health_psychosocial_and_protection_all_read_accompagnement() -> None:
    labels = SMS_LABEL_OF_NEED
    for code in ("health", "psychosocial", "protection", "family", "child_protection"):
        assert labels[code] == "support"
    assert TEXTS.render("fr", "{label}", {"label": "support"}) == "accompagnement"
    assert set(labels.values()) <= set(SMS_LABELS)


def test_provider_alert_says_how_to_answer() -> None:
    body = TEXTS.provider_alert("fr", "R7K3Q", "support", "Mopti").body
    assert "OK R7K3Q" in body and "NON R7K3Q" in body and "accompagnement" in body and "Mopti" in body


def test_bambara_letters_are_carried_in_gsm7() -> None:
    body = TEXTS.returnee_received("bm", "R7K3Q").body
    assert "ɛ" not in body and "ɔ" not in body and ("è" in body or "ò" in body)


def test_usssd_menu_categories_match_the_directory() -> None:
    from flows.options import CATEGORIES

    assert {o.code for o in CATEGORIES} == set(SMS_LABEL_OF_NEED) - {"child_protection"}


LONG = {"code": "R7K3Q", "name": "Fatoumata Binta Traoré-Diallo", "phone": "+22370000101",
        "provider": "Direction régionale de la promotion de l'enfant et de la famille, Bamako",
        "status": "acceptée", "list": "R7K3Q envoyée; K4M2P acceptée; Z9XW3 reçue", "pin": "482193", "minutes": "1440",
        "region": LONGEST_REGION}  # fmt: skip


def all_templates() -> list[str]:
    import flows.sms as module

    return [v for k, v in vars(module).items() if k.startswith(("P_", "R_", "PROVIDER_", "RETURNEE_"))]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("msgid", all_templates())
def test_every_template_is_gsm7_and_at_most_two_segments(lang: str, msgid: str) -> None:
    body = TEXTS.render(
        lang, msgid, {"category": "support"}, **{k: v for k, v in LONG.items() if k != "category"}
    )
    assert "{" not in body, body
    assert is_gsm7(body), body
    assert segment_count(body) <= 2, (segment_count(body), body)
    for word in ("migrant", "psycho"):
        assert word not in body.lower()


def returnee_templates() -> list[str]:
    import flows.sms as module

    return [v for k, v in vars(module).items() if k.startswith(("R_", "RETURNEE_"))]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("msgid", returnee_templates())
def test_no_returnee_sms_names_a_provider_or_a_person(lang: str, msgid: str) -> None:
    """A provider's name ("CSRef ...", "Association des migrants de retour") tells a relative the need."""
    translated = TEXTS.catalogs.gettext(lang, msgid)
    for placeholder in ("{provider}", "{name}"):
        assert placeholder not in msgid and placeholder not in translated, (lang, translated)


def test_the_ussd_confirmation_names_each_need_by_the_label_its_sms_use() -> None:
    assert {o.code for o in CATEGORIES} == set(NEUTRAL_LABELS)
    assert {code: SMS_LABEL_OF_NEED[code] for code in NEUTRAL_LABELS} == NEUTRAL_LABELS
