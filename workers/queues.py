"""Queue names, in one place; every enqueue and every worker refers to these."""

from __future__ import annotations

SMS = "sms"
DEFAULT = "default"

ALL = (SMS, DEFAULT)
