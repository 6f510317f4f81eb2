"""Operators' commands for inbound mail: mailboxes, fetching, files, quarantine, routing tests."""

from __future__ import annotations

import mailbox as mailbox_formats
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import click
import sqlalchemy as sa

from helpdesk.database import utcnow
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.models import Mailbox, QuarantinedMail


def _fail(error: ServiceError) -> click.ClickException:
    db.session.rollback()
    return click.ClickException(error.message)


def _stdin_line(what: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise click.ClickException(f"no {what} on standard input")
    return value


@click.group("mailbox")
def mailbox() -> None:
    """Manage the IMAP mailboxes mail is fetched from."""


@mailbox.command("add")
@click.argument("name")
@click.option("--host", required=True)
@click.option("--port", required=True, type=int)
@click.option("--tls", type=click.Choice(["implicit", "starttls", "none"]), required=True)
@click.option("--user", "username", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--oauth2-client-id", help="Google Workspace: OAuth2 client id (XOAUTH2).")
@click.option("--oauth2-client-secret-stdin", is_flag=True)
@click.option("--oauth2-refresh-token-stdin", is_flag=True)
@click.option("--oauth2-token-url", default=None, help="Token endpoint (default: Google's).")
@click.option("--folder", "folders", multiple=True, help="Folder to fetch; repeatable.")
@click.option(
    "--after-import", default="leave", show_default=True, help="leave, flag or move:FOLDER"
)
def mailbox_add(
    name, host, port, tls, username, password_stdin, oauth2_client_id,
    oauth2_client_secret_stdin, oauth2_refresh_token_stdin, oauth2_token_url, folders,
    after_import,
) -> None:  # fmt: skip
    """Add mailbox NAME (password, or Google Workspace OAuth2 secrets, read from stdin)."""
    from helpdesk.inbound.mailboxes import GOOGLE_TOKEN_URL, OAuth2Secrets, add_mailbox

    if password_stdin == bool(oauth2_client_id):
        raise click.UsageError("give either --password-stdin or --oauth2-client-id")
    password = oauth2 = None
    if password_stdin:
        password = _stdin_line("password")
    else:
        if not (oauth2_client_secret_stdin and oauth2_refresh_token_stdin):
            raise click.UsageError(
                "OAuth2 needs --oauth2-client-secret-stdin and --oauth2-refresh-token-stdin "
                "(one line each on standard input, in that order)"
            )
        oauth2 = OAuth2Secrets(
            client_id=oauth2_client_id,
            client_secret=_stdin_line("client secret"),
            refresh_token=_stdin_line("refresh token"),
            token_url=oauth2_token_url or GOOGLE_TOKEN_URL,
        )
    try:
        box = add_mailbox(
            name, host=host, port=port, tls=tls, username=username, password=password,
            oauth2=oauth2, folders=list(folders) or ["INBOX"], after_import=after_import,
        )  # fmt: skip
        db.session.commit()
    except ServiceError as e:
        raise _fail(e) from None
    click.echo(f"mailbox {box.name} added ({', '.join(box.folders)})")


def _age(when) -> str:
    if when is None:
        return "never"
    seconds = int((utcnow() - when).total_seconds())
    return str(timedelta(seconds=max(seconds, 0))) + " ago"


@mailbox.command("list")
def mailbox_list() -> None:
    """List mailboxes with their health: last success, last error, backlog."""
    for box in db.session.scalars(sa.select(Mailbox).order_by(Mailbox.name)):
        state = "ok" if box.healthy else f"FAILING x{box.consecutive_failures}"
        if not box.enabled:
            state = "disabled"
        auth = "oauth2" if box.oauth2_client_id else "password"
        click.echo(
            f"{box.name}\t{state}\t{box.username}@{box.host}:{box.port} ({box.tls}, {auth})\t"
            f"folders={','.join(box.folders)}\tlast success {_age(box.last_success_at)}\t"
            f"backlog {box.backlog}"
        )
        if box.last_error and not box.healthy:
            click.echo(f"\tlast error {_age(box.last_error_at)}: {box.last_error}")


@mailbox.command("test")
@click.argument("name")
def mailbox_test(name: str) -> None:
    """Log in to mailbox NAME, list its folders and check its configuration."""
    from helpdesk.inbound.mailbox_check import check_mailbox
    from helpdesk.inbound.mailboxes import connection_config, get_mailbox

    try:
        config = connection_config(get_mailbox(name))
    except ServiceError as e:
        raise _fail(e) from None
    try:
        check = check_mailbox(config)
    except Exception as error:
        # Whatever went wrong (DNS, TLS, login, token) is the answer to the test.
        raise click.ClickException(f"{name}: {error}") from None
    push = "IDLE (push)" if check.idle else "no IDLE (polling)"
    click.echo(f"{name}: login ok; {push}; folders: {', '.join(check.folders)}")
    for problem in check.problems:
        click.echo(f"{name}: problem: {problem}", err=True)
    if not check.ok:
        raise SystemExit(1)


@click.command("fetch-mail")
@click.option("--once", is_flag=True, help="Fetch every mailbox once and exit (for cron).")
@click.option("--mailbox", "names", multiple=True, help="Only this mailbox; repeatable.")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes that ingest each batch (PostgreSQL; about one per core).",
)
def fetch_mail(once: bool, names: tuple[str, ...], batch_size: int, workers: int) -> None:
    """Fetch mail from the configured mailboxes into tickets (runs until stopped)."""
    from flask import current_app

    from helpdesk.inbound import runner

    try:
        configs = runner.mailbox_configs(names)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    if not configs:
        raise click.ClickException("no enabled mailboxes (helpdesk mailbox add ...)")
    db.session.remove()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        if not runner.fetch_all_once(app, configs, batch_size, workers):
            raise SystemExit(1)
        return
    click.echo(f"watching {', '.join(c.name for c in configs)}")
    runner.watch(app, configs, batch_size, workers)


def _read_sources(paths: tuple[str, ...]) -> Iterator[tuple[str, bytes]]:
    """(description, raw bytes) of every mail in .eml files, mbox files and maildirs."""
    for text in paths:
        path = Path(text)
        if path.is_dir() and all((path / d).is_dir() for d in ("cur", "new", "tmp")):
            box = mailbox_formats.Maildir(path, factory=None, create=False)
            for key in sorted(box.keys()):
                yield f"{path}:{key}", box.get_bytes(key)
        elif path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from _read_sources((str(child),))
        else:
            data = path.read_bytes()
            if data.startswith(b"From ") and b"\n" not in data:
                # CR-only line ends, which the mbox reader cannot split: one mail after
                # its mbox-style first line.
                yield str(path), data.partition(b"\r")[2]
            elif data.startswith(b"From "):
                box = mailbox_formats.mbox(path, factory=None, create=False)
                for key in box.keys():  # noqa: SIM118 - iterating a mailbox yields messages
                    yield f"{path}#{key}", box.get_bytes(key)
            else:
                yield str(path), data


@click.command("ingest-file")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def ingest_file(paths: tuple[str, ...]) -> None:
    """Run .eml files, mbox files and maildirs through the inbound pipeline."""
    from collections import Counter

    from helpdesk.inbound.ingest import Source, ingest

    outcomes: Counter[str] = Counter()
    for description, raw in _read_sources(paths):
        result = ingest(raw, Source(description))
        outcomes[result.outcome] += 1
        detail = ", ".join(f"#{n}" for n in result.ticket_numbers)
        if result.quarantine_id:
            detail = f"quarantine #{result.quarantine_id}"
        click.echo(f"{description}\t{result.outcome}\t{detail}")
    click.echo("; ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())), err=True)


@click.group("quarantine")
def quarantine() -> None:
    """Inspect and retry mail the ingester could not handle."""


@quarantine.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include resolved entries.")
def quarantine_list(show_all: bool) -> None:
    """List quarantined mail: id, when, source, stage and error."""
    stmt = sa.select(QuarantinedMail).order_by(QuarantinedMail.id)
    if not show_all:
        stmt = stmt.where(QuarantinedMail.resolved_at.is_(None))
    for entry in db.session.scalars(stmt):
        error = entry.error.splitlines()[-1] if entry.error else ""
        status = f"\tresolved: {entry.resolution}" if entry.resolved_at else ""
        click.echo(
            f"{entry.id}\t{entry.created_at:%Y-%m-%d %H:%M}\t{entry.source}\t{entry.stage}\t"
            f"{error[:200]}{status}"
        )


@quarantine.command("retry")
@click.argument("entry_id", type=int)
def quarantine_retry(entry_id: int) -> None:
    """Run quarantined mail ENTRY_ID through the pipeline again."""
    from helpdesk.inbound.ingest import retry_quarantined

    try:
        result = retry_quarantined(entry_id)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    if result.outcome == "quarantined":
        entry = db.session.get(QuarantinedMail, entry_id)
        raise click.ClickException(
            f"still failing at {entry.stage}: {entry.error.splitlines()[-1]}"
        )
    numbers = ", ".join(f"#{n}" for n in result.ticket_numbers)
    click.echo(f"quarantine #{entry_id} resolved: {result.outcome} {numbers}".rstrip())


@click.command("route-test")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def route_test(path: str) -> None:
    """Show how FILE.eml would be classified, threaded and routed (nothing is written)."""
    import hashlib

    from helpdesk.inbound.facts import mail_facts
    from helpdesk.inbound.ingest import Stage
    from helpdesk.inbound.routing import route
    from helpdesk.inbound.threading import find_thread
    from helpdesk.models import Committee

    raw = Path(path).read_bytes()
    try:
        facts = mail_facts(raw, hashlib.sha256(raw).hexdigest(), Stage())
        click.echo(f"classification: {facts.classification.kind.value}")
        if facts.classification.rules:
            click.echo(f"  rules: {', '.join(facts.classification.rules)}")
        sender = facts.sender
        verified = "verified" if sender.verified else "UNVERIFIED"
        click.echo(f"sender: {sender.address} ({verified}; {sender.reason})")
        match = find_thread(
            in_reply_to=facts.mail.in_reply_to,
            references=facts.mail.references,
            subject=facts.mail.subject,
            sender=facts.sender_address,
        )
        for ticket in match.tickets:
            click.echo(f"continues ticket #{ticket.number} (by {match.how[ticket.id]})")
        if match.referenced_number:
            click.echo(f"names ticket #{match.referenced_number}, but the sender is not on it")
        decision = route(facts.routing_input())
        names = [db.session.get(Committee, c).slug for c in decision.committee_ids]
        click.echo(f"new ticket would go to: {', '.join(names)}")
        for reason in decision.reasons:
            click.echo(f"  because {reason}")
        if decision.tags or decision.priority:
            click.echo(f"  tags: {', '.join(decision.tags) or '-'}; priority: {decision.priority}")
    except Exception as error:
        raise click.ClickException(f"{path}: {error}") from None
    finally:
        db.session.rollback()


@click.group("tickets")
def tickets_group() -> None:
    """Ticket maintenance."""


@tickets_group.command("export")
def tickets_export() -> None:
    """Print every ticket with its messages as one JSON line per ticket."""
    from helpdesk.export import export_lines

    for line in export_lines():
        click.echo(line)


COMMANDS = [mailbox, fetch_mail, ingest_file, quarantine, route_test, tickets_group]
