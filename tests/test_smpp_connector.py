"""The SMPP connector from the outside: an operator gateway emulator on real TCP, real Redis.

The conversation here is a small one defined in the test (each step is recorded in Redis, and
the screen says how many steps the session has had), so that what the protocol side does is seen
on its own: binds, keep-alive, dial-through, repeats, dropped binds, throttling, malformed PDUs,
late replies. The end-to-end journeys through Sira's real conversation are in test_smpp_journeys.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from redis import Redis

from config import parse_smpp_links
from gateway.emulator.smsc import UssdGatewayEmulator
from gateway.smpp import Connector, codec
from gateway.ussd import StepRefused, UssdReply, UssdStep

PHONE = "+22370000101"
OTHER = "+22370000102"
STEPS = "smpp-test:steps"


def redact(value: str) -> str:
    return hmac.new(b"test-key", value.encode(), hashlib.sha256).hexdigest()


class Recorder:
    """A conversation that writes every step to Redis; 'bye' ends, 'slow' waits for `release`."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.delay = 0.0

    def __call__(self, step: UssdStep) -> UssdReply:
        if step.text == "refuse":
            raise StepRefused("not this phone's session")
        self.redis.rpush(
            STEPS, json.dumps({"session": step.session_id, "text": step.text, "phone": step.phone})
        )
        if step.text == "slow":
            self.started.set()
            self.release.wait(10)
        if step.text == "late":
            time.sleep(self.delay)
        count = sum(1 for s in self.steps() if s["session"] == step.session_id)
        return UssdReply(f"step {count}: {step.text or '-'}", end=step.text == "bye")

    def steps(self) -> list[dict[str, str]]:
        return [json.loads(x) for x in self.redis.lrange(STEPS, 0, -1)]


@pytest.fixture
def smsc() -> Iterator[UssdGatewayEmulator]:
    emulator = UssdGatewayEmulator(reply_timeout=5.0)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def recorder(redis: Redis) -> Recorder:
    return Recorder(redis)


def connect(smsc: UssdGatewayEmulator, recorder: Recorder, query: str = "") -> Connector:
    links = parse_smpp_links(
        f"smpp://sira:sira@127.0.0.1:{smsc.port}?name=emu&network=61002&reconnect_min=0.1&reconnect_max=0.5"
        f"&throttle_wait=0.2{query}"
    )
    connector = Connector(links, recorder, service_code="*384*7472#", redact=redact, workers=4)
    connector.start()
    assert connector.wait_bound(5)
    return connector


@pytest.fixture
def connector(smsc: UssdGatewayEmulator, recorder: Recorder) -> Iterator[Connector]:
    connector = connect(smsc, recorder)
    yield connector
    connector.stop()


def test_binds_as_a_transceiver_and_keeps_the_bind_alive_with_enquire_link(smsc, recorder) -> None:
    connector = connect(smsc, recorder, "&enquire_link=0.3")
    try:
        assert smsc.binds == 1
        assert smsc.wait_for(lambda: smsc.enquire_links >= 2, timeout=3)
        number = smsc.dial(PHONE)
        assert smsc.wait_screen(number, 1).text == "step 1: -"
    finally:
        connector.stop()


def test_a_receiver_and_a_transmitter_bind_serve_a_session(smsc, recorder) -> None:
    connector = connect(smsc, recorder, "&bind=rx%2Btx")
    try:
        assert smsc.binds == 2
        number = smsc.dial(PHONE)
        assert smsc.wait_screen(number, 1).text == "step 1: -"
        smsc.answer(number, "bye")
        screen = smsc.wait_screen(number, 2)
        assert (screen.text, screen.end, screen.op) == ("step 2: bye", True, codec.UssdOp.PSSR_RESPONSE)
    finally:
        connector.stop()


def test_a_wrong_password_is_refused_and_retried_with_backoff_without_a_crash(smsc, recorder) -> None:
    links = parse_smpp_links(f"smpp://sira:wrong@127.0.0.1:{smsc.port}?reconnect_min=0.1&reconnect_max=0.2")
    connector = Connector(links, recorder, service_code="*384*7472#", redact=redact)
    connector.start()
    try:
        assert not connector.wait_bound(0.8)
        assert smsc.binds == 0
    finally:
        connector.stop()


