"""One batch through every backend gives every recipient the same mail."""

from __future__ import annotations

import email
import email.policy

from helpdesk.outbound.backends import Outcome, OutgoingAttachment
from helpdesk.outbound.backends.files import FilesBackend
from helpdesk.outbound.backends.smtp import SmtpBackend
from tests.outbound.conftest import make_batch


def test_files_smtp_and_sendgrid_deliver_the_same_content(
    tmp_path, smtp_server, stand_in, sendgrid_backend
):
    batch = make_batch(
        4,
        subject="Grüße, -name-",
        attachments=[OutgoingAttachment("agenda.txt", "text/plain", b"Day 1\n")],
    )
    files_results = FilesBackend(tmp_path).send(batch)
    server = smtp_server()
    smtp_results = SmtpBackend(server.url(), timeout=5).send(batch)
    sendgrid_results = sendgrid_backend().send(batch)
    for results in (files_results, smtp_results, sendgrid_results):
        assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 4

    for i, result in enumerate(files_results):
        from_file = email.message_from_bytes(
            (tmp_path / result.provider_id).read_bytes(), policy=email.policy.default
        )
        over_smtp = server.received[i].message()
        [via_sendgrid] = stand_in.received_by(f"person{i}@example.com")
        assert from_file["Subject"] == over_smtp["Subject"] == via_sendgrid.subject
        assert from_file["Subject"] == f"Grüße, Person {i}"
        text = from_file.get_body(("plain",)).get_content()
        assert text == over_smtp.get_body(("plain",)).get_content() == via_sendgrid.text
        html = from_file.get_body(("html",)).get_content()
        assert html == over_smtp.get_body(("html",)).get_content()
        assert html.rstrip("\n") == via_sendgrid.html
        assert from_file["Message-ID"] == over_smtp["Message-ID"]
        assert from_file["Message-ID"] == via_sendgrid.headers["Message-ID"]
        assert from_file["List-Unsubscribe"] == over_smtp["List-Unsubscribe"]
        assert from_file["List-Unsubscribe"] == via_sendgrid.headers["List-Unsubscribe"]
