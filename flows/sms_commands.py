"""Reading an incoming SMS: a provider's command or a returnee's keyword, in any of our languages.

Before matching, case, accents, tone marks and punctuation are folded, and the Bambara letters
are written plain (ɛ/è → e, ɔ/ò → o, ɲ/ñ → ny, ŋ → ng), as people type them every way.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from flows.text import to_ussd
from infra.referral_code import is_code


class Command(enum.StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    CLOSE = "close"
    HELP = "help"
    STATUS = "status"
    STOP = "stop"
    START = "start"
    ERASE = "erase"
    FEEDBACK = "feedback"
    UNKNOWN = "unknown"


KEYWORDS = {
    Command.ACCEPT: ("OK", "OUI", "ACCEPT", "ACCEPTE", "ACCEPTER", "YES", "OWO", "AWO", "SON"),
    Command.DECLINE: ("NON", "NO", "REFUS", "REFUSE", "REFUSER", "DECLINE", "AYI"),
    Command.CLOSE: ("FINI", "FIN", "TERMINE", "TERMINER", "DONE", "CLOSE", "CLOS", "LABAN"),
    Command.HELP: ("AIDE", "HELP", "DEME", "INFO"),
    Command.STATUS: ("STATUT", "STATUS", "COGOYA", "SUIVI"),
    Command.STOP: ("STOP", "ARRET", "ARRETER", "DABILA", "UNSUBSCRIBE"),
    Command.START: ("START", "REPRENDRE", "DEMARRER", "DAMINE"),
    Command.ERASE: ("SUPPRIMER", "EFFACER", "DELETE", "ERASE", "JOSI"),
}
# A digit alone answers the question last asked: the feedback at closing (1, 2), a follow-up (1, 2, 3).
ANSWER_DIGITS = ("1", "2", "3")
BY_WORD = {word: command for command, words in KEYWORDS.items() for word in words}


@dataclass(frozen=True)
class Parsed:
    """What a message asks: the command, a referral code or confirmation number, and any rest."""

    command: Command
    code: str | None = None
    rest: str = ""


def normalise(text: str) -> list[str]:
    """Upper-case plain words: 'ok  r7k3q!' → ['OK', 'R7K3Q']."""
    plain = to_ussd(text or "").upper()
    return re.findall(r"[A-Z0-9]+", plain)


def parse(text: str) -> Parsed:
    """Read a message; anything we cannot read is UNKNOWN, never an error."""
    words = normalise(text)
    if not words:
        return Parsed(Command.UNKNOWN)
    if len(words) == 1 and words[0] in ANSWER_DIGITS:
        return Parsed(Command.FEEDBACK, code=words[0])
    command = BY_WORD.get(words[0])
    if command is None:
        return Parsed(Command.UNKNOWN, rest=" ".join(words))
    code = words[1] if len(words) > 1 else None
    rest_words = words[2:] if code else []
    if code is not None and not (is_code(code) or code.isdigit()):
        code, rest_words = None, words[1:]
    original_rest = _rest_after_code(text, code) if code else ""
    return Parsed(command, code=code, rest=original_rest or " ".join(rest_words))


def _rest_after_code(text: str, code: str) -> str:
    """The free text after the code, as typed (a decline reason), whatever separated them."""
    found = re.search(re.escape(code), text, flags=re.IGNORECASE)
    if found is None:
        return ""
    return text[found.end() :].strip(" \t\r\n.,;:!-")[:200]
