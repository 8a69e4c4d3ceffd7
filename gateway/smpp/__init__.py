"""USSD over SMPP 3.4: the connector (an ESME) that binds to operators' USSD gateways.

The per-operator settings are `config.SmppLink` (SMPP_CONNECTIONS); `codec` wraps smpplib's PDU codec, `session` is one bound
connection, `link` keeps one gateway bound and sends replies through it, `steps` turns a USSD PDU
into a neutral `UssdStep` and a `UssdReply` into a `submit_sm`, and `connector` ties them to the
conversation. Nothing here knows menus or records: it receives a `Conversation` callable.
"""

from gateway.smpp.connector import Connector

__all__ = ["Connector"]
