"""SMPP_CONNECTIONS: each operator's link in one URL, checked at start-up, the password never echoed."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings


def test_the_default_link_is_the_local_gateway_emulator_with_smpp_34s_usual_ussd_profile() -> None:
    (link,) = load_settings({}).smpp_links
    assert (link.host, link.port, link.bind, link.tls) == ("127.0.0.1", 2775, "trx", False)
    assert (link.op_dial, link.op_answer, link.op_continue, link.op_end) == (1, 18, 2, 17)
    assert (link.session_tlv, link.data_coding, link.dial_through) == (0x1383, 0, True)


def test_several_links_with_their_own_settings() -> None:
    orange, moov = load_settings(
        {
            "SMPP_CONNECTIONS": "smpps://sira:pw@ussd.orange.example:3775?name=orange&network=61002&bind=rx%2Btx"
            "&data_coding=8&op_end=16 ; smpp://sira:pw@10.0.0.2?name=moov&session_tlv=0x1501&dial_through=no"
        }
    ).smpp_links
    assert (orange.tls, orange.port, orange.bind, orange.data_coding, orange.op_end) == (
        True,
        3775,
        "rx+tx",
        8,
        16,
    )
    assert (moov.port, moov.session_tlv, moov.dial_through, moov.label) == (2775, 0x1501, False, "moov")
    assert "pw" not in repr(orange)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("http://sira:s3cret@host", "must be smpp://"),
        ("smpp://sira:s3cret@host?bind=both", "bind must be trx or rx+tx"),
        ("smpp://sira:s3cret@host?windw=3", "unknown setting 'windw'"),
        ("smpp://sira:s3cret@host?data_coding=4", "data_coding must be 0"),
        ("smpp://sira:s3cret@host?session_tlv=0x0200", "session_tlv must be"),
        ("smpp://sira:s3cret@host?reply_timeout=soon", "reply_timeout='soon' is not a valid float"),
        ("smpp://sira:s3cret@host?name=a smpp://sira:s3cret@other?name=a", "same name"),
        ("smpp://sira:much-too-long-password@host", "too long"),
    ],
)
def test_a_malformed_link_fails_start_up_with_one_line_naming_it_and_hiding_the_password(value, says) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"SMPP_CONNECTIONS": value})
    message = str(caught.value)
    assert message.startswith("SMPP_CONNECTIONS: ") and says in message and "\n" not in message
    assert "s3cret" not in message and "much-too-long" not in message
