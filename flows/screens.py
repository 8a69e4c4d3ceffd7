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
Params = Callable[["State"], dict[str, str]]
Label = str | tuple[str, ...]


@dataclass(frozen=True)
class Option:
    """One numbered line: `code` is what is saved; `goto` overrides the screen's `next`.

    A label is a message id, or a tuple of message ids and literals shown side by side.
    """

    code: str
    label: Label
    goto: Next | None = None
    when: Condition | None = None
    effects: tuple[EffectFactory, ...] = ()


@dataclass(frozen=True)
class Choose:
    """A numbered list; longer than one screen, it pages with `98`.

    `options_from` builds the list from the state (e.g. the returnee's referrals); `params`
    fills placeholders in the title (values are message ids or literals).
    """

    id: str
    title: str
    options: tuple[Option, ...] = ()
    next: Next | None = None
    save: str | None = None
    effects: tuple[EffectFactory, ...] = ()
    hint: str = _("Invalid choice.")
    options_from: Callable[[State], tuple[Option, ...]] | None = None
    params: Params | None = None

    def visible(self, state: State) -> tuple[Option, ...]:
        options = self.options_from(state) if self.options_from else self.options
        return tuple(o for o in options if o.when is None or o.when(state))


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
    params: Params | None = None


@dataclass(frozen=True)
class End:
    """A last screen: the session closes and the effects are performed."""

    id: str
    text: str
    effects: tuple[EffectFactory, ...] = ()
    params: Params | None = None


Screen = Choose | Ask | End


def menu(id: str, title: str, *items: Option, save: str | None = None) -> Choose:
    """A menu: each item is an `Option` whose `goto` says where it leads."""
    return Choose(id=id, title=title, options=items, save=save)


def confirm(
    id: str,
    title: str,
    yes: Next,
    no: Next,
    yes_label: str = _("Yes"),
    no_label: str = _("No"),
    on_yes: tuple[EffectFactory, ...] = (),
    on_no: tuple[EffectFactory, ...] = (),
    params: Params | None = None,
) -> Choose:
    """A yes/no question as a two-item menu; each answer may carry its own effects."""
    return Choose(
        id=id,
        title=title,
        params=params,
        options=(
            Option("yes", yes_label, goto=yes, effects=on_yes),
            Option("no", no_label, goto=no, effects=on_no),
        ),
    )


@dataclass(frozen=True)
class Journey:
    """A named group of screens; the conversation is the union of its journeys.

    `resume` is the question that offers to resume the journey after a dropped call (e.g.
    "Continue your registration?"); a journey without one, or with no answer given yet, loses
    nothing when the call drops and is not offered.
    """

    name: str
    screens: tuple[Screen, ...] = field(default_factory=tuple)
    resume: str | None = None
