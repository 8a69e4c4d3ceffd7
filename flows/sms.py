"""The SMS texts Sira sends, per language, folded to GSM-7.

SMS is read on shared phones and by the operator, so disclosure is stepwise: an alert to a
provider says the code, a neutral label, the region and how to answer; the returnee's messages
say nothing a relative should not read (no category, no provider kind, no "migrant").
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.i18n import Catalogs, _
from flows.text import to_gsm7

PROVIDER_ALERT = _(
    "Sira: new request {code} ({category}, {region}). Reply OK {code} to accept or NON {code} to decline."
)
RETURNEE_RECEIVED = _(
    "Your request {code} is registered. We will send you news by SMS. Dial {ussd} to follow it."
)

# Neutral labels an SMS may show (seed/directory.yaml gives each category one).
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

    def render(self, lang: str, msgid: str, **params: str) -> str:
        translated = {k: self.catalogs.gettext(lang, v) for k, v in params.items()}
        return to_gsm7(self.catalogs.gettext(lang, msgid).format(**translated))

    def provider_alert(self, lang: str, code: str, sms_label: str, region_name: str) -> Sms:
        body = self.render(lang, PROVIDER_ALERT, code=code, category=sms_label, region=region_name)
        return Sms(body, self.provider_sender)

    def returnee_received(self, lang: str, code: str) -> Sms:
        return Sms(self.render(lang, RETURNEE_RECEIVED, code=code, ussd=self.ussd_code), self.returnee_sender)
