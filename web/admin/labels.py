"""What staff read for the codes the service stores: needs, kinds, outcomes, purposes, actors...

The database and the conversation keep stable codes (`lt3m`, `help.sent`, `provider_alert`);
a page shows their label in the admin's language, never the code. A value that is not a code
(a provider's own name, a free-text kind typed by a coordinator) is data, shown as it is.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import Role
from models.directory import Category
from models.follow_up import FollowUpStatus
from models.referral import Flag, Status
from web.admin.i18n import _, translate

REFERRAL_STATUSES = {
    Status.NEW: _("new"), Status.SENT: _("sent"), Status.ACCEPTED: _("accepted"), Status.DECLINED: _("declined"),
    Status.EXPIRED: _("expired"), Status.CLOSED: _("closed"), Status.CANCELLED: _("cancelled"),
}  # fmt: skip
# Why a referral waits for a coordinator (models.referral.Flag), as the list and the page say it.
FLAG_REASONS = {
    Flag.NOT_HELPED: _("the returnee says they were not helped"),
    Flag.NO_PROVIDER: _("no provider could take it"),
    Flag.NO_ANSWER: _("a provider did not answer in time"),
    Flag.FOLLOW_UP_NOT_SERVED: _("at a follow-up, the returnee said they are not served"),
    Flag.FOLLOW_UP_NEEDS_MORE: _("at a follow-up, the returnee said they need something else"),
}  # fmt: skip
# A follow-up of an outcome: asked by SMS days after closing, and what the returnee answered.
FOLLOW_UP_STATUSES = {
    FollowUpStatus.PENDING: _("awaiting an answer"), FollowUpStatus.SERVED: _("still served"),
    FollowUpStatus.NOT_SERVED: _("not served"), FollowUpStatus.NEEDS_MORE: _("needs something else"),
    FollowUpStatus.NO_ANSWER: _("no answer"),
}  # fmt: skip
ROLES = {
    Role.ADMIN: _("administrator"), Role.COORDINATOR: _("coordinator"), Role.VIEWER: _("viewer"),
    Role.PROVIDER: _("provider focal point"), Role.AGENT: _("reception agent"),
}  # fmt: skip
# The needs by their code (the directory's own names are English working names, some with a
# note for whoever edits the seed, such as child protection's "minors, whatever they asked").
CATEGORIES = {
    "jobs": _("Jobs and training"), "activity": _("Starting an activity, microcredit"), "health": _("Health"),
    "psychosocial": _("Psychosocial support"), "shelter": _("Shelter"), "documents": _("Civil status and identity documents"),
    "legal": _("Legal aid"), "family": _("Family and children"), "protection": _("Emergency and protection"),
    "child_protection": _("Child protection"),
}  # fmt: skip
# Kinds of CNRM members, as the sample directory records them; a kind typed otherwise is data.
PROVIDER_KINDS = {
    "employment agency": _("employment agency"), "youth employment agency": _("youth employment agency"),
    "vocational training fund": _("vocational training fund"),
    "international organisation": _("international organisation"), "red cross": _("Red Cross"),
    "health centre": _("health centre"), "social development service": _("social development service"),
    "child protection service": _("child protection service"), "returnee association": _("returnee association"),
    "microfinance institution": _("microfinance institution"), "legal clinic": _("legal clinic"),
    "civil status office": _("civil status office"),
}  # fmt: skip
LANGUAGES = {"fr": _("French"), "bm": _("Bambara"), "en": _("English")}
SEXES = {"m": _("man"), "f": _("woman")}
AGE_GROUPS = {"u18": _("under 18"), "18-25": _("18 to 25"), "26-35": _("26 to 35"), "36-50": _("36 to 50"),
              "50+": _("over 50"), "25_34": _("25 to 34")}  # fmt: skip
COUNTRIES = {
    "ly": _("Libya"), "dz": _("Algeria"), "ne": _("Niger"), "mr": _("Mauritania"), "ci": _("Côte d'Ivoire"),
    "ma": _("Morocco"), "europe": _("Europe"), "other": _("another country"),
}  # fmt: skip
RETURNED_SINCE = {"lt3m": _("less than 3 months"), "3-12m": _("3 to 12 months"), "1-2y": _("1 to 2 years"),
                  "gt2y": _("more than 2 years")}  # fmt: skip
OUTCOMES = {
    "help.sent": _("request sent"), "mydata.erase_sent": _("erasure code sent"),
    "mydata.withdrawn": _("consent withdrawn"), "registration.done": _("registered"),
    "registration.refused": _("consent refused"), "focal.done": _("a focal point answered a referral"),
}  # fmt: skip
PURPOSES = {
    "provider_alert": _("new referral, to the provider"), "provider_reminder": _("reminder, to the provider"),
    "provider_accepted": _("acceptance confirmed, to the provider"),
    "provider_declined": _("decline confirmed, to the provider"), "provider_closed": _("closing confirmed, to the provider"),
    "provider_help": _("help, to the provider"), "provider_reply": _("answer, to the provider"),
    "returnee_received": _("request received, to the returnee"), "returnee_accepted": _("accepted, to the returnee"),
    "returnee_desk": _("coordination looking, to the returnee"), "returnee_feedback": _("feedback question, to the returnee"),
    "returnee_erased": _("erasure, to the returnee"), "returnee_reply": _("answer, to the returnee"),
    "returnee_follow_up": _("follow-up question, to the returnee"),
}  # fmt: skip
HANDLED_AS = {
    "accept": _("acceptance"), "decline": _("decline"), "close": _("closing"), "help": _("help"),
    "status": _("status"), "stop": _("opt-out"), "start": _("opt-in"), "erase": _("erasure request"),
    "feedback": _("feedback"), "unknown": _("not understood"), "unknown_code": _("unknown code"),
    "not_assigned": _("another provider's referral"), "illegal_transition": _("not possible in this status"),
    "provider_help": _("help"), "rate_limited": _("too many messages"), "erased": _("data erased"),
    "follow_up": _("follow-up answer"), "follow_up_help": _("follow-up answer not understood"),
}  # fmt: skip
SENDER_KINDS = {"provider": _("provider"), "returnee": _("returnee")}
CHANNELS = {"ussd": _("USSD"), "sms": _("SMS"), "web": _("web"), "system": _("automatic")}
ACTORS = {"system": _("Sira (automatic)"), "returnee": _("the returnee")}
# What Africa's Talking reports: how a USSD session ended, how far an SMS got.
SESSION_ENDS = {"Success": _("completed"), "Failed": _("failed"), "Incomplete": _("cut off")}
DELIVERY = {
    "Success": _("delivered"), "Failed": _("not delivered"), "Rejected": _("rejected by the network"),
    "Sent": _("on its way"), "Submitted": _("handed to the network"), "Buffered": _("waiting for the phone"),
    "AbsentSubscriber": _("phone unreachable"), "Expired": _("too late for delivery"),
}  # fmt: skip
DELIVERY_REASONS = {
    "InsufficientCredit": _("not enough credit"), "InvalidLinkId": _("invalid link id"),
    "UserIsInactive": _("subscriber inactive"), "UserInBlacklist": _("subscriber blocks such messages"),
    "UserAccountSuspended": _("subscriber suspended"), "NotNetworkSubscriber": _("not a subscriber of this network"),
    "UserNotSubscribedToProduct": _("not subscribed"), "UserDoesNotExist": _("number does not exist"),
    "DeliveryFailure": _("delivery failure"), "AbsentSubscriber": _("phone unreachable"),
}  # fmt: skip
# Notes the service writes itself; what staff type is shown as typed.
SYSTEM_NOTES = {
    "reminder sent": _("reminder sent"), "no answer before the deadline": _("no answer before the deadline"),
    "consent withdrawn": _("consent withdrawn"), "re-route found no other provider": _("re-route found no other provider"),
    "withdrawn by the coordination": _("withdrawn by the coordination"),
}  # fmt: skip
AUDIT_ACTIONS = {
    "login": _("sign-in"), "login.failed": _("failed sign-in"), "logout": _("sign-out"),
    "export": _("export"), "sms.view": _("SMS texts viewed"), "sms.retry": _("SMS sent again"),
    "user.create": _("user created"), "user.enable": _("user enabled"), "user.disable": _("user disabled"),
    "user.unlock": _("user unlocked"), "user.role": _("role changed"),
    "user.password.change": _("own password changed"), "user.password.reset_link": _("password reset link made"),
    "user.password.reset": _("password reset by link"),
    "provider.create": _("provider created"), "provider.update": _("provider changed"),
    "provider.deactivate": _("provider deactivated"), "provider.reactivate": _("provider reactivated"),
    "referral.view": _("referral viewed"), "referral.reroute": _("referral re-routed"),
    "referral.cancel": _("referral cancelled"), "referral.note": _("note added"),
    "referral.accept": _("referral accepted"), "referral.decline": _("referral declined"),
    "referral.close": _("referral closed"), "referral.unflag": _("flag cleared"), "returnee.view": _("returnee viewed"),
    "returnee.erase": _("returnee erased"), "ussd.view": _("USSD session viewed"), "job.retry": _("job retried"),
}  # fmt: skip
AUDIT_KEYS = {
    "from_provider_id": _("from provider"), "to_provider_id": _("to provider"), "chosen": _("chosen by hand"),
    "found": _("provider found"), "returnee_id": _("returnee"), "shown": _("details shown"),
    "masked": _("masked"), "reason": _("reason given"), "session_id": _("session"), "steps": _("steps"),
    "role": _("role"), "before": _("before"), "after": _("after"), "provider_id": _("provider"),
    "generated_password": _("password generated"), "sessions_ended": _("sessions ended"),
    "locked": _("locked"), "fields": _("fields"), "page": _("page"), "referrals": _("referrals"),
    "via": _("through"), "queue": _("queue"), "function": _("function"), "status": _("status"),
    "category": _("need"), "region": _("region"), "provider": _("provider"), "overdue": _("overdue"),
    "from": _("from"), "to": _("to"), "name": _("name"), "kind": _("kind"), "national": _("national"),
    "capacity": _("daily capacity"), "language": _("language"), "contact_phone": _("contact number"),
    "categories": _("needs"), "regions": _("regions"), "numbers": _("SMS numbers"),
    "changed": _("password changed"), "minutes": _("minutes valid"), "flag": _("flagged because"),
    "flagged": _("flagged for a coordinator"),
}  # fmt: skip
# Audit values that are codes of a known table, by the detail's key.
AUDIT_VALUE_TABLES = {"role": "role", "before": "role", "after": "role", "status": "status", "category": "category",
                      "fields": "audit_key", "flag": "flag"}  # fmt: skip
OBJECT_TYPES = {
    "referral": _("referral"), "referrals": _("referrals"), "user": _("user"), "provider": _("provider"),
    "returnee": _("returnee"), "sms": _("SMS"), "outbound_sms": _("SMS"), "ussd_session": _("session"),
    "dashboard": _("dashboard"), "job": _("job"),
}  # fmt: skip
WORKER_STATES = {"idle": _("waiting for work"), "busy": _("running a job"), "started": _("starting"),
                 "suspended": _("suspended")}  # fmt: skip
SMS_DIRECTIONS = {"out": _("outgoing"), "in": _("incoming")}

TABLES = {
    "status": REFERRAL_STATUSES, "role": ROLES, "category": CATEGORIES, "kind": PROVIDER_KINDS,
    "language": LANGUAGES, "sex": SEXES, "age": AGE_GROUPS, "country": COUNTRIES, "since": RETURNED_SINCE,
    "outcome": OUTCOMES, "purpose": PURPOSES, "handled": HANDLED_AS, "sender": SENDER_KINDS,
    "channel": CHANNELS, "actor": ACTORS, "session_end": SESSION_ENDS, "delivery": DELIVERY, "reason": DELIVERY_REASONS, "note": SYSTEM_NOTES,
    "action": AUDIT_ACTIONS, "audit_key": AUDIT_KEYS, "object": OBJECT_TYPES, "direction": SMS_DIRECTIONS,
    "worker": WORKER_STATES, "flag": FLAG_REASONS,
}  # fmt: skip


def label(value: object, table: str) -> str:
    """The staff's word for a stored code; a value no table knows is data and shown as it is."""
    if value is None or value == "":
        return "-"
    known = TABLES[table].get(str(value))
    return translate(known) if known is not None else str(value)


def audit_value(value: object, key: str = "") -> str:
    """An audit detail as words: yes/no for flags, a dash for nothing, labels for known codes."""
    if value is True:
        return translate(_("yes"))
    if value is False:
        return translate(_("no"))
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(audit_value(v, key) for v in value)
    if key in AUDIT_VALUE_TABLES:
        return label(value, AUDIT_VALUE_TABLES[key])
    if key == "page" and value == "erase":
        return translate(_("erasure"))
    if key == "via" and value == "cli":
        return translate(_("command line"))
    return str(value)


def category_names(session: Session) -> dict[str, str]:
    """Every need in menu order, by its label in the page's language (the directory's name for a
    need added since, until it is given one)."""
    rows = session.execute(select(Category.code, Category.name).order_by(Category.position)).all()
    return {code: translate(CATEGORIES[code]) if code in CATEGORIES else name for code, name in rows}


def init_app(app: Flask) -> None:
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["audit_value"] = audit_value
