"""The pieces a journey is declared with. They hold text ids and named functions, no logic.

The engine renders them, pages them, parses input for them and moves between them; a screen
only says what it shows, what it accepts and where it leads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flows.i18n import _

if TYPE_CHECKING:
    from flows.effects import Effect
    from flows.engine import State

Next = str | Callable[["State"], str]
Condition = Callable[["State"], bool]
EffectFactory = Callable[["State"], "Effect"]


@dataclass(frozen=True)
class Option:
    """One numbered line: `code` is what is saved; `goto` overrides the screen's `next`."""

    code: str
    label: str
    goto: Next | None = None
    when: Condition | None = None


@dataclass(frozen=True)
class Choose:
    """A numbered list; longer than one screen, it pages with `98`."""

    id: str
    title: str
    options: tuple[Option, ...]
    next: Next | None = None
    save: str | None = None
    effects: tuple[EffectFactory, ...] = ()
    hint: str = _("Invalid choice.")

    def visible(self, state: State) -> tuple[Option, ...]:
        return tuple(o for o in self.options if o.when is None or o.when(state))


@dataclass(frozen=True)
class Ask:
    """A free-text question; `check` returns the cleaned answer, or None to re-ask."""

    id: str
    title: str
    check: Callable[[str], str | None]
    next: Next
    save: str | None = None
    effects: tuple[EffectFactory, ...] = ()
    hint: str = _("Please try again.")


@dataclass(frozen=True)
class End:
    """A last screen: the session closes and the effects are performed."""

    id: str
    text: str
    effects: tuple[EffectFactory, ...] = ()


Screen = Choose | Ask | End


def menu(id: str, title: str, *items: tuple[str, Next] | tuple[str, Next, Condition]) -> Choose:
    """A menu: each item is (label, where it leads[, when it shows])."""
    options = tuple(
        Option(code=str(i), label=item[0], goto=item[1], when=item[2] if len(item) > 2 else None)
        for i, item in enumerate(items, start=1)
    )
    return Choose(id=id, title=title, options=options)


def confirm(
    id: str,
    title: str,
    yes: Next,
    no: Next,
    yes_label: str = _("Yes"),
    no_label: str = _("No"),
    effects: tuple[EffectFactory, ...] = (),
) -> Choose:
    """A yes/no question as a two-item menu."""
    return Choose(
        id=id,
        title=title,
        effects=effects,
        options=(Option("yes", yes_label, goto=yes), Option("no", no_label, goto=no)),
    )


@dataclass(frozen=True)
class Journey:
    """A named group of screens; the conversation is the union of its journeys."""

    name: str
    screens: tuple[Screen, ...] = field(default_factory=tuple)
