"""`helpdesk fetch-mail` against a real Dovecot: mailboxes from the database, tickets out."""

from __future__ import annotations

import itertools

import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.models import Mailbox, MailboxFolder, OutboundKind, OutboundMessage, Ticket
from tests.inbound.conftest import PASSWORD
from tests.support.mails import make_mail

_serial = itertools.count(1)


def invoke(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input, catch_exceptions=False)


def _add_mailbox(app, dovecot, user: str, *, password: str = PASSWORD, name: str | None = None):
    name = name or f"box{next(_serial)}"
    result = invoke(
        app,
        "mailbox", "add", name,
        "--host", dovecot.host,
        "--port", str(dovecot.port),
        "--tls", "none",
        "--user", user,
        "--password-stdin",
        input=password + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return name


def _tickets() -> list[Ticket]:
    return list(db.session.scalars(sa.select(Ticket).order_by(Ticket.number)))


def test_fetch_mail_once_turns_new_mail_into_tickets_and_leaves_flags_alone(
    app, session, make_committee, dovecot, imap_user
):
    make_committee("info", triage=True, mail_addresses=["info@conference.test"])
    name = _add_mailbox(app, dovecot, imap_user)
    stored = session.scalar(sa.select(Mailbox).where(Mailbox.name == name))
    assert PASSWORD not in (stored.password_encrypted or "")
    uids = dovecot.append_many(
        imap_user, [make_mail(to="info@conference.test", subject=f"Mail {i}") for i in range(3)]
    )

    result = invoke(app, "fetch-mail", "--once")
    assert result.exit_code == 0, result.output
    assert [t.subject for t in _tickets()] == ["Mail 0", "Mail 1", "Mail 2"]
    for uid in uids:
        assert "\\Seen" not in dovecot.flags(imap_user, uid)
    mark = session.scalar(sa.select(MailboxFolder))
    assert (mark.uidvalidity, mark.last_uid) == (dovecot.uidvalidity(imap_user), uids[-1])

    # Someone reads the mail in another client: nothing is fetched twice or skipped.
    dovecot.set_flags(imap_user, uids, ["\\Seen"])
    later = dovecot.append(imap_user, make_mail(to="info@conference.test", subject="Mail 3"))
    dovecot.clear_flags(imap_user, uids[:1], ["\\Seen"])
    assert invoke(app, "fetch-mail", "--once").exit_code == 0
    assert [t.subject for t in _tickets()] == ["Mail 0", "Mail 1", "Mail 2", "Mail 3"]
    assert "\\Seen" not in dovecot.flags(imap_user, later)

    listing = invoke(app, "mailbox", "list").output
    assert f"{name}\tok\t" in listing


def _alerts() -> list[OutboundMessage]:
    query = sa.select(OutboundMessage).where(OutboundMessage.kind == OutboundKind.NOTIFICATION)
    return list(db.session.scalars(query.order_by(OutboundMessage.id)))


def test_a_broken_mailbox_is_reported_and_does_not_stop_the_others(
    app, session, make_committee, make_user, dovecot, imap_user
):
    make_committee("info", triage=True, mail_addresses=["info@conference.test"])
    make_user("root@conference.test", admin=True)
    make_user("volunteer@conference.test")
    broken = _add_mailbox(app, dovecot, imap_user, password="wrong-password", name="aaa-broken")
    good = _add_mailbox(app, dovecot, imap_user, name="zzz-good")
    dovecot.append(imap_user, make_mail(to="info@conference.test", subject="Still arrives"))

    result = app.test_cli_runner().invoke(args=["fetch-mail", "--once"])
    assert result.exit_code == 1
    assert [t.subject for t in _tickets()] == ["Still arrives"]
    boxes = {b.name: b for b in session.scalars(sa.select(Mailbox))}
    assert not boxes[broken].healthy
    assert "authentication" in boxes[broken].last_error.lower() or "login" in (
        boxes[broken].last_error.lower()
    )
    assert boxes[good].healthy
    listing = invoke(app, "mailbox", "list").output
    assert f"{broken}\tFAILING x1" in listing
    # The admins (only they) are told once, not at every failing pass.
    [alert] = _alerts()
    assert alert.to == ["root@conference.test"]
    assert alert.from_addr == app.config["HELPDESK_MAIL_FROM"]
    assert alert.subject == f"Mailbox {broken} is failing"
    assert app.test_cli_runner().invoke(args=["fetch-mail", "--once"]).exit_code == 1
    assert len(_alerts()) == 1
    assert invoke(app, "mailbox", "test", good).exit_code == 0
    assert invoke(app, "mailbox", "test", broken).exit_code == 1


def test_mailbox_add_refuses_bad_settings(app, session):
    bad = app.test_cli_runner().invoke(
        args=[
            "mailbox", "add", "x", "--host", "h", "--port", "993", "--tls", "implicit",
            "--user", "u", "--password-stdin", "--after-import", "delete",
        ],
        input="pw\n",
    )  # fmt: skip
    assert bad.exit_code == 1
    assert "after_import 'delete'" in bad.output
    both = app.test_cli_runner().invoke(
        args=[
            "mailbox", "add", "y", "--host", "h", "--port", "993", "--tls", "implicit",
            "--user", "u", "--password-stdin", "--oauth2-client-id", "cid",
        ],
        input="pw\n",
    )  # fmt: skip
    assert both.exit_code == 2
    assert session.scalar(sa.select(sa.func.count()).select_from(Mailbox)) == 0


def test_google_workspace_mailboxes_store_oauth2_secrets_encrypted(app, session):
    result = invoke(
        app,
        "mailbox", "add", "workspace",
        "--host", "imap.gmail.com", "--port", "993", "--tls", "implicit",
        "--user", "info@pycon.test",
        "--oauth2-client-id", "client-123.apps.googleusercontent.com",
        "--oauth2-client-secret-stdin", "--oauth2-refresh-token-stdin",
        "--folder", "INBOX", "--folder", "Program",
        "--after-import", "flag",
        input="the-client-secret\nthe-refresh-token\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    box = session.scalar(sa.select(Mailbox))
    assert box.password_encrypted is None
    assert "the-client-secret" not in box.oauth2_client_secret_encrypted
    assert "the-refresh-token" not in box.oauth2_refresh_token_encrypted
    from helpdesk.inbound.mailboxes import connection_config

    config = connection_config(box)
    assert config.oauth2.client_secret == "the-client-secret"
    assert config.oauth2.refresh_token == "the-refresh-token"
    assert config.oauth2.token_url == "https://oauth2.googleapis.com/token"
    assert config.folders == ["INBOX", "Program"]
