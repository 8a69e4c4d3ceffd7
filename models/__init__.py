"""Database models, one module per aggregate; importing this package registers them all."""

from models.admin import AuditEntry, Role, User
from models.base import Base
from models.directory import Category, Provider, ProviderNumber, Region
from models.follow_up import FollowUp, FollowUpStatus
from models.messaging import InboundSms, OutboundSms, SmsStatus
from models.referral import Referral, ReferralEvent, Status
from models.returnee import ConsentRecord, Erasure, Returnee
from models.ussd import UssdSession, UssdStep

__all__ = [
    "AuditEntry",
    "Base",
    "Category",
    "ConsentRecord",
    "Erasure",
    "FollowUp",
    "FollowUpStatus",
    "InboundSms",
    "OutboundSms",
    "Provider",
    "ProviderNumber",
    "Referral",
    "ReferralEvent",
    "Region",
    "Returnee",
    "Role",
    "SmsStatus",
    "Status",
    "User",
    "UssdSession",
    "UssdStep",
]
