"""`flask --app app create-user EMAIL --role admin`: the first account, and scripted ones."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from models.admin import (
    MIN_PASSWORD_LENGTH,
    Role,
    User,
    Weakness,
    audit,
    find_user,
    normalise_email,
    password_weakness,
)
from models.directory import Provider
from web.context import sira


@click.command("create-user")
@click.argument("email")
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in Role]), help="What the user may do."
)
@click.option("--provider", "provider_slug", default=None, help="The provider's slug (role provider only).")
@click.option("--password", default=None, help="For scripts; prompted for when not given.")
@with_appcontext
def create_user(email: str, role: str, provider_slug: str | None, password: str | None) -> None:
    """Create an admin web account (the password is asked for unless --password is given)."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise click.BadParameter("not an email address", param_hint="EMAIL")
    if (role == Role.PROVIDER) != (provider_slug is not None):
        raise click.UsageError("--provider SLUG is needed for --role provider, and only for it")
    with sira().sessions() as session:
        if find_user(session, email) is not None:
            raise click.ClickException(f"a user with the email {email} already exists")
        provider_id = None
        if provider_slug is not None:
            provider_id = session.scalar(select(Provider.id).where(Provider.slug == provider_slug))
            if provider_id is None:
                raise click.ClickException(f"no provider with the slug {provider_slug!r}")
        if password is None:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        weakness = password_weakness(password, email)
        if weakness is Weakness.TOO_SHORT:
            raise click.ClickException(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        if weakness is Weakness.GUESSABLE:
            raise click.ClickException("the password is too common or too easy to guess: choose another")
        user = User(email=email, role=role, provider_id=provider_id)
        user.set_password(password)
        session.add(user)
        session.flush()
        audit(session, None, "user.create", "user", user.id, role=role, via="cli")
        session.commit()
    click.echo(f"user {email} created with role {role}")
