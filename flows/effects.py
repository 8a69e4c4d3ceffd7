"""What a conversation asks the host to do, as data; the web layer performs them.

The engine never touches the database or Redis: it returns these, and the host carries them
out once the new state is saved. Each must be safe to perform twice (a gateway retry, or a
state rebuilt from the `text` history, may replay the step that emitted it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class SetLanguage:
    """Remember the returnee's language for their next sessions."""

    language: str


@dataclass(frozen=True)
class Profile:
    """What a registration stores about a returnee, whichever way they registered (USSD or a
    reception agent): their first name, and codes of the registration journey's options."""

    first_name: str
    sex: str
    age_group: str
    region: str
    returned_from: str
    returned_since: str

    @classmethod
    def of(cls, answers: Mapping[str, str]) -> Profile:
        """The profile from answers keyed by its field names (the journey's `save` names)."""
        return cls(**{name: answers[name] for name in PROFILE_FIELDS})


PROFILE_FIELDS = tuple(f.name for f in fields(Profile))


@dataclass(frozen=True)
class SaveRegistration:
    """Create or update the returnee with their profile and record their consent."""

    profile: Profile
    consent_version: str
    channel: str = "ussd"  # "agent": registered on the spot by a reception agent, who read the consent
    agent_id: int | None = None


@dataclass(frozen=True)
class RefuseConsent:
    """The returnee declined: keep nothing of the registration, record the refusal if known."""

    consent_version: str


@dataclass(frozen=True)
class CreateReferral:
    """Refer the (registered, consenting) returnee for a need; the host fills `{code}` back in."""

    category: str


@dataclass(frozen=True)
class RequestErasure:
    """Send the returnee, by SMS, the code that confirms the erasure of their data."""


@dataclass(frozen=True)
class AnswerReferral:
    """A provider's focal point answers one of its referrals, as its SMS `OK`/`NON`/`FINI` would:
    `action` is accept, decline (with `reason`, a code of the focal journey's list) or close."""

    code: str
    action: str
    reason: str = ""


Effect = SetLanguage | SaveRegistration | RefuseConsent | CreateReferral | RequestErasure | AnswerReferral
