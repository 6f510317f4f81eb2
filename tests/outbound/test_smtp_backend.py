"""The SMTP backend against a real aiosmtpd server: TLS, AUTH, replies and lost connections."""

from __future__ import annotations

import socket

import pytest

from helpdesk.config import ConfigError
from helpdesk.outbound.backends import Outcome, OutgoingAttachment, OutgoingBatch, Recipient
from helpdesk.outbound.backends.smtp import SmtpBackend, SmtpServer
from tests.outbound.conftest import make_batch

USERS = {"mailer": "s3cret pass"}


def backend_for(server, *, credentials=("mailer", "s3cret%20pass"), **options) -> SmtpBackend:
    options.setdefault("timeout", 5.0)
    return SmtpBackend(
        server.url(credentials=credentials),
        ssl_context=server.client_context(),
        local_hostname="helpdesk.test",
        **options,
    )


@pytest.mark.parametrize("tls", [None, "starttls", "implicit"])
def test_single_recipient_over_each_transport_with_auth(smtp_server, tls):
    server = smtp_server(tls=tls, users=USERS)
    [result] = backend_for(server).send(make_batch(1))
    assert result.outcome == Outcome.ACCEPTED
    [mail] = server.received
    assert mail.tls is (tls is not None)
    assert mail.authenticated
    assert mail.mail_from == "office@conference.example"
    assert mail.rcpt_tos == ["person0@example.com"]
    message = mail.message()
    assert message["Message-ID"] == "<delivery-0@conference.example>"
    assert result.provider_id == "delivery-0@conference.example"
    assert message["Subject"] == "Hello Person 0"


def test_a_batch_uses_one_connection_and_personal_content(smtp_server):
    server = smtp_server(tls="starttls", users=USERS)
    results = backend_for(server).send(make_batch(30))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 30
    assert len({mail.peer for mail in server.received}) == 1
    for i, mail in enumerate(server.received):
        assert mail.rcpt_tos == [f"person{i}@example.com"]
        assert mail.message().get_body(("plain",)).get_content().endswith(f"C{i:05d}.\n")


def test_cc_and_bcc_are_envelope_recipients_and_bcc_stays_hidden(smtp_server):
    server = smtp_server()
    batch = make_batch(1)
    batch.recipients[0].cc = ["Doe, John <john@example.com>"]
    batch.recipients[0].bcc = ["archive@conference.example"]
    [result] = backend_for(server, credentials=None).send(batch)
    assert result.outcome == Outcome.ACCEPTED
    [mail] = server.received
    assert mail.rcpt_tos == [
        "person0@example.com",
        "john@example.com",
        "archive@conference.example",
    ]
    assert "Bcc" not in mail.message()
    assert mail.message()["Cc"].addresses[0].display_name == "Doe, John"


def test_dots_attachments_non_ascii_and_threading_survive_the_trip(smtp_server):
    server = smtp_server()
    pdf = bytes(range(256)) * 40
    batch = OutgoingBatch(
        from_addr="Programm Komitee <program@conference.example>",
        subject="Re: Ihr Vortrag, -name- · Grüße",
        text=".\n..leading dots\n.\nEnde, -name-",
        headers={"In-Reply-To": "<q-1@mail.example>", "References": "<q-1@mail.example>"},
        attachments=[OutgoingAttachment("Zeitplan.pdf", "application/pdf", pdf)],
        recipients=[Recipient(to=["Zoë <zoe@example.com>"], substitutions={"-name-": "Zoë"})],
    )
    [result] = backend_for(server, credentials=None).send(batch)
    assert result.outcome == Outcome.ACCEPTED
    message = server.received[0].message()
    assert message["Subject"] == "Re: Ihr Vortrag, Zoë · Grüße"
    assert message["In-Reply-To"] == "<q-1@mail.example>"
    assert message["References"] == "<q-1@mail.example>"
    assert message.get_body(("plain",)).get_content() == ".\n..leading dots\n.\nEnde, Zoë\n"
    assert next(message.iter_attachments()).get_content() == pdf


def test_rcpt_replies_map_to_outcomes_and_the_batch_goes_on(smtp_server):
    server = smtp_server()
    server.behaviour.rcpt_replies = {
        "person1@example.com": "550 5.1.1 No such user",
        "person2@example.com": "452 4.2.2 Mailbox full",
    }
    results = backend_for(server, credentials=None).send(make_batch(4))
    assert [r.outcome for r in results] == [
        Outcome.ACCEPTED,
        Outcome.PERMANENT,
        Outcome.TEMPORARY,
        Outcome.ACCEPTED,
    ]
    assert "550 5.1.1 No such user" in results[1].error
    assert "452 4.2.2" in results[2].error
    assert [m.rcpt_tos for m in server.received] == [
        ["person0@example.com"],
        ["person3@example.com"],
    ]


