"""USSD over SMPP 3.4: the connector (an ESME) that binds to operators' USSD gateways.

`links` reads the per-operator settings, `codec` wraps smpplib's PDU codec, `session` is one bound
connection, `link` keeps one gateway bound and sends replies through it, `steps` turns a USSD PDU
into a neutral `UssdStep` and a `UssdReply` into a `submit_sm`, and `connector` ties them to the
conversation. Nothing here knows menus or records: it receives a `Conversation` callable.
"""

from gateway.smpp.connector import Connector
from gateway.smpp.links import LinkSettings, parse_links

__all__ = ["Connector", "LinkSettings", "parse_links"]