def test_a_session_continues_with_ussr_request_and_ends_with_pssr_response(smsc, recorder, connector) -> None:
    number = smsc.dial(PHONE)
    first = smsc.wait_screen(number, 1)
    assert (first.text, first.end, first.op) == ("step 1: -", False, codec.UssdOp.USSR_REQUEST)
    smsc.answer(number, "1")
    assert smsc.wait_screen(number, 2).text == "step 2: 1"
    smsc.answer(number, "bye")
    assert smsc.wait_screen(number, 3).end
    steps = recorder.steps()
    assert [s["text"] for s in steps] == ["", "1", "bye"]
    assert len({s["session"] for s in steps}) == 1 and steps[0]["phone"] == PHONE


def test_dial_through_gives_the_typed_answers_as_the_first_input(smsc, recorder, connector) -> None:
    number = smsc.dial(PHONE, "*384*7472*2#")
    assert smsc.wait_screen(number, 1).text == "step 1: 2"
    assert recorder.steps()[0]["text"] == "2"


def test_dial_through_off_ignores_what_the_first_pdu_carries(smsc, recorder) -> None:
    connector = connect(smsc, recorder, "&dial_through=0")
    try:
        number = smsc.dial(PHONE, "*384*7472*2#")
        assert smsc.wait_screen(number, 1).text == "step 1: -"
    finally:
        connector.stop()


def test_two_dials_of_one_phone_are_two_sessions(smsc, recorder, connector) -> None:
    first = smsc.dial(PHONE)
    smsc.wait_screen(first, 1)
    smsc.answer(first, "bye")
    smsc.wait_screen(first, 2)
    second = smsc.dial(PHONE)
    assert smsc.wait_screen(second, 1).text == "step 1: -"
    assert len({s["session"] for s in recorder.steps()}) == 2


def test_a_session_number_the_gateway_reuses_for_the_same_phone_opens_a_new_session(
    smsc, recorder, connector
) -> None:
    """its_session_info has one octet of session number: after 255 others, a phone's new dial may
    come with the number of its previous session, and is no repeat of that session's dial."""
    first = smsc.dial(PHONE)
    smsc.wait_screen(first, 1)
    smsc.answer(first, "bye")
    smsc.wait_screen(first, 2)
    smsc._numbers = itertools.count(first)  # the gateway's counter has come round to it again
    again = smsc.dial(PHONE)
    assert again == first
    smsc.sessions[again].screens.clear()
    assert smsc.wait_screen(again, 1).text == "step 1: -"
    assert len({s["session"] for s in recorder.steps()}) == 2


def test_a_reused_session_number_opens_a_new_session_even_after_one_left_unfinished(
    smsc, recorder, connector
) -> None:
    """The person hung up without an END (the gateway closed it); the number comes round again."""
    first = smsc.dial(PHONE)
    smsc.wait_screen(first, 1)
    smsc.answer(first, "1")
    smsc.wait_screen(first, 2)
    smsc._numbers = itertools.count(first)
    again = smsc.dial(PHONE)
    assert again == first
    assert smsc.wait_screen(again, 1).text == "step 1: -"
    assert len({s["session"] for s in recorder.steps()}) == 2


def test_answers_in_a_session_on_a_reused_number_are_not_taken_for_the_earlier_sessions(
    smsc, recorder, connector
) -> None:
    """The same phone gets its earlier session's number again and types the same answers in the
    same dialogue units (a returnee going through the same menu): each is a new step with its
    screen, not a repeat of the earlier session's PDU (timeouts in a saturated bench run)."""
    first = smsc.dial(PHONE)
    smsc.wait_screen(first, 1)
    smsc.answer(first, "1")
    smsc.wait_screen(first, 2)
    smsc.answer(first, "2")
    smsc.wait_screen(first, 3)  # left there, unfinished: the gateway closes it and reuses its number
    smsc._numbers = itertools.count(first)
    again = smsc.dial(PHONE)
    assert again == first
    assert smsc.wait_screen(again, 1).text == "step 1: -"
    smsc.answer(again, "1")
    assert smsc.wait_screen(again, 2).text == "step 2: 1"
    smsc.answer(again, "2")
    assert smsc.wait_screen(again, 3).text == "step 3: 2"
    assert connector.duplicates == 0
    assert [s["text"] for s in recorder.steps()] == ["", "1", "2", "", "1", "2"]


def test_a_dial_on_the_number_of_a_session_left_at_its_first_screen_is_a_new_session(
    smsc, recorder, connector
) -> None:
    """The person saw the menu and hung up; dialling again, the gateway gives the same number (it
    numbers sessions per phone, or its counter came round). The first dial's screen was taken by
    the gateway, so this is no redelivery of it: it gets its own first screen."""
    first = smsc.dial(PHONE)
    smsc.wait_screen(first, 1)
    smsc._numbers = itertools.count(first)
    again = smsc.dial(PHONE)
    assert again == first
    assert smsc.wait_screen(again, 1).text == "step 1: -"
    smsc.answer(again, "1")
    assert smsc.wait_screen(again, 2).text == "step 2: 1"
    assert connector.duplicates == 0
    assert len({s["session"] for s in recorder.steps()}) == 2


