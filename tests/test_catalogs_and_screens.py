"""Invariants over the whole conversation: every screen fits and shows plain letters in every
language, every screen is reachable, and every message is translated in every catalog."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from flows.engine import RESUME, Engine, Facts, State
from flows.i18n import LANGUAGES, Catalogs
from flows.journeys import conversation
from flows.screens import Ask, Choose, End

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = Catalogs.load()
ENGINE = Engine(conversation(), CATALOGS)
REFERRALS = [{"code": "R7K3Q", "category": "support", "status": "cancelled"}] * 11 + [
    {"code": "K4M2P", "category": "employment", "status": "sent", "open": True}
]
# A provider's number: a dozen open referrals with the longest words, one of them accepted.
ASSIGNED = [{"code": "R7K3Q", "category": "employment", "region": "Bandiagara", "status": "sent"}] * 11 + [
    {"code": "K4M2P", "category": "documents", "region": "Tombouctou", "status": "accepted"}
]
FACTS = (
    Facts(),
    Facts(registered=True, referrals=REFERRALS),
    # A follow-up answered "need other help": the main menu offers a new request first.
    Facts(registered=True, referrals=[{**REFERRALS[-1], "more": True}, *REFERRALS[:-1]]),
    Facts(provider=True, assigned=ASSIGNED),
    Facts(provider=True, assigned=ASSIGNED[-1:]),
)
SAMPLE_STATES = [
    State(screen="x", facts=facts, answers={"intent": intent, "referral": referral})
    for facts in FACTS
    for intent in ("help", "register")
    for referral in ("R7K3Q", "K4M2P")
]


def chosen(facts: Facts) -> str:
    """The referral a sample state has chosen: a provider's first one (sent, or accepted)."""
    return (facts.assigned or [{"code": "R7K3Q"}])[0]["code"]


def extracted_msgids() -> set[str]:
    method_map = [
        ("web/admin/**.py", "ignore"),  # the admin has its own catalogs (tests/test_admin_i18n.py)
        ("flows/**.py", "python"),
        ("web/**.py", "python"),
        ("workers/**.py", "python"),
    ]
    return {msg[2] for msg in extract_from_dir(str(ROOT), method_map, keywords={"_": None}) if msg[2]}


def all_renders():
    for screen in ENGINE.screens_for_checks():
        for lang in LANGUAGES:
            for facts in FACTS:
                answers = {"language": lang, "referral": chosen(facts)}
                state = State(screen=screen.id, answers=answers, facts=facts, history=[["x", 0]])
                pages = ENGINE._pages_for(screen, state) if isinstance(screen, Choose) else ((),)
                for page in range(len(pages)):
                    state.page = page
                    yield screen, lang, ENGINE.render(state)
                    if not isinstance(screen, End):
                        yield screen, lang, ENGINE.render(state, hint=getattr(screen, "hint", None))


def test_every_screen_in_every_language_fits_one_ussd_page_in_plain_letters() -> None:
    count = 0
    for screen, lang, reply in all_renders():
        count += 1
        assert len(reply.text) <= 160, (screen.id, lang, len(reply.text), reply.text)
        assert reply.text.isascii(), (screen.id, lang, reply.text)
    assert count > 3 * len(ENGINE.conversation.screens)


def test_a_reprompt_shows_the_hint_above_the_whole_screen_it_repeats() -> None:
    """Bad input re-asks the same question: the hint never takes the question's place."""
    count = 0
    for screen in ENGINE.screens_for_checks():
        if isinstance(screen, End):
            continue
        for lang in LANGUAGES:
            for facts in FACTS:
                state = State(screen=screen.id, answers={"language": lang, "referral": chosen(facts)}, facts=facts,
                              history=[["x", 0]])  # fmt: skip
                pages = ENGINE._pages_for(screen, state) if isinstance(screen, Choose) else ((),)
                for page in range(len(pages)):
                    state.page = page
                    hinted = ENGINE.render(state, hint=screen.hint).text
                    assert hinted == ENGINE._t(state, screen.hint) + "\n" + ENGINE.render(state).text, hinted
                    count += 1
    assert count > len(ENGINE.conversation.screens)


