"""What staff and focal points type on a referral's page: a note, a reason, a chosen provider.

Texts are folded to one line and cut at 200 characters, as the timeline shows them; whether a
move is allowed is the lifecycle's rule, not the form's.
"""

from __future__ import annotations

from wtforms import Form, StringField
from wtforms.validators import DataRequired

from web.admin.forms import squash, strip
from web.admin.i18n import _
from web.admin.inputs import number

NOTE_LENGTH = 200


class NoteForm(Form):
    """A note on the timeline: some text, or nothing is added and the page says why."""

    note = StringField(filters=[squash(NOTE_LENGTH)], validators=[DataRequired(_("Type the note first."))])


class CancelForm(Form):
    """Why the coordination cancels (optional; kept as typed, on one line)."""

    reason = StringField(filters=[strip(NOTE_LENGTH)])


class DeclineForm(Form):
    """Why a focal point declines (optional, folded to one line)."""

    reason = StringField(filters=[squash(NOTE_LENGTH)])


class RerouteForm(Form):
    """A provider chosen by id, or none (then the matching chooses, as for a new referral).

    Whether the chosen one may take it (active, another, offering the need) is the view's check,
    against the referral: a refusal there is a conflict (409), not a typing error.
    """

    provider_id = StringField(filters=[strip(12)])

    def chosen(self) -> tuple[bool, int | None]:
        """Whether a provider was chosen, and its id if the id is one a row can have."""
        return bool(self.provider_id.data), number(self.provider_id.data)