def test_a_dial_delivered_again_after_the_bind_drops_is_one_session(smsc, recorder, connector) -> None:
    smsc.drop_after_next_deliver()  # the dial leaves, the bind drops before its response
    number = smsc.dial(PHONE)
    assert smsc.wait_for(lambda: smsc.binds >= 2, timeout=5)
    assert smsc.wait_screen(number, 1).text == "step 1: -"
    smsc.answer(number, "1")
    assert smsc.wait_screen(number, 2).text == "step 2: 1"
    assert [s["text"] for s in recorder.steps()] == ["", "1"]
    assert len({s["session"] for s in recorder.steps()}) == 1


def test_a_session_that_ended_on_a_reused_number_leaves_no_repeat_behind(smsc, recorder, connector) -> None:
    first = smsc.dial(PHONE)
    smsc.wait_screen(first, 1)
    smsc.answer(first, "bye")
    assert smsc.wait_screen(first, 2).end
    smsc._numbers = itertools.count(first)
    again = smsc.dial(PHONE)
    smsc.sessions[again].screens.clear()
    assert smsc.wait_screen(again, 1).text == "step 1: -"
    smsc.answer(again, "bye")
    assert smsc.wait_screen(again, 2).text == "step 2: bye"
    assert connector.duplicates == 0


def repeats_counted() -> float:
    return REGISTRY.get_sample_value("sira_smpp_pdus_total", {"link": "emu", "outcome": "repeat"}) or 0.0


def test_the_same_pdu_delivered_twice_gives_one_step_and_one_reply(smsc, recorder, connector) -> None:
    repeats_before = repeats_counted()
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    session = smsc.sessions[number]
    session.dialogue += 1
    fields = {
        "service_type": "USSD",
        "source_addr": PHONE.lstrip("+"),
        "destination_addr": "7472",
        "short_message": b"1",
        "ussd_service_op": int(codec.UssdOp.USSR_CONFIRM),
        "its_session_info": session.session_info(),
    }
    sequence = smsc.next_sequence()
    smsc.send_raw(codec.encode("deliver_sm", sequence, **fields))
    smsc.send_raw(codec.encode("deliver_sm", sequence, **fields))
    assert smsc.wait_for(lambda: sum(1 for r in smsc.responses if r[2] == sequence) == 2)
    assert [r[1] for r in smsc.responses if r[2] == sequence] == [0, 0]  # both acknowledged
    smsc.wait_screen(number, 2)
    time.sleep(0.5)
    assert len(smsc.sessions[number].screens) == 2
    assert [s["text"] for s in recorder.steps()] == ["", "1"]
    assert connector.duplicates == 1
    assert repeats_counted() == repeats_before + 1  # and counted for the operator's dashboard


def test_the_same_input_typed_again_in_a_later_dialogue_unit_is_a_new_step(smsc, recorder, connector) -> None:
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    smsc.answer(number, "1")
    smsc.wait_screen(number, 2)
    smsc.answer(number, "1")
    assert smsc.wait_screen(number, 3).text == "step 3: 1"


def test_a_step_delivered_again_after_the_bind_drops_is_done_once(smsc, recorder, connector) -> None:
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    smsc.drop_after_next_deliver()  # the step leaves, the bind drops before its response
    smsc.answer(number, "1")
    assert smsc.wait_for(lambda: smsc.binds >= 2, timeout=5)
    assert smsc.wait_screen(number, 2).text == "step 2: 1"
    time.sleep(0.5)
    assert [s["text"] for s in recorder.steps()] == ["", "1"]
    assert len(smsc.sessions[number].screens) == 2


def test_a_bind_dropped_while_a_step_runs_loses_neither_the_step_nor_its_reply(
    smsc, recorder, connector
) -> None:
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    recorder.release.clear()
    smsc.answer(number, "slow")
    assert recorder.started.wait(5)
    smsc.drop_binds()
    assert smsc.wait_for(lambda: smsc.binds >= 2, timeout=5)
    recorder.release.set()
    assert smsc.wait_screen(number, 2).text == "step 2: slow"
    smsc.answer(number, "bye")
    assert smsc.wait_screen(number, 3).end
    assert [s["text"] for s in recorder.steps()] == ["", "slow", "bye"]  # the redelivery was not a step


