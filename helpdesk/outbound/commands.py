"""``helpdesk template ...`` and ``helpdesk campaign ...``: newsletters from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from helpdesk.errors import ServiceError
from helpdesk.extensions import db


def _fail(error: ServiceError) -> click.ClickException:
    db.session.rollback()
    return click.ClickException(error.message)


@click.group("template")
def template() -> None:
    """Manage newsletter templates."""


@template.command("add")
@click.argument("name")
@click.option("--subject", required=True, help="Subject line (Jinja).")
@click.option(
    "--html-file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--committee", "committee_slug", help="Owning committee (its layout frames the mail)."
)
def template_add(
    name: str, subject: str, html_file: Path, text_file: Path | None, committee_slug: str | None
) -> None:
    """Add or replace template NAME, checked against a sample subscriber."""
    from helpdesk.outbound.templates import save_template

    try:
        row = save_template(
            name,
            subject=subject,
            html=html_file.read_text(),
            text=text_file.read_text() if text_file else "",
            committee_slug=committee_slug,
        )
        db.session.commit()
    except ServiceError as error:
        raise _fail(error) from None
    click.echo(f"template {row.name!r} saved (id {row.id})")


@template.command("preview")
@click.argument("name")
@click.option("--subscriber", "subscriber_id", type=int, help="Render for this subscriber.")
def template_preview(name: str, subscriber_id: int | None) -> None:
    """Show template NAME as the sample (or a chosen) subscriber would receive it."""
    from helpdesk.outbound.templates import get_template, preview

    try:
        mail = preview(get_template(name).id, subscriber_id)
    except ServiceError as error:
        raise _fail(error) from None
    if mail.problems:
        raise click.ClickException("; ".join(mail.problems))
    click.echo(f"Subject: {mail.subject}\n\n{mail.text}")


@template.command("test")
@click.argument("name")
@click.option("--to", "address", required=True, help="Where the test copy goes.")
@click.option("--from", "from_addr", required=True, help="From address of the test copy.")
@click.option("--subscriber", "subscriber_id", type=int, help="Render for this subscriber.")
def template_test(name: str, address: str, from_addr: str, subscriber_id: int | None) -> None:
    """Send one test copy of template NAME to an address."""
    from helpdesk.outbound.templates import compose, get_template, send_test

    try:
        send_test(
            compose(get_template(name)), address, from_addr=from_addr, subscriber_id=subscriber_id
        )
        db.session.commit()
    except ServiceError as error:
        raise _fail(error) from None
    click.echo(f"test copy of {name!r} queued for {address}")


@click.group("campaign")
def campaign() -> None:
    """Create, launch and follow newsletters and notices."""


@campaign.command("create")
@click.option("--list", "list_slug", required=True, help="Slug of the mailing list.")
@click.option("--template", "template_name", required=True, help="Name of the template.")
@click.option("--name", help="Campaign name (default: the template's).")
@click.option("--from", "from_addr", help="From address (default: the committee's first).")
@click.option("--segment", help='JSON, e.g. {"contact_kinds": ["speaker"], "languages": ["de"]}.')
@click.option("--schedule", "when", help="Send at this UTC time (ISO 8601) instead of on launch.")
def campaign_create(
    list_slug: str,
    template_name: str,
    name: str | None,
    from_addr: str | None,
    segment: str | None,
    when: str | None,
) -> None:
    """Create a draft campaign; prints its ID."""
    from helpdesk.outbound import campaigns

    try:
        try:
            parsed = json.loads(segment) if segment else None
        except json.JSONDecodeError as error:
            raise ServiceError(f"--segment is not JSON: {error}") from None
        row = campaigns.create_campaign(
            list_slug, template_name, name=name, from_addr=from_addr, segment=parsed
        )
        if when:
            campaigns.schedule(row.id, _parse_when(when))
        db.session.commit()
    except ServiceError as error:
        raise _fail(error) from None
    click.echo(row.id)


def _parse_when(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ServiceError(f"--schedule {raw!r} is not an ISO 8601 time") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _action(name: str, help_text: str):
    @campaign.command(name, help=help_text)
    @click.argument("campaign_id", type=int)
    def command(campaign_id: int) -> None:
        from helpdesk.outbound import campaigns

        try:
            if name == "launch":
                count = campaigns.launch(campaign_id)
                click.echo(f"campaign {campaign_id} launched to {count} recipients")
                return
            getattr(campaigns, name)(campaign_id)
        except ServiceError as error:
            raise _fail(error) from None
        click.echo(f"campaign {campaign_id}: {campaigns.get_campaign(campaign_id).status.value}")

    return command


_action("launch", "Launch campaign ID now (also confirms a late scheduled one).")
_action("pause", "Pause campaign ID within one batch.")
_action("resume", "Resume paused campaign ID.")
_action("cancel", "Cancel campaign ID: nothing more is sent.")


@campaign.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def campaign_status(campaign_id: int, as_json: bool) -> None:
    """Show campaign ID's state and delivery counts."""
    from helpdesk.outbound import campaigns

    try:
        info = campaigns.status(campaign_id)
    except ServiceError as error:
        raise _fail(error) from None
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
        return
    click.echo(f"campaign {info['id']} {info['name']!r}: {info['status']}")
    if info["pause_reason"]:
        click.echo(f"  note: {info['pause_reason']}")
    click.echo(f"  recipients {info['recipients']}, remaining {info['remaining']}")
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in info["counts"].items() if v))
    if info["rate_per_second"]:
        click.echo(f"  rate {info['rate_per_second']}/s, ETA {info['eta_seconds']} s")


@campaign.command("resolve")
@click.argument("campaign_id", type=int)
@click.option("--resend", "choice", flag_value="resend", help="Send uncertain deliveries again.")
@click.option("--drop", "choice", flag_value="drop", help="Give up on uncertain deliveries.")
def campaign_resolve(campaign_id: int, choice: str | None) -> None:
    """Decide what happens to campaign ID's uncertain deliveries."""
    from helpdesk.outbound import campaigns

    if choice is None:
        raise click.UsageError("say --resend or --drop")
    try:
        count = campaigns.resolve_uncertain(campaign_id, resend=choice == "resend")
    except ServiceError as error:
        raise _fail(error) from None
    click.echo(
        f"{count} uncertain deliveries {'queued again' if choice == 'resend' else 'dropped'}"
    )


COMMANDS = [template, campaign]
