"""The USSD messages every transport speaks: a neutral step in, a neutral reply out.

A transport (Africa's Talking's form over HTTP, an operator's SMPP gateway) turns what it receives
into a `UssdStep`, hands it to the conversation, and renders the `UssdReply` in its own terms
(`CON `/`END ` text, a `submit_sm` with `ussd_service_op`). Nothing about a transport goes past
these two types, so everything that holds for one transport holds for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class UssdStep:
    """One request of a USSD session, whatever transport brought it.

    `text` is the whole history when `cumulative` (Africa's Talking sends every answer so far,
    `*`-joined: `1*2*Awa`), or only the newest input when not (an SMPP gateway sends what was
    just typed, and says whether it opens the session: `dialled`; the dial itself comes with an
    empty input, or the dial-through's answers, `*`-joined).
    """

    session_id: str
    phone: str  # E.164
    service_code: str
    text: str = ""
    cumulative: bool = True
    network: str = ""  # the operator's network code, when the transport says it
    transport: str = "at"  # which transport brought it: for logs and figures, never for logic
    dialled: bool = False  # not cumulative: this request opens the session (SMPP's PSSR indication)
    step_id: str = ""  # not cumulative: the transport's identity of this request, so that the same
    # request delivered twice is one step with one reply (e.g. its_session_info's sequence number)


@dataclass(frozen=True)
class UssdReply:
    """What the person sees next, and whether the session goes on."""

    text: str
    end: bool


class StepRefused(ValueError):
    """The step cannot be acted on (a session id of another phone): the transport refuses it
    its own way (a 400, a nack) and nothing is touched. The message says why, for the gateway."""


Conversation = Callable[[UssdStep], UssdReply]