def test_a_throttled_reply_is_sent_again_after_a_pause(smsc, recorder, connector) -> None:
    smsc.throttle_next(2)
    started = time.monotonic()
    number = smsc.dial(PHONE)
    assert smsc.wait_screen(number, 1).text == "step 1: -"
    assert smsc.throttled == 2
    assert time.monotonic() - started >= 0.2 + 0.4  # throttle_wait, then twice that
    assert len(recorder.steps()) == 1


def test_a_malformed_pdu_is_nacked_and_logged_and_other_sessions_go_on(
    smsc, recorder, connector, caplog
) -> None:
    caplog.set_level(logging.INFO)
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    # A deliver_sm whose sm_length claims 40 octets where 3 follow.
    good = codec.encode(
        "deliver_sm", 501, source_addr="22370000109", destination_addr="7472", short_message=b"abc"
    )
    body = bytearray(good)
    body[body.index(b"abc") - 1] = 40
    smsc.send_raw(bytes(body))
    # An unknown command id, and a deliver_sm without the session TLV.
    smsc.send_raw(struct.pack(">LLLL", 16, 0x00000099, 0, 502))
    smsc.send_raw(
        codec.encode("deliver_sm", 503, source_addr="22370000109", destination_addr="7472", ussd_service_op=1)
    )
    assert smsc.wait_for(lambda: {r[2] for r in smsc.responses} >= {501, 502, 503})
    answers = {r[2]: (r[0], r[1]) for r in smsc.responses}
    assert answers[501] == ("deliver_sm_resp", codec.RINVMSGLEN)
    assert answers[502] == ("generic_nack", codec.RINVCMDID)
    assert answers[503] == ("deliver_sm_resp", codec.RINVOPTPARSTREAM)
    assert "malformed PDU nacked" in caplog.text and "nacked: no its_session_info" in caplog.text
    smsc.answer(number, "1")
    assert smsc.wait_screen(number, 2).text == "step 2: 1"
    other = smsc.dial(OTHER)
    assert smsc.wait_screen(other, 1).text == "step 1: -"
    assert smsc.binds == 1  # served on the same bind
    assert [s["text"] for s in recorder.steps()] == ["", "1", ""]


def test_a_refused_step_is_nacked_and_touches_nothing(smsc, recorder, connector) -> None:
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    smsc.answer(number, "refuse")
    assert smsc.wait_for(lambda: any(r[1] == codec.RX_T_APPN for r in smsc.responses))
    assert len(recorder.steps()) == 1 and len(smsc.sessions[number].screens) == 1


def test_a_reply_past_the_gateways_time_out_is_not_sent_the_step_is_recorded_and_others_go_on(
    smsc, recorder, caplog
) -> None:
    caplog.set_level(logging.INFO)
    smsc.reply_timeout = 0.5
    recorder.delay = 0.8
    connector = connect(smsc, recorder, "&reply_timeout=0.5")
    try:
        number = smsc.dial(PHONE, "*384*7472*late#")
        assert smsc.wait_for(lambda: connector.links[0].late_replies == 1, timeout=5)
        assert recorder.steps()[0]["text"] == "late"  # the step happened
        assert smsc.sessions[number].screens == []
        assert "past the gateway's" in caplog.text
        other = smsc.dial(OTHER)
        assert smsc.wait_screen(other, 1).text == "step 1: -"
    finally:
        connector.stop()


def test_a_late_reply_the_gateway_refuses_is_logged_and_nothing_breaks(smsc, recorder, caplog) -> None:
    caplog.set_level(logging.INFO)
    smsc.reply_timeout = 0.3  # the gateway is stricter than the link says
    recorder.delay = 0.6
    connector = connect(smsc, recorder, "&reply_timeout=5")
    try:
        number = smsc.dial(PHONE, "*384*7472*late#")
        assert smsc.wait_for(lambda: len(smsc.sessions[number].late) == 1, timeout=5)
        assert smsc.wait_for(lambda: "refused the reply" in caplog.text, timeout=2)
        other = smsc.dial(OTHER)
        assert smsc.wait_screen(other, 1).text == "step 1: -"
    finally:
        connector.stop()


@pytest.mark.parametrize("coding", [codec.DataCoding.GSM7, codec.DataCoding.LATIN1, codec.DataCoding.UCS2])
def test_screens_and_answers_travel_in_the_links_data_coding(smsc, recorder, coding) -> None:
    smsc.data_coding = coding
    connector = connect(smsc, recorder, f"&data_coding={int(coding)}")
    try:
        number = smsc.dial(PHONE)
        smsc.wait_screen(number, 1)
        smsc.answer(number, "Fanta é")
        assert smsc.wait_screen(number, 2).text == "step 2: Fanta é"
    finally:
        connector.stop()


