"""How a setting's raw text becomes a value: the one parser of booleans, numbers and number lists,
for the environment's variables and for a route's options alike."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def coerce(name: str, type_name: object, raw: object) -> object:
    """`raw` as the field `name` of type `type_name` takes it; ConfigError names the variable."""
    if not isinstance(raw, str):
        return raw
    if type_name in ("bool", bool):
        if raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(f"{name.upper()} must be true or false (1/0, yes/no), got {raw!r}")
    if type_name == "tuple[int, ...]":
        return int_tuple(name, raw)
    try:
        if type_name in ("int", int):
            return int(raw)
        if type_name in ("float", float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name.upper()} must be a number, got {raw!r}") from None
    return raw


_INT_TUPLE_EXAMPLES = {"sms_retry_intervals": "5,30,120,600", "follow_up_days": "30,90"}


def int_tuple(name: str, raw: str) -> tuple[int, ...]:
    """`5,30,120` -> (5, 30, 120); anything else names the variable and its format."""
    try:
        return tuple(int(x) for x in raw.split(",") if x.strip() or raw.strip())
    except ValueError:
        example = _INT_TUPLE_EXAMPLES.get(name, "5,30")
        unit = "days" if name.endswith("_days") else "seconds"
        raise ConfigError(f"{name.upper()} must be comma-separated {unit}, e.g. {example}") from None
