"""The USSD engine: one pure step from (state, gateway text) to (reply, new state, effects).

Everything screens have in common lives here, once: working out the newest input from the
gateway's `*`-joined history, repeated requests, `0` back, `00` main menu, `98` next page,
re-prompting with a hint, paging to the screen limit, folding to plain letters, and resuming a
session that was cut off. No I/O: the host loads and saves `State` and performs the effects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec

from flows.effects import Effect
from flows.i18n import DEFAULT_LANGUAGE, Catalogs, _
from flows.screens import Ask, Choose, End, Journey, Label, Option, Screen
from flows.text import to_ussd

BACK, HOME, MORE = "0", "00", "98"
SCREEN_LIMIT = 160
RESUME = "sys.resume"  # the offer to resume a journey is the screen `sys.resume.<journey>`
MORE_LABEL = _("More")
BACK_LABEL = _("Back")


class Facts(msgspec.Struct):
    """What the host knows of the phone when the session starts; journeys' conditions read it."""

    registered: bool = False
    referrals: list[dict] = msgspec.field(default_factory=list)  # newest first: code, category, status, open
    # A provider's registered number: its session starts on the providers' root, never the returnees'.
    provider: bool = False
    # Its open referrals: code, category, region, status.
    assigned: list[dict] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Facts:
        """From JSON; a state saved before facts were typed said `registered` as "1" or ""."""
        data = data or {}
        return cls(
            bool(data.get("registered")),
            list(data.get("referrals") or []),
            bool(data.get("provider")),
            list(data.get("assigned") or []),
        )


