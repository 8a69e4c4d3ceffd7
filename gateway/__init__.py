"""SMS gateways: the interface jobs use, the adapters behind it, and the choice between them.

Jobs ask `gateway_from_settings(settings)` for a gateway and only ever call `send`; switching
aggregator is a matter of `SMS_GATEWAY`, either a name registered in `GATEWAYS` or the import path
of a factory (`package.module:factory`, called with the settings) for an adapter kept elsewhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from config import callback_url
from gateway import kannel
from gateway.africastalking import AfricasTalkingGateway
from gateway.base import Outcome, OutgoingSms, SendResult, SmsGateway
from gateway.kannel import KannelGateway
from gateway.orange import OrangeGateway

if TYPE_CHECKING:
    from config import Settings

__all__ = [
    "GATEWAYS",
    "AfricasTalkingGateway",
    "KannelGateway",
    "OrangeGateway",
    "Outcome",
    "OutgoingSms",
    "SendResult",
    "SmsGateway",
    "gateway_from_settings",
]


def _africastalking(settings: Settings) -> SmsGateway:
    return AfricasTalkingGateway(
        username=settings.at_username,
        api_key=settings.at_api_key,
        api_url=settings.at_api_url or None,
        timeout_seconds=settings.at_timeout_seconds,
    )


def _orange(settings: Settings) -> SmsGateway:
    return OrangeGateway(
        api_url=settings.orange_api_url,
        client_id=settings.orange_client_id,
        client_secret=settings.orange_client_secret,
        sender_address=settings.orange_sender_address,
        sender_name=settings.orange_sender_name,
        timeout_seconds=settings.orange_timeout_seconds,
    )


def _kannel(settings: Settings) -> SmsGateway:
    return KannelGateway(
        sendsms_url=settings.kannel_sendsms_url,
        username=settings.kannel_username,
        password=settings.kannel_password,
        dlr_url=callback_url(settings.public_base_url, kannel.DELIVERY_PATH, settings.callback_secrets),
        timeout_seconds=settings.kannel_timeout_seconds,
        dlr_mask=settings.kannel_dlr_mask,
        smsc=settings.kannel_smsc,
    )


GATEWAYS: dict[str, Callable[[Settings], SmsGateway]] = {
    "africastalking": _africastalking,
    "orange": _orange,
    "kannel": _kannel,
}


def gateway_from_settings(settings: Settings) -> SmsGateway:
    """Build the gateway named by SMS_GATEWAY; a bad name fails at start-up, not at the first SMS."""
    name = settings.sms_gateway.strip()
    factory = GATEWAYS.get(name.lower())
    if factory is None and ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ValueError(
                f"SMS_GATEWAY={name!r}: cannot import {attribute!r} from {module_name!r}"
            ) from exc
    if factory is None:
        known = ", ".join(sorted(GATEWAYS))
        raise ValueError(
            f"SMS_GATEWAY={name!r} is not a known SMS gateway (known: {known}, or module:factory)"
        )
    return factory(settings)
