"""``helpdesk list ...`` and ``helpdesk subscribers ...``: lists and their subscribers."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from helpdesk.errors import ServiceError
from helpdesk.extensions import db


def _fail(error: ServiceError) -> click.ClickException:
    db.session.rollback()
    return click.ClickException(error.message)


@click.group("list")
def mailing_list() -> None:
    """Manage mailing lists."""


@mailing_list.command("add")
@click.argument("slug")
@click.option("--committee", required=True, metavar="SLUG", help="The committee owning the list.")
@click.option("--name", required=True, help="Display name, e.g. 'Conference news'.")
@click.option("--double-opt-in", is_flag=True, help="Subscribers confirm through a mailed link.")
@click.option("--public", is_flag=True, help="Offer the list on the public subscribe form.")
def list_add(slug: str, committee: str, name: str, double_opt_in: bool, public: bool) -> None:
    """Create list SLUG owned by a committee."""
    from helpdesk.outbound.audience import add_list

    try:
        created = add_list(
            slug, committee=committee, name=name, double_opt_in=double_opt_in, public=public
        )
        db.session.commit()
    except ServiceError as e:
        raise _fail(e) from None
    mode = "double opt-in" if created.double_opt_in else "single opt-in"
    click.echo(f"list {created.slug} created ({mode}{', public' if created.public else ''})")


@click.group("subscribers")
def subscribers() -> None:
    """Import and export a list's subscribers."""


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "list_slug", required=True, metavar="SLUG", help="The list to fill.")
def subscribers_import(file: Path, list_slug: str) -> None:
    """Import FILE (CSV: email,name[,language,...], header line required) into a list.

    Every row not imported is listed with its line number and the reason.
    """
    from helpdesk.outbound.audience import get_list
    from helpdesk.outbound.subscriber_import import import_csv

    data = file.read_bytes()
    try:
        target = get_list(list_slug)
        rows = max(data.count(b"\n"), 1)
        with click.progressbar(length=rows, label=f"importing {file.name}", file=sys.stderr) as bar:
            report = import_csv(target.id, data, file.name, progress=bar.update)
        db.session.commit()
    except ServiceError as e:
        raise _fail(e) from None
    for problem in report.problems:
        click.echo(
            f"{file.name}:{problem.line}: {problem.email or '(no address)'}: {problem.reason}"
        )
    click.echo(report.summary())


@subscribers.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list", "list_slug", required=True, metavar="SLUG", help="The list to export.")
def subscribers_export(file: Path | None, list_slug: str) -> None:
    """Write a list's subscribers as CSV to FILE (default: standard output)."""
    from helpdesk.outbound.audience import get_list
    from helpdesk.outbound.subscriber_export import export_csv

    try:
        target = get_list(list_slug)
    except ServiceError as e:
        raise _fail(e) from None
    if file is None:
        export_csv(target.id, sys.stdout)
        return
    with file.open("w", newline="", encoding="utf-8") as out:
        count = export_csv(target.id, out)
    click.echo(f"{count} subscribers written to {file}", err=True)


COMMANDS = [mailing_list, subscribers]
