"""The ``helpdesk`` command: the app's Flask CLI group (``helpdesk X`` == ``flask --app wsgi X``).

Operators' scripts use these command and option names; keep them stable.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup

from helpdesk.config import ConfigError
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.models import MembershipRole
from helpdesk.models.committees import Visibility


def _fail(error: ServiceError) -> click.ClickException:
    # Nothing of a refused command stays behind, even in a caller's longer-lived session.
    db.session.rollback()
    return click.ClickException(error.message)


@click.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema to the newest migration."""
    from flask_migrate import upgrade

    upgrade()
    click.echo("database is at the newest migration")


@click.group("committee")
def committee() -> None:
    """Manage committees."""


@committee.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Display name, e.g. 'Program committee'.")
@click.option(
    "--address",
    "addresses_",
    multiple=True,
    metavar="ADDR",
    help="A mail address (Google Group) of the committee; repeatable.",
)
@click.option(
    "--visibility",
    type=click.Choice([v.value for v in Visibility]),
    default=Visibility.OPEN.value,
    show_default=True,
)
@click.option("--triage", is_flag=True, help="Make this the queue that unmatched mail goes to.")
def committee_add(
    slug: str, name: str, addresses_: tuple[str, ...], visibility: str, triage: bool
) -> None:
    """Create committee SLUG."""
    from helpdesk.committees import add_committee

    try:
        created = add_committee(
            slug, name, mail_addresses=list(addresses_), visibility=visibility, triage=triage
        )
        db.session.commit()
    except ServiceError as e:
        raise _fail(e) from None
    click.echo(f"committee {created.slug} created ({created.visibility.value})")


@committee.command("list")
def committee_list() -> None:
    """List committees with their visibility and addresses."""
    import sqlalchemy as sa

    from helpdesk.models import Committee

    for c in db.session.scalars(sa.select(Committee).order_by(Committee.slug)):
        flags = " triage" if c.is_triage else ""
        click.echo(f"{c.slug}\t{c.visibility.value}{flags}\t{c.name}\t{', '.join(c.address_list)}")


def _parse_membership(value: str) -> tuple[str, MembershipRole]:
    slug, _, role = value.partition(":")
    try:
        return slug, MembershipRole(role or "member")
    except ValueError:
        raise click.BadParameter(f"{value!r}: use SLUG or SLUG:lead") from None


@click.command("create-agent")
@click.argument("email")
@click.option("--name", required=True)
@click.option(
    "--committee",
    "committees",
    multiple=True,
    metavar="SLUG[:lead]",
    help="Membership, repeatable; ':lead' makes the agent a lead.",
)
@click.option("--admin", is_flag=True, help="Site admin: manages committees and members.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_agent_command(
    email: str, name: str, committees: tuple[str, ...], admin: bool, password_stdin: bool
) -> None:
    """Create agent EMAIL; without --password-stdin a password is generated and printed."""
    import secrets

    from helpdesk.agents import create_agent

    memberships = [_parse_membership(v) for v in committees]
    generated = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = generated = secrets.token_urlsafe(12)
    try:
        user = create_agent(email, name, password=password, admin=admin, committees=memberships)
        db.session.commit()
    except ServiceError as e:
        raise _fail(e) from None
    click.echo(f"agent {user.email} created")
    if generated:
        click.echo(f"password: {generated}")


@click.command("api-token")
@click.argument("email")
@click.option("--name", default="", help="What the token is for.")
@click.option(
    "--scope", "scopes", multiple=True, help="Grant a scope, e.g. messages:send (repeatable)."
)
@click.option("--rate-limit", default=None, help="Its own limit, e.g. 10/second;1000/hour.")
def api_token(email: str, name: str, scopes: tuple[str, ...], rate_limit: str | None) -> None:
    """Print a new API bearer token for agent EMAIL (only its hash is stored)."""
    from helpdesk.agents import get_agent, issue_api_token
    from helpdesk.config import parse_rate

    if rate_limit:
        try:
            rate_limit = parse_rate("--rate-limit", rate_limit)
        except ConfigError as error:
            raise click.BadParameter(error.reason, param_hint="--rate-limit") from None
    try:
        token = issue_api_token(
            get_agent(email).id, name=name, scopes=list(scopes), rate_limit=rate_limit
        )
        db.session.commit()
    except ServiceError as e:
        raise _fail(e) from None
    click.echo(token)