def test_a_vendor_session_tlv_names_the_session_and_is_echoed(smsc, recorder) -> None:
    connector = connect(smsc, recorder, "&session_tlv=0x1501")
    try:
        fields = {
            "source_addr": PHONE.lstrip("+"),
            "destination_addr": "7472",
            "ussd_service_op": 1,
            "vendor_tlvs": {0x1501: b"ABC123"},
        }
        smsc.send_raw(codec.encode("deliver_sm", 900, **fields))
        assert smsc.wait_for(lambda: any(r[2] == 900 for r in smsc.responses))
        assert [r[1] for r in smsc.responses if r[2] == 900] == [0]
        assert recorder.steps()[0]["session"].startswith("smpp-")
    finally:
        connector.stop()


def test_no_phone_number_appears_in_the_connectors_logs(smsc, recorder, connector, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    smsc.answer(number, "refuse")
    smsc.drop_binds()
    assert smsc.wait_for(lambda: smsc.binds >= 2, timeout=5)
    smsc.answer(number, "bye")
    smsc.wait_screen(number, 2)
    assert PHONE.lstrip("+") not in caplog.text and PHONE[-8:] not in caplog.text


def test_a_step_may_come_as_data_sm_with_its_text_in_message_payload(smsc, recorder, connector) -> None:
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    session = smsc.sessions[number]
    session.dialogue += 1
    fields = {
        "service_type": "USSD",
        "source_addr": PHONE.lstrip("+"),
        "destination_addr": "7472",
        "message_payload": b"2",
        "ussd_service_op": int(codec.UssdOp.USSR_CONFIRM),
        "its_session_info": session.session_info(),
    }
    smsc.send_raw(codec.encode("data_sm", 700, **fields))
    assert smsc.wait_screen(number, 2).text == "step 2: 2"
    assert ("data_sm_resp", 0, 700) in smsc.responses


def test_many_sessions_at_once_are_all_served_through_a_small_window(smsc, recorder) -> None:
    connector = connect(smsc, recorder, "&window=2")
    try:
        numbers = [smsc.dial(f"+2237000{n:04d}") for n in range(40)]
        for number in numbers:
            assert smsc.wait_screen(number, 1).text == "step 1: -"
            smsc.answer(number, "bye")
        assert all(smsc.wait_screen(number, 2).end for number in numbers)
        assert len(recorder.steps()) == 80
    finally:
        connector.stop()


def test_an_impossible_command_length_is_nacked_and_the_connector_binds_again(
    smsc, recorder, connector
) -> None:
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    smsc.send_raw(struct.pack(">LLLL", 0x7FFFFFFF, 0x00000005, 0, 600))  # no stream can follow that
    assert smsc.wait_for(lambda: ("generic_nack", codec.RINVCMDLEN, 600) in smsc.responses)
    assert smsc.wait_for(lambda: smsc.binds == 2, timeout=5)
    smsc.answer(number, "1")
    assert smsc.wait_screen(number, 2).text == "step 2: 1"


def test_the_same_input_typed_twice_in_a_vendor_tlv_session_is_two_steps(smsc, recorder) -> None:
    connector = connect(smsc, recorder, "&session_tlv=0x1501")
    try:
        base = {
            "source_addr": PHONE.lstrip("+"),
            "destination_addr": "7472",
            "vendor_tlvs": {0x1501: b"S-77"},
        }
        for sequence, op, text in ((910, 1, b""), (911, 18, b"1"), (912, 18, b"1")):
            smsc.send_raw(
                codec.encode("deliver_sm", sequence, ussd_service_op=op, short_message=text, **base)
            )
            assert smsc.wait_for(lambda s=sequence: any(r[2] == s for r in smsc.responses))
        assert [s["text"] for s in recorder.steps()] == ["", "1", "1"]
        assert len({s["session"] for s in recorder.steps()}) == 1
    finally:
        connector.stop()


def test_stopping_finishes_the_step_under_way_and_sends_its_reply_before_unbinding(smsc, recorder) -> None:
    connector = connect(smsc, recorder)
    number = smsc.dial(PHONE)
    smsc.wait_screen(number, 1)
    recorder.release.clear()
    smsc.answer(number, "slow")
    assert recorder.started.wait(5)
    stopping = threading.Thread(target=connector.stop)
    stopping.start()
    time.sleep(0.3)
    recorder.release.set()
    stopping.join(10)
    assert smsc.sessions[number].screens[-1].text == "step 2: slow"
    assert smsc.wait_for(lambda: not smsc.bound, timeout=5)
