"""Code lists the conversation offers: stable codes are stored, labels are message ids."""

from __future__ import annotations

from flows.i18n import _
from flows.screens import Option

LANGUAGE_NAMES = (("fr", _("Français")), ("bm", _("Bamanankan")), ("en", _("English")))

SEXES = (Option("m", _("Man")), Option("f", _("Woman")))

AGE_GROUPS = (
    Option("u18", _("Under 18")),
    Option("18-25", _("18 to 25")),
    Option("26-35", _("26 to 35")),
    Option("36-50", _("36 to 50")),
    Option("50+", _("Over 50")),
)

# Official French names in every catalog (GLOSSARY §3); slugs are the stable ids.
REGIONS = (
    Option("bamako", _("Bamako")),
    Option("kayes", _("Kayes")),
    Option("koulikoro", _("Koulikoro")),
    Option("sikasso", _("Sikasso")),
    Option("segou", _("Ségou")),
    Option("mopti", _("Mopti")),
    Option("tombouctou", _("Tombouctou")),
    Option("gao", _("Gao")),
    Option("kidal", _("Kidal")),
    Option("taoudenit", _("Taoudénit")),
    Option("menaka", _("Ménaka")),
    Option("nioro", _("Nioro")),
    Option("kita", _("Kita")),
    Option("dioila", _("Dioïla")),
    Option("nara", _("Nara")),
    Option("bougouni", _("Bougouni")),
    Option("koutiala", _("Koutiala")),
    Option("san", _("San")),
    Option("douentza", _("Douentza")),
    Option("bandiagara", _("Bandiagara")),
)

COUNTRIES = (
    Option("ly", _("Libya")),
    Option("dz", _("Algeria")),
    Option("ne", _("Niger")),
    Option("mr", _("Mauritania")),
    Option("ci", _("Côte d'Ivoire")),
    Option("ma", _("Morocco")),
    Option("europe", _("Europe")),
    Option("other", _("Other country")),
)

RETURNED_SINCE = (
    Option("lt3m", _("Less than 3 months")),
    Option("3-12m", _("3 to 12 months")),
    Option("1-2y", _("1 to 2 years")),
    Option("gt2y", _("More than 2 years")),
)

# Codes match the sample directory (seed/directory.hsds.json); child protection is not offered: minors are routed to it.
CATEGORIES = (
    Option("jobs", _("Jobs and training")),
    Option("activity", _("Start an activity, microcredit")),
    Option("health", _("Health")),
    Option("psychosocial", _("Psychosocial support")),
    Option("shelter", _("Shelter")),
    Option("documents", _("Identity documents")),
    Option("legal", _("Legal aid")),
    Option("family", _("Family and children")),
    Option("protection", _("Emergency, protection")),
)

# The neutral word for each need, as SMS show it (seed/directory.yaml's sms labels; a test keeps
# them equal): what the confirmation names, where a shared phone may be read over a shoulder.
NEUTRAL_LABELS = {
    "jobs": _("employment"),
    "activity": _("activity"),
    "health": _("support"),
    "psychosocial": _("support"),
    "shelter": _("housing"),
    "documents": _("documents"),
    "legal": _("advice"),
    "family": _("support"),
    "protection": _("support"),
}

REFERRAL_STATUSES = {
    "new": _("received"),
    "sent": _("sent"),
    "accepted": _("accepted"),
    "declined": _("sent"),
    "expired": _("sent"),
    "closed": _("closed"),
    "cancelled": _("cancelled"),
}
