"""The SMS texts Sira sends, per language, folded to GSM-7.

SMS is read on shared phones and by the operator, so disclosure is stepwise: an alert to a
provider says the code, a neutral label, the region and how to answer; the returnee's messages
say nothing a relative should not read (no category, no provider kind, no "migrant").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flows.i18n import Catalogs, _
from flows.text import to_gsm7

if TYPE_CHECKING:
    from config import Settings

# To a provider's focal point (in the provider's language).
PROVIDER_ALERT = _(
    "Sira: new request {code} ({category}, {region}). Reply OK {code} to accept or NON {code} to decline."
)
P_REMINDER = _(
    "Sira reminder: request {code} ({category}, {region}) awaits your answer. Reply OK {code} or NON {code}."
)
P_ACCEPTED = _("Sira: {code} is yours. Contact {name}, {phone}. When served, reply FINI {code}.")
P_DECLINED = _("Sira: {code} declined. Thank you, we will send it to another service.")
P_CLOSED = _("Sira: {code} closed. Thank you.")
P_NOT_YOURS = _("Sira: request {code} is not assigned to you.")
P_UNKNOWN_CODE = _("Sira: no request has the code {code}. Check the code and try again.")
P_ILLEGAL = _("Sira: request {code} is {status}; your reply changes nothing.")
P_HELP = _(
    "Sira: reply OK and the code to accept, NON and the code to decline, FINI and the code when served."
)

# To a returnee (in their language, from a neutral sender, nothing a relative should not read).
RETURNEE_RECEIVED = _(
    "Your request {code} is registered. We will send you news by SMS. Dial {ussd} to follow it."
)

# No provider name: "CSRef" or "Association des migrants de retour" tells a relative the need.
R_ACCEPTED = _("Your request {code} has been accepted. The service will contact you; you can call {phone}.")
R_DESK = _("Your request {code}: a coordinator is looking for the right service and will contact you.")
R_FEEDBACK = _("Your request {code} is closed. Were you helped? Reply 1 for yes, 2 for no.")
R_FEEDBACK_THANKS = _("Thank you for your answer.")
R_FEEDBACK_NOT_HELPED = _(
    "We are sorry. A coordinator will look at your request {code} and contact you. For other help, dial {ussd}."
)
# Days after closing (FOLLOW_UP_DAYS): the outcome follow-up. No need, no provider: only the code.
R_FOLLOW_UP = _(
    "Sira: news of your request {code}. Are you still helped? Reply 1 yes, 2 no, 3 if you need other help."
)
R_FOLLOW_UP_HELP = _(
    "Sira: about your request {code}, reply 1 if you are still helped, 2 if not, 3 if you need other help."
)
R_FOLLOW_UP_MORE = _("Thank you. Dial {ussd} to make a new request now; a coordinator will also contact you.")
R_HELP = _(
    "Sira: dial {ussd} for the menu. SMS: STATUT to follow your requests, STOP for no more SMS, SUPPRIMER to erase your data."
)
# After a reception agent registered the person: the code and keywords stay in their phone.
R_WELCOME = _(
    "Welcome to Sira. Dial {ussd} to ask for help. SMS: AIDE for help, STATUT to follow your requests, STOP for no more SMS."
)
R_STATUS = _("Your requests: {list}.")
R_STATUS_NONE = _("You have no open request. Dial {ussd} to ask for help.")
R_STOPPED = _("You will receive no more SMS from Sira. Send START to receive them again.")
R_STARTED = _("You will receive SMS from Sira again.")
R_ERASE_CONFIRM = _("To erase all your data, reply SUPPRIMER {pin} within {minutes} minutes.")
R_ERASE_BAD_PIN = _("This code is wrong or has expired. Send SUPPRIMER to get a new one.")
R_ERASED = _("Your data has been erased.")
R_ERASE_NOTHING = _("Sira holds no data for this number: there is nothing to erase.")
R_UNKNOWN = _("Sira did not understand. Send AIDE for help or dial {ussd}.")

# Neutral labels an SMS may show (the directory gives each category one, its sira_sms_label).
SMS_LABELS = (_("employment"), _("activity"), _("support"), _("housing"), _("documents"), _("advice"))


@dataclass(frozen=True)
class Sms:
    """A rendered message and the sender it must come from."""

    body: str
    sender: str


@dataclass(frozen=True)
class SmsTexts:
    """Renders Sira's messages; senders and the USSD code come from the settings."""

    catalogs: Catalogs
    provider_sender: str
    returnee_sender: str
    ussd_code: str
    erase_pin_minutes: int  # how long an erasure PIN lives; said in the SMS that carries it

    @classmethod
    def from_settings(cls, settings: Settings, catalogs: Catalogs) -> SmsTexts:
        """The one way to build the texts, for the web layer and the workers alike."""
        return cls(
            catalogs, settings.sms_sender_provider, settings.sms_sender_returnee, settings.ussd_service_code,
            settings.erase_pin_minutes,
        )  # fmt: skip

    def render(self, lang: str, msgid: str, labels: dict[str, str] | None = None, **values: str) -> str:
        """The message in `lang`: `labels` are message ids translated too, `values` go in as they are."""
        params = {k: self.catalogs.gettext(lang, v) for k, v in (labels or {}).items()}
        return to_gsm7(self.catalogs.gettext(lang, msgid).format(ussd=self.ussd_code, **params, **values))

    def to_provider(self, lang: str, msgid: str, labels: dict[str, str] | None = None, **values: str) -> Sms:
        return Sms(self.render(lang, msgid, labels, **values), self.provider_sender)

    def to_returnee(self, lang: str, msgid: str, labels: dict[str, str] | None = None, **values: str) -> Sms:
        return Sms(self.render(lang, msgid, labels, **values), self.returnee_sender)

    def provider_alert(self, lang: str, code: str, sms_label: str, region_name: str) -> Sms:
        return self.to_provider(lang, PROVIDER_ALERT, {"category": sms_label}, code=code, region=region_name)

    def erase_pin(self, lang: str, pin: str) -> Sms:
        return self.to_returnee(lang, R_ERASE_CONFIRM, pin=pin, minutes=str(self.erase_pin_minutes))

    def returnee_received(self, lang: str, code: str) -> Sms:
        return self.to_returnee(lang, RETURNEE_RECEIVED, code=code)