class State(msgspec.Struct):
    """Everything a session needs between two requests; JSON in Redis.

    A msgspec struct: every step reads, copies and writes one, and msgspec does each in a few
    microseconds where the standard library's json and dataclasses took ~80 (bench/README.md).
    """

    screen: str
    answers: dict[str, str] = msgspec.field(default_factory=dict)
    facts: Facts = msgspec.field(default_factory=Facts)
    page: int = 0
    history: list[list] = msgspec.field(default_factory=list)
    text: str = ""
    inputs: int = 0
    reply: str = ""
    ended: bool = False
    unfinished: str | None = None  # the journey whose answers would be lost if the call dropped
    suspended: dict | None = None
    hint: str | None = None
    origin: list = msgspec.field(default_factory=list)
    step_id: str = ""  # the transport's identity of the last request, for one that sends no history
    session_id: str = ""  # the call this state is of: a resume copy names the call it would resume

    @property
    def language(self) -> str:
        return self.answers.get("language") or DEFAULT_LANGUAGE

    @property
    def resumable(self) -> bool:
        """Worth offering to resume: answers of a journey that are not saved yet would be lost
        (not a read-only screen such as "My requests", nor a journey not begun)."""
        return not self.ended and bool(self.history) and self.unfinished is not None

    def to_json(self) -> bytes:
        return _ENCODE(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> State:
        """A saved state; one saved in an older shape (untyped facts) is read as it meant."""
        try:
            return _DECODE(raw)
        except msgspec.ValidationError:
            return cls._untyped(json.loads(raw))

    @classmethod
    def of(cls, data: dict[str, Any]) -> State:
        """From a dict (a resume copy held in `suspended`), as `from_json` reads its JSON."""
        try:
            return msgspec.convert(data, cls)
        except msgspec.ValidationError:
            return cls._untyped(data)

    @classmethod
    def _untyped(cls, data: dict[str, Any]) -> State:
        """A state saved before its facts were typed (`registered` as "1" or "")."""
        return cls(**{**data, "facts": Facts.of(data.get("facts"))})

    def as_dict(self) -> dict[str, Any]:
        """Plain dicts and lists all the way down (a resume copy travels inside another state)."""
        return msgspec.to_builtins(self)

    def copy(self) -> State:
        """A copy the engine may change without touching this one (what it holds in lists and
        dicts is replaced by the engine, never changed in place, but for these)."""
        return msgspec.structs.replace(
            self, answers=dict(self.answers), history=[list(h) for h in self.history]
        )


_ENCODE = msgspec.json.Encoder().encode  # built once, not per call
_DECODE = msgspec.json.Decoder(State).decode


@dataclass(frozen=True)
class Reply:
    """What goes back to the gateway."""

    text: str
    end: bool

    @property
    def wire(self) -> str:
        return ("END " if self.end else "CON ") + self.text


@dataclass(frozen=True)
class StepResult:
    reply: Reply
    state: State
    effects: tuple[Effect, ...]
    advanced: bool


class Conversation:
    """The declared journeys, indexed, with the two entry points."""

    def __init__(
        self, journeys: Iterable[Journey], root: str, first_dial: str, provider_root: str | None = None
    ) -> None:
        self.screens: dict[str, Screen] = {}
        self.journeys: dict[str, Journey] = {}
        self.journey_of: dict[str, Journey] = {}
        for journey in journeys:
            self.journeys[journey.name] = journey
            for screen in journey.screens:
                if screen.id in self.screens:
                    raise ValueError(f"screen {screen.id!r} declared twice")
                self.screens[screen.id] = screen
                self.journey_of[screen.id] = journey
        self.root, self.first_dial = root, first_dial
        self.provider_root = provider_root or root
        for target in self.static_targets():
            if target not in self.screens:
                raise ValueError(f"a screen leads to {target!r}, which is not declared")

    def static_targets(self) -> list[str]:
        targets = [self.root, self.first_dial, self.provider_root]
        for screen in self.screens.values():
            if isinstance(screen, (Choose, Ask)) and isinstance(screen.next, str):
                targets.append(screen.next)
            if isinstance(screen, Choose):
                targets += [o.goto for o in screen.options if isinstance(o.goto, str)]
        return targets


class Engine:
    """Runs a `Conversation` with the catalogs; holds no per-session data."""

    def __init__(self, conversation: Conversation, catalogs: Catalogs, limit: int = SCREEN_LIMIT) -> None:
        self.conversation = conversation
        self.catalogs = catalogs
        self.limit = limit
        # One offer per journey that declares what resuming it means ("Continue your registration?").
        self._resumes = {
            f"{RESUME}.{journey.name}": Choose(
                id=f"{RESUME}.{journey.name}",
                title=journey.resume,
                options=(Option("yes", _("Yes")), Option("no", _("No"))),
            )
            for journey in conversation.journeys.values()
            if journey.resume
        }
        self._saves = {
            name: frozenset(s.save for s in journey.screens if not isinstance(s, End) and s.save)
            for name, journey in conversation.journeys.items()
        }
        self._pages = lru_cache(maxsize=1024)(self._paginate)
        self._static_pages: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {}

    # -- entry points -------------------------------------------------------------------

    def start(self, facts: Facts, language: str | None, suspended: State | None = None) -> State:
        """A new session: language choice on first dial, else the main menu or the resume offer;
        a provider's number starts on the providers' root, in its provider's language."""
        answers = {"language": language} if language else {}
        screen = self.conversation.root if language else self.conversation.first_dial
        if facts.provider:
            screen = self.conversation.provider_root
        state = State(screen=screen, answers=answers, facts=facts, origin=[screen, language])
        if (
            not facts.provider
            and suspended is not None
            and suspended.resumable
            and f"{RESUME}.{suspended.unfinished}" in self._resumes
        ):
            state.screen = f"{RESUME}.{suspended.unfinished}"
            state.suspended = suspended.as_dict()
        return state

    def feed(self, state: State, text: str) -> StepResult:
        """Apply the gateway's `text` (all inputs so far, joined by `*`) to a copy of the state:
        the result holds the new state; the one given is left as it was."""
        if state.reply and text == state.text:
            return StepResult(Reply(state.reply, state.ended), state, (), advanced=False)
        if state.ended and state.reply and text and _same_call(state.text, text):
            # A request of this call that the gateway delivers after its END (a retry held up in
            # the network, an earlier answer, one more): the call is over. Replaying the history
            # would reopen a finished journey, and the next dial would offer to resume it.
            return StepResult(Reply(state.reply, True), state, (), advanced=False)
        state = state.copy()
        if state.screen not in self._resumes and state.screen not in self.conversation.screens:
            self._restart(state)  # saved by an older version of the journeys: replay the history
            state.reply = state.text = ""
        # What our state has not seen yet: normally one answer (which may hold a `*`), or all
        # the history when replaying it from the first screen (dial-through, lost state).
        new_answer = True
        if state.reply and text.startswith(state.text + "*") and state.text:
            rest: str | None = text[len(state.text) + 1 :]
        elif state.reply and not state.text and text:
            rest = text
        else:
            rest, new_answer = text or None, False
            if state.reply:
                self._restart(state)
        effects: list[Effect] = []
        while rest is not None:
            user_input, rest = self._next_input(state, rest, new_answer)
            effects += self.step(state, user_input.strip())
        state.text = text
        state.unfinished = self._unfinished(state)
        hint, state.hint = state.hint, None
        reply = self.render(state, hint=hint)
        state.reply = reply.text
        return StepResult(reply, state, tuple(effects), advanced=True)

    def _next_input(self, state: State, rest: str, new_answer: bool) -> tuple[str, str | None]:
        """The next answer in `rest`: in a new answer a free-text question takes it all (a name
        may hold `*`); a menu takes up to the next `*` (a step whose state was not saved)."""
        if "*" not in rest or (new_answer and isinstance(self.conversation.screens.get(state.screen), Ask)):
            return rest, None
        head, tail = rest.split("*", 1)
        return head, tail

    def _restart(self, state: State) -> None:
        """The gateway's history does not extend ours: replay it from the session's first screen."""
        screen, language = state.origin or [self.root(state), state.answers.get("language")]
        state.screen, state.page, state.history, state.inputs = screen, 0, [], 0
        state.answers = {"language": language} if language else {}
        state.ended, state.suspended = False, None

    def step(self, state: State, user_input: str) -> list[Effect]:
        """Advance by one input; a bad input leaves the screen as it was, with a hint to show."""
        state.inputs += 1
        state.hint = None
        if state.ended:
            return []
        if state.screen in self._resumes:
            return self._answer_resume(state, user_input)
        screen = self._screen(state.screen)
        if user_input == HOME:
            self._go(state, self.root(state), push=False)
            state.history.clear()
            return []
        if user_input == BACK:
            if state.page > 0:
                state.page -= 1
            elif state.history:
                state.screen, state.page = state.history.pop()
            return []
        if user_input == MORE and isinstance(screen, Choose):
            if state.page + 1 < len(self._pages_for(screen, state)):
                state.page += 1
                return []
            state.hint = screen.hint
            return []
        return self._answer(state, screen, user_input)

    # -- rendering ----------------------------------------------------------------------

    def render(self, state: State, hint: str | None = None) -> Reply:
        """The screen for `state`, folded to plain letters, within the limit."""
        screen = self._screen(state.screen)
        params = self._params(screen, state)
        if isinstance(screen, End):
            return Reply(self._t(state, screen.text, params), end=True)
        if isinstance(screen, Ask):
            lines = [self._t(state, screen.title, params)]
            if state.history:
                lines.append(f"{BACK} {self._t(state, BACK_LABEL)}")
            return Reply(self._with_hint(state, lines, hint), end=False)
        pages = self._pages_for(screen, state)
        page = min(state.page, len(pages) - 1)
        lines = [self._t(state, screen.title, params), *pages[page]]
        footer = []
        if page + 1 < len(pages):
            footer.append(f"{MORE} {self._t(state, MORE_LABEL)}")
        if state.history or page > 0:
            footer.append(f"{BACK} {self._t(state, BACK_LABEL)}")
        if footer:
            lines.append(" ".join(footer))
        return Reply(self._with_hint(state, lines, hint), end=False)

    def _with_hint(self, state: State, lines: list[str], hint: str | None) -> str:
        text = "\n".join(lines)
        if hint is None:
            return text
        hinted = self._t(state, hint) + "\n" + text
        if len(hinted) <= self.limit:
            return hinted
        return "\n".join([self._t(state, hint), *lines[1:]])

    def _t(self, state: State, msgid: str, params: dict[str, str] | None = None) -> str:
        text = self.catalogs.gettext(state.language, msgid)
        if "{" in text:
            text = text.format_map(KeepMissing(params or {}))
        return to_ussd(text)

    def _params(self, screen: Screen, state: State) -> dict[str, str]:
        if screen.params is None:
            return {}
        return {k: self.catalogs.gettext(state.language, v) for k, v in screen.params(state).items()}

    def _label(self, state: State, label: Label) -> str:
        parts = (label,) if isinstance(label, str) else label
        return " ".join(self.catalogs.gettext(state.language, part) for part in parts)

    def _pages_for(self, screen: Choose, state: State) -> tuple[tuple[str, ...], ...]:
        """The screen's pages; a list that does not depend on the state is paged once per language."""
        key = (screen.id, state.language)
        pages = self._static_pages.get(key)
        if pages is not None:
            return pages
        labels = tuple(self._label(state, o.label) for o in screen.visible(state))
        pages = self._pages(
            self.catalogs.gettext(state.language, screen.title),
            labels,
            self.catalogs.gettext(state.language, MORE_LABEL),
            self.catalogs.gettext(state.language, BACK_LABEL),
            self.catalogs.gettext(state.language, screen.hint),
        )
        if screen.options_from is None and all(o.when is None for o in screen.options):
            self._static_pages[key] = pages
        return pages

    def _paginate(
        self, title: str, labels: tuple[str, ...], more: str, back: str, hint: str
    ) -> tuple[tuple[str, ...], ...]:
        """Split numbered lines into pages that fit with the title and the navigation line.

        Room is kept for the screen's hint, so that a re-prompt shows the hint, the question and
        the same options together (a page that filled the screen used to lose its question).
        """
        lines = [to_ussd(f"{i} {label}") for i, label in enumerate(labels, start=1)]
        head = len(to_ussd(title)) + 1 + len(to_ussd(hint)) + 1
        last_footer = len(to_ussd(f"{BACK} {back}")) + 1
        mid_footer = len(to_ussd(f"{MORE} {more} {BACK} {back}")) + 1
        pages: list[tuple[str, ...]] = []
        rest = lines
        while rest:
            if head + sum(len(x) + 1 for x in rest) - 1 + last_footer <= self.limit:
                pages.append(tuple(rest))
                break
            size, used = 0, head + mid_footer
            while size < len(rest) and used + len(rest[size]) + 1 <= self.limit:
                used += len(rest[size]) + 1
                size += 1
            size = max(size, 1)
            pages.append(tuple(rest[:size]))
            rest = rest[size:]
        return tuple(pages) or ((),)

    # -- transitions --------------------------------------------------------------------

    def _answer(self, state: State, screen: Screen, user_input: str) -> list[Effect]:
        if isinstance(screen, End):
            return []
        option = None
        if isinstance(screen, Ask):
            value = screen.check(user_input)
            if value is None:
                state.hint = screen.hint
                return []
            target = screen.next
        else:
            option = self._option(screen, state, user_input)
            if option is None:
                state.hint = screen.hint
                return []
            value = option.code
            target = option.goto or screen.next
        if screen.save:
            state.answers[screen.save] = value
        makers = screen.effects + (option.effects if option else ())
        effects = [make(state) for make in makers]
        next_id = target(state) if callable(target) else target
        if next_id is None:
            raise ValueError(f"screen {screen.id!r} has no next screen")
        self._go(state, next_id, push=True)
        return effects + self._arrive(state)

    def _option(self, screen: Choose, state: State, user_input: str) -> Option | None:
        if not (user_input.isascii() and user_input.isdigit() and len(user_input) <= 3):
            return None  # "²" and "٣" are digits to str.isdigit, not to a menu
        index = int(user_input) - 1
        visible = screen.visible(state)
        first, last = self._page_span(screen, state)
        return visible[index] if first <= index < min(last, len(visible)) else None

    def _page_span(self, screen: Choose, state: State) -> tuple[int, int]:
        """The option indexes the current page shows: an answer means what was on the screen, so
        `3` on the second page of the regions is not Koulikoro from the first."""
        pages = self._pages_for(screen, state)
        page = min(state.page, len(pages) - 1)
        first = sum(len(p) for p in pages[:page])
        return first, first + len(pages[page])

    def _go(self, state: State, screen_id: str, push: bool) -> None:
        if push:
            state.history.append([state.screen, state.page])
        state.screen, state.page = screen_id, 0

    def _arrive(self, state: State) -> list[Effect]:
        screen = self._screen(state.screen)
        if isinstance(screen, End):
            state.ended = True
            return [make(state) for make in screen.effects]
        return []

    def _answer_resume(self, state: State, user_input: str) -> list[Effect]:
        if user_input == "1" and state.suspended:
            saved = State.of(state.suspended)
            state.screen, state.page, state.history = saved.screen, saved.page, saved.history
            state.answers = {**saved.answers, "language": state.language}
        elif user_input in ("2", HOME):
            state.screen, state.page, state.history = self.root(state), 0, []
        else:
            state.hint = self._resumes[state.screen].hint
            return []
        state.suspended = None
        return []

    def root(self, state: State) -> str:
        """The session's main menu: `00` never takes a provider's number to the returnees' one."""
        return self.conversation.provider_root if state.facts.provider else self.conversation.root

    def _screen(self, screen_id: str) -> Screen:
        return self._resumes.get(screen_id) or self.conversation.screens[screen_id]

    def _unfinished(self, state: State) -> str | None:
        """The journey the session is in, if it holds answers of that journey not saved yet."""
        journey = self.conversation.journey_of.get(state.screen)
        if state.ended or journey is None or not journey.resume:
            return None
        return journey.name if self._saves[journey.name] & state.answers.keys() else None

    def screens_for_checks(self) -> list[Screen]:
        """Every screen including the engine's own, for the invariant tests."""
        return [*self.conversation.screens.values(), *self._resumes.values()]


class KeepMissing(dict):
    """`str.format_map` mapping that leaves unknown placeholders for the host to fill."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _same_call(seen: str, text: str) -> bool:
    """Whether `text` is a history of the call that sent `seen`: an earlier request of it, or a
    later one (what a gateway sends after the END). Another history is a new dial on a reused id."""
    return not seen or text.startswith(seen + "*") or seen.startswith(text + "*")
