"""Database models, one module per aggregate; importing this package registers them all."""

from models.base import Base
from models.returnee import ConsentRecord, Returnee
from models.ussd import UssdSession, UssdStep

__all__ = ["Base", "ConsentRecord", "Returnee", "UssdSession", "UssdStep"]
