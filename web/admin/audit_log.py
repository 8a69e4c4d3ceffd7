"""The audit log, for admins: who did what, newest first."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from models.admin import AuditEntry, Role, User
from web.admin.access import bp, require
from web.admin.paging import Page, page_number
from web.db import get_session


@bp.get("/audit")
@require(Role.ADMIN)
def audit_log() -> ResponseReturnValue:
    number = page_number(request.args)
    rows = (
        get_session()
        .execute(
            select(AuditEntry, User.email)
            .outerjoin(User, User.id == AuditEntry.user_id)
            .order_by(AuditEntry.id.desc())
            .limit(Page.SIZE + 1)
            .offset((number - 1) * Page.SIZE)
        )
        .all()
    )
    page = Page(number, rows[: Page.SIZE], has_next=len(rows) > Page.SIZE)
    return render_template("admin/audit.html", page=page)
