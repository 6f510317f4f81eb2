"""Notifications: Discord posts and e-mail about new tickets, customer replies and mentions,
saying nothing of a private committee's tickets."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from helpdesk import mentions, notifications, tickets
from helpdesk.errors import ServiceError
from helpdesk.extensions import db
from helpdesk.inbound.ingest import Source, ingest
from helpdesk.integrations.discord import DiscordError
from helpdesk.models import Committee, JobFailure, OutboundKind, OutboundMessage
from tests.support.mails import make_mail

WEBHOOK = "https://discord.com/api/webhooks/123456789012345678/" + "T0ken_" * 8


def _webhook(committee, url: str = WEBHOOK) -> None:
    notifications.set_discord_webhook(committee.id, url)


def _mails_to(user) -> list[OutboundMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboundMessage)
            .where(
                OutboundMessage.kind == OutboundKind.NOTIFICATION,
                OutboundMessage.to_key == user.email,
            )
            .order_by(OutboundMessage.id)
        )
    )


def test_the_webhook_is_stored_encrypted_and_checked(session, make_committee):
    committee = make_committee()
    _webhook(committee)
    session.flush()
    stored = session.scalar(
        sa.select(Committee.discord_webhook_encrypted).where(Committee.id == committee.id)
    )
    assert stored
    assert "T0ken_" not in stored
    assert "discord" not in stored
    hook = notifications.discord_webhook(committee)
    assert hook.id == "123456789012345678"
    assert "T0ken_T0ken" not in hook.masked
    for bad in (
        "http://discord.com/api/webhooks/123456789012345678/" + "x" * 30,
        "https://evil.example/api/webhooks/123456789012345678/" + "x" * 30,
        "https://discord.com.evil.example/api/webhooks/1234567/" + "x" * 30,
        "not a url",
    ):
        with pytest.raises(ServiceError) as error:
            _webhook(committee, bad)
        assert error.value.field == "discord_webhook"
    notifications.set_discord_webhook(committee.id, "")
    assert committee.discord_webhook_encrypted is None


def test_a_new_ticket_is_posted_with_number_committee_subject_and_link(
    session, discord, make_committee, make_ticket
):
    committee = make_committee(name="Program Committee")
    _webhook(committee)
    ticket = make_ticket(committee=committee, subject="Can I *move* my talk @everyone?")
    assert discord.posts == []  # nothing before the commit
    session.commit()
    assert len(discord.posts) == 1
    post = discord.posts[0]
    assert post.webhook_id == "123456789012345678"
    assert post.token == "T0ken_" * 8
    assert f"#{ticket.number}" in post.content
    assert "Program Committee" in post.content
    assert r"Can I \*move\* my talk \@everyone?" in post.content
    assert f"<http://helpdesk.test/tickets/{ticket.number}>" in post.content
    assert post.payload["allowed_mentions"] == {"parse": []}


def test_a_private_committee_posts_only_that_there_is_a_new_ticket(
    session, discord, make_committee
):
    committee = make_committee(visibility="private", name="Diversity")
    _webhook(committee)
    session.commit()
    raw = make_mail(
        sender="Secret Person <secret.person@example.net>",
        to=committee.address_list[0],
        subject="Harassment report quokka",
        body="Something confidential happened.",
    )
    first = ingest(raw, Source("test"))
    number = first.new_ticket_numbers[0]
    reply = make_mail(
        sender="Secret Person <secret.person@example.net>",
        to=committee.address_list[0],
        subject="Re: Harassment report quokka",
        body="More confidential details.",
        in_reply_to=_message_id_of(raw),
    )
    second = ingest(reply, Source("test"))
    assert second.ticket_numbers == [number]
    assert not second.new_ticket_numbers
    link = f"<http://helpdesk.test/tickets/{number}>"
    assert [p.content for p in discord.posts] == [
        f"New ticket in Diversity\n{link}",
        f"New reply in Diversity\n{link}",
    ]


def _message_id_of(raw: bytes) -> str:
    import email

    return email.message_from_bytes(raw)["Message-ID"]


def test_customer_replies_are_posted_for_open_committees(session, discord, make_committee):
    committee = make_committee(name="Grants", visibility="members")
    _webhook(committee)
    session.commit()
    raw = make_mail(to=committee.address_list[0], subject="Grant for travel")
    number = ingest(raw, Source("test")).new_ticket_numbers[0]
    reply = make_mail(
        to=committee.address_list[0],
        subject="Re: Grant for travel",
        in_reply_to=_message_id_of(raw),
    )
    ingest(reply, Source("test"))
    assert [p.content.split("\n")[0] for p in discord.posts] == [
        f"New ticket #{number} in Grants: Grant for travel",
        f"Customer reply on #{number} in Grants: Grant for travel",
    ]
    # Nobody else's channel hears of it.
    assert {p.webhook_id for p in discord.posts} == {"123456789012345678"}


def test_a_committee_without_webhook_queues_nothing(session, discord, make_ticket):
    from helpdesk.jobs import pending_jobs

    make_ticket()
    assert pending_jobs() == []
    session.commit()
    assert discord.posts == []


def test_server_errors_and_rate_limits_are_retried(session, discord, make_committee, make_ticket):
    committee = make_committee()
    _webhook(committee)
    discord.fail_next(500, 429)
    make_ticket(committee=committee)
    session.commit()
    assert discord.attempts == 3
    assert len(discord.posts) == 1


def test_a_post_that_keeps_failing_is_recorded_as_a_failed_job(
    app, session, discord, make_committee, make_ticket, monkeypatch
):
    monkeypatch.setitem(app.config, "HELPDESK_JOBS_RAISE", False)
    committee = make_committee()
    _webhook(committee)
    discord.fail_next(503, 503, 503)
    make_ticket(committee=committee)
    session.commit()
    assert discord.posts == []
    failure = session.scalar(sa.select(JobFailure).order_by(JobFailure.id.desc()))
    assert failure.job == "helpdesk.notifications:post_to_discord"
    assert "HTTP 503" in failure.error


def test_a_deleted_webhook_is_not_retried(session, discord, make_committee, make_ticket):
    committee = make_committee()
    _webhook(committee)
    ticket = make_ticket(committee=committee)
    discord.fail_next(404)
    with pytest.raises(DiscordError):
        notifications.post_to_discord(ticket.id, notifications.NEW_TICKET)
    assert discord.attempts == 1


def test_opted_in_members_who_may_read_are_mailed(session, make_committee, make_user, make_ticket):
    committee = make_committee(name="Program", visibility="members")
    keen = make_user(committees=[committee])
    quiet = make_user(committees=[committee])
    recused = make_user(committees=[committee])
    outsider = make_user(admin=True)
    for user in (keen, recused):
        notifications.set_email_opt_in(user.id, committee.id, True)
    ticket = make_ticket(committee=committee, subject="Visa letter", recused=[recused])
    session.commit()
    mails = _mails_to(keen)
    assert len(mails) == 1
    assert mails[0].subject == f"New ticket #{ticket.number} in Program: Visa letter"
    assert f"http://helpdesk.test/tickets/{ticket.number}" in mails[0].text
    assert mails[0].from_addr == "helpdesk@helpdesk.test"
    assert mails[0].status.value == "sent"
    assert _mails_to(quiet) == _mails_to(recused) == _mails_to(outsider) == []
    # Running the job again mails nobody twice.
    notifications.mail_members(ticket.id, notifications.NEW_TICKET, None)
    session.commit()
    assert len(_mails_to(keen)) == 1


def test_a_private_committees_mail_says_only_new_ticket(session, make_committee, make_user):
    committee = make_committee(visibility="private", name="Steering")
    member = make_user(committees=[committee])
    notifications.set_email_opt_in(member.id, committee.id, True)
    session.commit()
    raw = make_mail(
        sender="Whistle Blower <blower@example.net>",
        to=committee.address_list[0],
        subject="Budget irregularities",
        body="The treasurer...",
    )
    number = ingest(raw, Source("test")).new_ticket_numbers[0]
    (mail,) = _mails_to(member)
    assert mail.subject == "New ticket in Steering"
    for secret in ("Budget", "irregularities", "Whistle", "blower", "treasurer"):
        assert secret not in mail.subject + mail.text
    assert f"http://helpdesk.test/tickets/{number}" in mail.text


def test_mentions_are_mailed_to_opted_in_members_only(
    session, make_committee, make_user, make_ticket
):
    committee = make_committee(name="Program")
    private = make_committee(name="Board", visibility="private")
    author = make_user("author@conference.test", "Author Person", committees=[committee, private])
    keen = make_user("keen@conference.test", "Keen Person", committees=[committee, private])
    quiet = make_user("quiet@conference.test", "Quiet Person", committees=[committee])
    notifications.set_email_opt_in(keen.id, committee.id, True)
    notifications.set_email_opt_in(keen.id, private.id, True)
    ticket = make_ticket(committee=committee, subject="Room booking")
    secret = make_ticket(committee=private, subject="Chair election")
    session.commit()
    mentions.add_note(ticket.id, author.id, "@keen and @quiet, please look")
    mentions.add_note(secret.id, author.id, "@keen see this")
    session.commit()
    mails = [m.subject for m in _mails_to(keen) if m.message_id.startswith("notify.mention.")]
    assert mails == [
        f"Author Person mentioned you on #{ticket.number} in Program: Room booking",
        "You were mentioned on a ticket in Board",
    ]
    assert _mails_to(quiet) == []
    assert all(n.delivered_at for n in mentions.unread(keen))


def test_a_ticket_opened_and_rolled_back_is_never_announced(
    session, discord, make_committee, make_user
):
    committee = make_committee()
    _webhook(committee)
    member = make_user(committees=[committee])
    notifications.set_email_opt_in(member.id, committee.id, True)
    session.commit()
    tickets.create_ticket(committee.id, "Never mind")
    session.rollback()
    session.commit()
    assert discord.posts == []
    assert _mails_to(member) == []


def test_members_opt_in_on_their_account_page(client, session, make_committee, make_user):
    from tests.helpers import csrf_token, login

    first = make_committee(name="Alpha")
    second = make_committee(name="Beta", visibility="private")
    hidden = make_committee(name="Gamma Hidden", visibility="private")
    user = make_user(committees=[first, second])
    session.commit()
    login(client, user)
    page = client.get("/account").get_data(as_text=True)
    assert "Alpha" in page
    assert "Beta" in page
    assert "Gamma Hidden" not in page
    token = csrf_token(client, "/account")
    response = client.post(
        "/account", data={"notify": [str(second.id), str(hidden.id)], "csrf_token": token}
    )
    assert response.status_code == 302
    session.expire_all()
    from helpdesk.models import Membership

    flags = {
        m.committee_id: m.notify_email
        for m in session.scalars(sa.select(Membership).where(Membership.user_id == user.id))
    }
    assert flags == {first.id: False, second.id: True}


def test_admins_see_mailbox_health_on_the_dashboard(client, session, make_user):
    from helpdesk.inbound.mailboxes import add_mailbox, record_health
    from tests.helpers import login

    add_mailbox("info", host="127.0.0.1", port=1, tls="none", username="u", password="p")
    session.commit()
    record_health("info", ok=False, error="login refused")
    admin = make_user(admin=True)
    agent = make_user()
    session.commit()
    login(client, admin)
    assert "login refused" in client.get("/").get_data(as_text=True)
    other = client.application.test_client()
    login(other, agent)
    assert "login refused" not in other.get("/").get_data(as_text=True)
