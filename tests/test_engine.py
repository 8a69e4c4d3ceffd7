"""The pure engine, without I/O: text history, navigation, paging, resume, and random input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.engine import Engine, Facts, State
from flows.i18n import Catalogs
from flows.journeys import conversation


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(conversation(), Catalogs.load())


def run(engine: Engine, answers: list[str], state: State | None = None) -> tuple[State, list[str]]:
    result = engine.feed(state or engine.start(Facts(), None), "")
    screens = [result.reply.wire]
    history: list[str] = []
    for answer in answers:
        history.append(answer)
        result = engine.feed(result.state, "*".join(history))
        screens.append(result.reply.wire)
    return result.state, screens


def test_a_repeated_text_returns_the_same_reply_and_advances_nothing(engine: Engine) -> None:
    state, screens = run(engine, ["1", "3"])
    before = state.to_json()
    again = engine.feed(state, "1*3")
    assert not again.advanced and again.reply.wire == screens[-1] and state.to_json() == before


def test_dial_through_inputs_are_all_applied_on_the_first_request(engine: Engine) -> None:
    state = engine.start(Facts(), None)
    result = engine.feed(state, "3*3")
    assert "Your first name" in result.reply.text
    assert [type(e).__name__ for e in result.effects] == ["SetLanguage"]


def test_a_lost_state_is_rebuilt_from_the_text_history(engine: Engine) -> None:
    _, screens = run(engine, ["2", "3", "Awa", "1"])
    rebuilt = engine.feed(engine.start(Facts(), None), "2*3*Awa*1")
    assert rebuilt.reply.wire == screens[-1]


def test_back_on_the_first_page_of_the_first_screen_stays_put(engine: Engine) -> None:
    _, screens = run(engine, ["0"])
    assert screens[1] == screens[0]


def test_more_where_there_is_no_next_page_is_a_bad_input(engine: Engine) -> None:
    _, screens = run(engine, ["1", "98"])
    assert "Choix invalide" in screens[-1]


def test_resume_offer_restores_the_suspended_screen_and_answers(engine: Engine) -> None:
    old, _ = run(engine, ["1", "3", "Awa"])
    state = engine.start(Facts(), "fr", suspended=old)
    first = engine.feed(state, "")
    assert "Reprendre" in first.reply.text
    resumed = engine.feed(first.state, "1")
    assert "Vous etes" in resumed.reply.text and resumed.state.answers["first_name"] == "Awa"


def test_a_request_of_a_finished_call_delivered_after_its_end_gets_the_end_again(engine: Engine) -> None:
    """An earlier request (a retry held up) or one more after the END never reopens the journey."""
    answers = ["1", "3", "Awa", "2", "3", "1", "1", "1", "2"]  # ... consent refused: END
    state, screens = run(engine, answers)
    assert state.ended and screens[-1].startswith("END ")
    before = state.to_json()
    for text in ("*".join(answers[:-1]), "*".join(answers[:3]), "*".join([*answers, "1"])):
        late = engine.feed(state, text)
        assert not late.advanced and late.reply.wire == screens[-1] and not late.effects, text
    assert state.to_json() == before
    redial = engine.feed(state, "")  # the operator reuses the id for a new dial: a new call
    assert redial.advanced and not redial.state.ended and not redial.reply.end


def test_minimal_progress_is_not_offered_for_resume(engine: Engine) -> None:
    old = engine.start(Facts(), "fr")
    assert engine.start(Facts(), "fr", suspended=old).screen == conversation().root


ANSWERS = st.one_of(
    st.sampled_from(["0", "00", "98", "1", "2", "3", "9", "20", "", "Awa", "A", "*", "Awa*1"]),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(answers=st.lists(ANSWERS, max_size=25), language=st.sampled_from([None, "fr", "bm", "en"]))
def test_any_input_sequence_gives_a_short_plain_reply(
    engine: Engine, answers: list[str], language: str | None
) -> None:
    state = engine.start(Facts(), language)
    history: list[str] = []
    result = engine.feed(state, "")
    for answer in answers:
        history.append(answer)
        before = result.state.to_json()
        result = engine.feed(result.state, "*".join(history))
        wire = result.reply.wire
        assert wire.startswith(("CON ", "END "))
        assert len(result.reply.text) <= 160
        assert wire.isascii()
        if result.state.ended:
            assert wire.startswith("END ")
        assert result.advanced or result.state.to_json() == before


def test_a_history_that_does_not_extend_ours_is_replayed_from_the_first_screen(engine: Engine) -> None:
    state, _ = run(engine, ["1", "3", "Awa"])
    _, expected = run(engine, ["1", "2"])
    assert engine.feed(state, "1*2").reply.wire == expected[-1]


@pytest.mark.parametrize("answer", ["²", "٣", "1" * 40, "-1", "1.5"])
def test_things_that_look_like_numbers_are_not_menu_choices(engine: Engine, answer: str) -> None:
    _, screens = run(engine, [answer])
    assert "Choix invalide" in screens[-1] and screens[-1].startswith("CON ")


def test_two_inputs_after_a_lost_save_are_two_answers(engine: Engine) -> None:
    state, _ = run(engine, ["1"])
    _, expected = run(engine, ["1", "3", "Awa"])
    assert engine.feed(state, "1*3*Awa").reply.wire == expected[-1]


def test_a_state_from_an_older_version_restarts_instead_of_failing(engine: Engine) -> None:
    state, _ = run(engine, ["1", "3"])
    state.screen = "registration.nickname"  # renamed since
    _, expected = run(engine, ["1", "3", "Awa"])
    assert engine.feed(state, "1*3*Awa").reply.wire == expected[-1]


def test_a_step_leaves_the_state_it_was_given_as_it_was(engine: Engine) -> None:
    state, _ = run(engine, ["1", "3"])
    before = state.to_json()
    result = engine.feed(state, "1*3*Awa")
    assert state.to_json() == before
    assert result.state.answers["first_name"] == "Awa" and "first_name" not in state.answers


def test_a_state_saved_before_facts_were_typed_is_read_as_it_meant() -> None:
    old = '{"screen": "home.menu", "facts": {"registered": "1", "referrals": [{"code": "K4M2P"}]}}'
    assert State.from_json(old).facts == Facts(True, [{"code": "K4M2P"}])
    assert State.from_json('{"screen": "home.menu", "facts": {"registered": ""}}').facts == Facts()
    assert State.from_json(State(screen="x", facts=Facts(True)).to_json()).facts.registered is True


def test_a_providers_open_referrals_page_and_a_number_means_the_line_on_the_screen(engine: Engine) -> None:
    """A focal point with many open referrals pages with 98 and picks a line by the number it shows."""
    assigned = [
        {"code": f"R{i:04d}", "category": "employment", "region": "District de Bamako", "status": "sent"}
        for i in range(12)
    ]
    start = engine.start(Facts(provider=True, assigned=assigned), "en")
    _, screens = run(engine, ["98"], start)
    assert screens[0].startswith("CON Sira: your open requests (12):") and "98 More" in screens[0]
    number, code = next(line.split()[:2] for line in screens[1].splitlines() if " R0" in line)
    assert code not in screens[0]
    state, screens = run(engine, ["98", number, "2"], start)
    assert screens[2].startswith(f"CON Request {code} (employment, District de Bamako): sent.")
    assert state.screen == "focal.reason" and state.answers["referral"] == code
    assert "Ask for help" not in "".join(screens)
