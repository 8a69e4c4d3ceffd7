"""The conversation a returnee has with Sira, assembled from its journeys."""

from __future__ import annotations

from flows.engine import Conversation
from flows.journeys import focal, help, home, mydata, registration, requests


def conversation() -> Conversation:
    """Every journey, with the main menu as root, the language choice as first dial, and a
    provider's number's own root (its open referrals)."""
    return Conversation(
        (home.JOURNEY, registration.JOURNEY, help.JOURNEY, requests.JOURNEY, mydata.JOURNEY, focal.JOURNEY),
        root=home.MAIN_MENU,
        first_dial=home.FIRST_DIAL,
        provider_root=focal.ROOT,
    )