def test_every_message_is_translated_in_every_catalog() -> None:
    msgids = extracted_msgids()
    assert {"Your first name?", "Continue your registration?"} <= msgids
    for lang in LANGUAGES:
        missing = sorted(msgids - set(CATALOGS.messages[lang]))
        assert not missing, f"{lang} lacks {missing}"


def test_catalogs_are_nfc_and_use_the_ascii_apostrophe() -> None:
    for lang in LANGUAGES:
        for msgid, text in CATALOGS.messages[lang].items():
            assert unicodedata.is_normalized("NFC", text), (lang, msgid)
            assert "’" not in text, (lang, msgid)


def test_bambara_catalog_is_written_in_bambara_letters() -> None:
    letters = "".join(CATALOGS.messages["bm"].values())
    assert set("ɛɔ") <= set(letters)


def test_bambara_never_writes_a_bare_ban() -> None:
    """Without tone marks, ban is both "refuse" and "finish" (GLOSSARY): decline reads a ma sɔn."""
    for text in CATALOGS.messages["bm"].values():
        assert "ban" not in re.findall(r"\w+", text.lower()), text


def test_every_screen_is_reachable_and_every_question_has_a_way_out() -> None:
    conv = ENGINE.conversation
    seen, todo = set(), [conv.first_dial, conv.root, conv.provider_root]
    while todo:
        screen_id = todo.pop()
        if screen_id in seen:
            continue
        seen.add(screen_id)
        screen = conv.screens[screen_id]
        if isinstance(screen, Ask):
            targets = [screen.next]
        elif isinstance(screen, Choose):
            options = [o for state in SAMPLE_STATES for o in screen.visible(state)]
            targets = [o.goto or screen.next for o in options]
        else:
            targets = []
        for target in filter(None, targets):
            todo += [target] if isinstance(target, str) else [target(state) for state in SAMPLE_STATES]
    assert seen == set(conv.screens), set(conv.screens) - seen
    assert RESUME not in conv.screens


@pytest.mark.parametrize("name", ["Awa", "Jean-Marie", "N'Golo", "Aïssata", "Fatoumata Binta"])
def test_first_names_people_have_are_accepted(name: str) -> None:
    from flows.checks import first_name

    assert first_name(name) == name


@pytest.mark.parametrize("text", ["A", "", "Awa2", "x" * 31, "Awa*", "  ", "12", "--"])
def test_text_that_is_not_a_first_name_is_refused(text: str) -> None:
    from flows.checks import first_name

    assert first_name(text) is None


@pytest.mark.parametrize("text", ["ߊߘߊ", "Алия", "محمد"])
def test_names_in_scripts_usssd_and_sms_cannot_carry_are_refused(text: str) -> None:
    from flows.checks import first_name

    assert first_name(text) is None


def test_a_catalog_is_parsed_once_per_version_of_its_file_and_cannot_be_changed_by_a_reader(
    tmp_path: Path,
) -> None:
    po = tmp_path / "fr" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid "Yes"\nmsgstr "Oui"\n', encoding="utf-8")
    first = Catalogs.load(tmp_path, languages=("fr",))
    again = Catalogs.load(tmp_path, languages=("fr",))
    assert again.messages["fr"] is first.messages["fr"]  # every app of the process shares one parse
    with pytest.raises(TypeError):
        first.messages["fr"]["Yes"] = "Non"  # type: ignore[index]
    po.write_text('msgid "Yes"\nmsgstr "Awɔ"\n', encoding="utf-8")
    stat = po.stat()
    os.utime(po, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a file edited in the same tick
    assert Catalogs.load(tmp_path, languages=("fr",)).gettext("fr", "Yes") == "Awɔ"
    assert first.gettext("fr", "Yes") == "Oui"