@click.command("demo")
def demo() -> None:
    """Migrate, then create the demo conference: committees, agents, tickets."""
    from flask_migrate import upgrade

    from helpdesk.demo import create_demo

    if current_app.config["HELPDESK_ENV"] == "production":
        raise click.ClickException("refusing to create demo data with HELPDESK_ENV=production")
    upgrade()
    for line in create_demo():
        click.echo(line)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the development server (production: gunicorn wsgi:app)."""
    from werkzeug.serving import run_simple

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    click.echo(f"helpdesk at http://{host}:{port}/ (development server)")
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--no-fork",
    is_flag=True,
    help="Run jobs in the worker process instead of a forked one per job: much faster "
    "for short jobs such as transactional mail; a job that crashes the process stops "
    "the worker, so run it under a supervisor.",
)
def worker(queues: tuple[str, ...], burst: bool, no_fork: bool) -> None:
    """Run an RQ worker (with its scheduler) on QUEUES (default: all, by priority)."""
    from rq import Queue, SimpleWorker, Worker

    from helpdesk.jobs import QUEUES, redis_connection, set_worker_app

    unknown = [q for q in queues if q not in QUEUES]
    if unknown:
        raise click.BadParameter(
            f"unknown queue(s) {', '.join(unknown)}; queues: {', '.join(QUEUES)}"
        )
    if not current_app.config.get("HELPDESK_REDIS_URL"):
        raise click.ClickException(
            "HELPDESK_REDIS_URL is not set: jobs run inline, no worker needed"
        )
    connection = redis_connection()
    set_worker_app(current_app._get_current_object())  # type: ignore[attr-defined]
    _warm_imports()
    names = queues or QUEUES
    worker_class = SimpleWorker if no_fork else Worker
    rq_worker = worker_class(
        [Queue(q, connection=connection) for q in names], connection=connection
    )
    if not burst:
        _start_periodic_thread(redis_url=current_app.config["HELPDESK_REDIS_URL"])
    # RQ logs four lines per job at INFO; HELPDESK_LOG_LEVEL=warning quietens it as well.
    level = current_app.config["HELPDESK_SETTINGS"].log_level.upper()
    rq_worker.work(with_scheduler=True, burst=burst, logging_level=level)


def _warm_imports() -> None:
    """Import what jobs use before RQ forks a work horse per job, so each horse does not
    import the mail backend (and its libraries) again: that cost a fifth of a second a job."""
    from helpdesk.jobs import PERIODIC_MODULES
    from helpdesk.outbound.backends import get_backend

    for module in PERIODIC_MODULES:
        importlib.import_module(module)
    get_backend(current_app.config)


def _start_periodic_thread(redis_url: str) -> None:
    """Queue periodic jobs (maintenance) every few seconds from a thread of the worker."""
    import threading
    import time

    from redis import Redis

    from helpdesk.jobs import enqueue_due_periodic

    log = logging.getLogger("helpdesk.worker")

    def loop() -> None:
        connection = Redis.from_url(redis_url, socket_timeout=30, socket_connect_timeout=5)
        while True:
            try:
                enqueue_due_periodic(connection, time.time())
            except Exception:
                log.exception("could not queue periodic jobs")
            time.sleep(15)

    threading.Thread(target=loop, name="helpdesk-periodic", daemon=True).start()


COMMANDS = [init_db, committee, create_agent_command, api_token, demo, serve, worker]


def register_commands(app: Flask) -> None:
    """Attach the helpdesk commands to ``app.cli``."""
    from helpdesk.inbound.commands import COMMANDS as INBOUND_COMMANDS
    from helpdesk.outbound import audience_commands
    from helpdesk.outbound.commands import COMMANDS as OUTBOUND_COMMANDS

    for command in [*COMMANDS, *INBOUND_COMMANDS, *OUTBOUND_COMMANDS]:
        app.cli.add_command(command)
    app.cli.add_command(audience_commands.mailing_list)
    app.cli.add_command(audience_commands.subscribers)


def _create_app() -> Flask:
    from helpdesk import create_app

    return create_app()


cli = FlaskGroup(create_app=_create_app, help="Helpdesk commands.")


def main() -> None:
    """Console-script entry point: configuration errors are one line, not a traceback."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cli.main(prog_name="helpdesk")
    except ConfigError as error:
        click.echo(f"helpdesk: configuration error: {error}", err=True)
        sys.exit(2)