def test_a_copy_accepted_for_some_addresses_is_accepted_with_a_note(smtp_server):
    server = smtp_server()
    server.behaviour.rcpt_replies = {"gone@example.com": "550 5.1.1 No such user"}
    batch = make_batch(1)
    batch.recipients[0].cc = ["gone@example.com"]
    [result] = backend_for(server, credentials=None).send(batch)
    assert result.outcome == Outcome.ACCEPTED
    assert "gone@example.com: 550" in result.error


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [("554 5.7.1 Rejected as spam", Outcome.PERMANENT), ("451 4.3.0 Try later", Outcome.TEMPORARY)],
)
def test_data_replies_map_to_outcomes(smtp_server, reply, outcome):
    server = smtp_server()
    server.behaviour.data_reply = reply
    results = backend_for(server, credentials=None).send(make_batch(2))
    assert [r.outcome for r in results] == [outcome, outcome]
    assert reply in results[0].error
    assert server.received == []


def test_mail_from_refused_is_permanent(smtp_server):
    server = smtp_server()
    server.behaviour.mail_reply = "553 5.7.1 Sender not allowed"
    results = backend_for(server, credentials=None).send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.PERMANENT]
    assert "MAIL FROM refused: 553" in results[0].error


def test_connection_dropped_before_data_is_temporary_and_the_rest_reconnect(smtp_server):
    server = smtp_server()
    server.behaviour.drop_at_rcpt = {"person1@example.com"}
    results = backend_for(server, credentials=None).send(make_batch(3))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.TEMPORARY, Outcome.ACCEPTED]
    assert "connection lost" in results[1].error
    assert [m.rcpt_tos for m in server.received] == [
        ["person0@example.com"],
        ["person2@example.com"],
    ]
    assert len({m.peer for m in server.received}) == 2


def test_connection_dropped_after_the_data_left_is_uncertain(smtp_server):
    server = smtp_server()
    server.behaviour.drop_after_data_for = {"person0@example.com"}
    results = backend_for(server, credentials=None).send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.UNCERTAIN, Outcome.ACCEPTED]
    assert "outcome unknown" in results[0].error
    # The server did keep it: resending would have delivered it twice.
    assert [m.rcpt_tos for m in server.received] == [
        ["person0@example.com"],
        ["person1@example.com"],
    ]


def test_no_answer_after_the_data_is_uncertain_after_the_timeout(smtp_server):
    server = smtp_server()
    server.behaviour.stall_after_data_for = {"person0@example.com"}
    [result] = backend_for(server, credentials=None, timeout=0.3).send(make_batch(1))
    assert result.outcome == Outcome.UNCERTAIN
    assert "timed out" in result.error


def test_connections_lost_again_and_again_stop_the_batch(smtp_server):
    server = smtp_server()
    server.behaviour.drop_at_rcpt = {f"person{i}@example.com" for i in range(10)}
    results = backend_for(server, credentials=None, max_reconnects=2).send(make_batch(10))
    assert [r.outcome for r in results] == [Outcome.TEMPORARY] * 10
    assert "lost 3 times" in results[3].error


def test_wrong_password_is_a_permanent_authentication_failure(smtp_server):
    server = smtp_server(tls="starttls", users=USERS)
    results = backend_for(server, credentials=("mailer", "wrong")).send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.PERMANENT]
    assert "authentication failed: 535" in results[0].error
    assert server.received == []


def test_starttls_is_required_when_asked_for(smtp_server):
    server = smtp_server()  # plain SMTP, no STARTTLS on offer
    backend = SmtpBackend(f"smtp+starttls://127.0.0.1:{server.port}", timeout=5)
    [result] = backend.send(make_batch(1))
    assert result.outcome == Outcome.PERMANENT
    assert "STARTTLS" in result.error
    assert server.received == []


def test_an_untrusted_certificate_is_refused(smtp_server):
    server = smtp_server(tls="implicit")
    backend = SmtpBackend(server.url(), timeout=5)  # the system's trust store only
    [result] = backend.send(make_batch(1))
    assert result.outcome == Outcome.TEMPORARY
    assert "CERTIFICATE_VERIFY_FAILED" in result.error


def test_nobody_listening_is_temporary():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = SmtpBackend(f"smtp://127.0.0.1:{port}", timeout=2).send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.TEMPORARY, Outcome.TEMPORARY]
    assert "cannot connect" in results[0].error


def test_smtp_url_parsing():
    server = SmtpServer.from_url("smtp+starttls://user%40x:p%3Ass@relay.example")
    assert server == SmtpServer("relay.example", 587, "starttls", "user@x", "p:ss")
    assert SmtpServer.from_url("smtps://relay.example").port == 465
    assert SmtpServer.from_url("smtp://relay.example:2525").port == 2525
    with pytest.raises(ConfigError, match="HELPDESK_SMTP_URL"):
        SmtpServer.from_url("http://relay.example")
    with pytest.raises(ConfigError, match="no password"):
        SmtpServer.from_url("smtp://user@relay.example")
