"""Database models, one module per aggregate; importing this package registers them all."""

from models.base import Base
from models.directory import Category, Provider, ProviderNumber, Region
from models.messaging import InboundSms, OutboundSms, SmsStatus
from models.referral import Referral, ReferralEvent, Status
from models.returnee import ConsentRecord, Returnee
from models.ussd import UssdSession, UssdStep

__all__ = [
    "Base",
    "Category",
    "ConsentRecord",
    "InboundSms",
    "OutboundSms",
    "Provider",
    "ProviderNumber",
    "Referral",
    "ReferralEvent",
    "Region",
    "Returnee",
    "SmsStatus",
    "Status",
    "UssdSession",
    "UssdStep",
]
