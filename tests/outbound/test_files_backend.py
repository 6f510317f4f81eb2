"""The files backend: one .eml per recipient, atomic, sortable, read back with email."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from helpdesk.outbound.backends import Outcome, OutgoingAttachment, get_backend
from helpdesk.outbound.backends.files import ENVELOPE_HEADER, FilesBackend
from tests.outbound.conftest import make_batch


def read(outbox: Path, name: str) -> email.message.EmailMessage:
    return email.message_from_bytes((outbox / name).read_bytes(), policy=email.policy.default)


def test_single_recipient_becomes_one_eml_file(tmp_path):
    outbox = tmp_path / "outbox"
    batch = make_batch(1)
    [result] = FilesBackend(outbox).send(batch)
    assert result.outcome == Outcome.ACCEPTED
    assert result.error is None
    assert [p.name for p in outbox.iterdir()] == [result.provider_id]
    message = read(outbox, result.provider_id)
    assert message["To"] == "Person 0 <person0@example.com>"
    assert message["Subject"] == "Hello Person 0"
    assert message.get_body(("plain",)).get_content() == "Dear Person 0,\nyour code is C00000.\n"
    assert message["List-Unsubscribe"] == "<https://conference.example/unsubscribe/0>"
    assert message["Message-ID"] == "<delivery-0@conference.example>"


def test_each_recipient_gets_its_own_file_with_its_own_values(tmp_path):
    batch = make_batch(25)
    results = FilesBackend(tmp_path).send(batch)
    assert [r.index for r in results] == list(range(25))
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    names = [r.provider_id for r in results]
    assert len(set(names)) == 25
    assert names == sorted(names), "file names sort in the order they were written"
    assert sorted(p.name for p in tmp_path.iterdir()) == names, "no temporary files left"
    for i, name in enumerate(names):
        message = read(tmp_path, name)
        assert message["Subject"] == f"Hello Person {i}"
        assert f"C{i:05d}" in message.get_body(("html",)).get_content()


def test_file_names_stay_unique_and_ordered_across_batches(tmp_path):
    backend = FilesBackend(tmp_path)
    names = [r.provider_id for _ in range(20) for r in backend.send(make_batch(3))]
    assert len(set(names)) == 60
    assert names == sorted(names)


def test_attachments_and_envelope_with_bcc(tmp_path):
    batch = make_batch(1, attachments=[OutgoingAttachment("agenda.txt", "text/plain", b"Day 1\n")])
    batch.recipients[0].bcc = ["archive@conference.example"]
    [result] = FilesBackend(tmp_path).send(batch)
    message = read(tmp_path, result.provider_id)
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "agenda.txt"
    assert attachment.get_content() == "Day 1\n"
    assert message[ENVELOPE_HEADER] == "person0@example.com, archive@conference.example"
    assert "Bcc" not in message


def test_a_malformed_recipient_is_refused_and_the_others_written(tmp_path):
    batch = make_batch(3)
    batch.recipients[1].to = ["broken@"]
    results = FilesBackend(tmp_path).send(batch)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.PERMANENT, Outcome.ACCEPTED]
    assert "broken@" in results[1].error
    assert len(list(tmp_path.iterdir())) == 2


def test_an_unusable_outbox_is_a_temporary_failure(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outbox should be")
    results = FilesBackend(blocker / "outbox").send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.TEMPORARY, Outcome.TEMPORARY]
    assert "cannot create outbox" in results[0].error


def test_get_backend_defaults_to_files_in_the_configured_outbox(tmp_path):
    backend = get_backend({"HELPDESK_OUTBOX_PATH": str(tmp_path / "box")})
    assert isinstance(backend, FilesBackend)
    [result] = backend.send(make_batch(1))
    assert (tmp_path / "box" / result.provider_id).is_file()
