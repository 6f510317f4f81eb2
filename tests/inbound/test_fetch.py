"""fetch_once against a real Dovecot: order, batches, flags, failures, after-import, UIDVALIDITY."""

from __future__ import annotations

import threading

import pytest

from helpdesk.inbound import imap
from helpdesk.inbound.fetch import MailboxFetcher, fetch_once
from helpdesk.inbound.fetch_errors import FetchIncomplete
from helpdesk.inbound.imap import ImapConnectionError
from helpdesk.inbound.mailbox import MemoryCheckpoint
from tests.inbound.conftest import make_mail


def test_fetch_hands_over_every_appended_mail_once_in_uid_order(
    dovecot, imap_user, make_config, checkpoint, recorder, monkeypatch
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(10)])
    fetch_sizes = []
    real_fetch = imap.ImapSession.fetch

    def counting_fetch(self, batch):
        fetch_sizes.append(len(batch))
        return real_fetch(self, batch)

    monkeypatch.setattr(imap.ImapSession, "fetch", counting_fetch)
    config = make_config()

    assert fetch_once(config, checkpoint, recorder, batch_size=4) == 10

    assert recorder.uids == uids
    assert fetch_sizes == [4, 4, 2]
    assert [mail.raw for mail in recorder.mails] == [make_mail(n) for n in range(10)]
    mail = recorder.mails[0]
    assert (mail.mailbox, mail.folder) == (imap_user, "INBOX")
    assert mail.uidvalidity == dovecot.uidvalidity(imap_user)
    assert checkpoint.get(imap_user, "INBOX") == (mail.uidvalidity, uids[-1])
    # A second pass finds nothing new; a new mail is the only one offered next.
    assert fetch_once(config, checkpoint, recorder) == 0
    new_uid = dovecot.append(imap_user, make_mail(99))
    assert fetch_once(config, checkpoint, recorder) == 1
    assert recorder.uids == [*uids, new_uid]


def test_fetch_logs_in_with_xoauth2(dovecot, imap_user, make_config, oauth_config, recorder):
    uid = dovecot.append(imap_user, make_mail(1))
    config = make_config(password=None, oauth2=oauth_config(imap_user))
    assert fetch_once(config, MemoryCheckpoint(), recorder) == 1
    assert recorder.uids == [uid]


def test_a_set_stop_event_ends_the_pass_after_the_batch_in_hand(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(9)])
    stop = threading.Event()
    recorder.on_mail = lambda mail: stop.set() if mail.uid == uids[2] else None
    with MailboxFetcher(make_config(), checkpoint, recorder, batch_size=4) as fetcher:
        assert fetcher.fetch_all(stop) == 4
    assert recorder.uids == uids[:4]
    assert checkpoint.get(imap_user, "INBOX")[1] == uids[3]


def test_fetch_of_an_empty_folder_records_its_uidvalidity(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    assert fetch_once(make_config(), checkpoint, recorder) == 0
    assert checkpoint.get(imap_user, "INBOX") == (dovecot.uidvalidity(imap_user), 0)


def test_reading_leaves_seen_flags_as_they_were(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    unseen = dovecot.append(imap_user, make_mail(1))
    seen = dovecot.append(imap_user, make_mail(2), flags=[r"\Seen"])

    for after_import in ("leave", "flag"):
        fetch_once(make_config(name=after_import, after_import=after_import), checkpoint, recorder)
        assert r"\Seen" not in dovecot.flags(imap_user, unseen)
        assert r"\Seen" in dovecot.flags(imap_user, seen)
    assert recorder.counts() == {unseen: 2, seen: 2}


def test_seen_changes_by_another_client_change_nothing_about_what_is_fetched(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    config = make_config()
    first = dovecot.append_many(imap_user, [make_mail(n) for n in range(4)])
    # Someone reads two of them in their mail client before the fetcher runs.
    dovecot.set_flags(imap_user, first[:2], [r"\Seen"])
    assert fetch_once(config, checkpoint, recorder) == 4

    # Marking fetched mail unseen (or seen) again does not bring it back.
    dovecot.clear_flags(imap_user, first[:2], [r"\Seen"])
    dovecot.set_flags(imap_user, first[2:], [r"\Seen"])
    assert fetch_once(config, checkpoint, recorder) == 0

    # New mail is fetched whether it arrives read or not.
    later = [
        dovecot.append(imap_user, make_mail(10), flags=[r"\Seen"]),
        dovecot.append(imap_user, make_mail(11)),
    ]
    assert fetch_once(config, checkpoint, recorder) == 2
    assert recorder.uids == first + later


# Also a handler taking batches in two steps (submit_batch, make_durable), as the process
# pool does: the next batch is fetched while it works, and nothing else changes.
@pytest.mark.parametrize("handler", ["recorder", "pipelined_recorder"])
def test_a_failing_handler_keeps_the_watermark_but_later_mail_is_still_handled(
    dovecot, imap_user, make_config, checkpoint, handler, request
):
    recorder = request.getfixturevalue(handler)
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(8)])
    recorder.fail_uids = {uids[3]}
    config = make_config()

    with pytest.raises(FetchIncomplete) as raised:
        fetch_once(config, checkpoint, recorder, batch_size=3)

    assert raised.value.handled == 7
    [failure] = raised.value.failures
    assert failure.uid == uids[3]
    assert "database unavailable" in failure.error
    assert "UID 4" in str(raised.value)
    assert recorder.uids == uids[:3] + uids[4:]
    validity = dovecot.uidvalidity(imap_user)
    assert checkpoint.get(imap_user, "INBOX") == (validity, uids[2])

    # Once the handler works again, the failed mail and those after it are offered again
    # (the ingester's dedupe absorbs the repeats) and the watermark reaches the end.
    recorder.fail_uids = set()
    assert fetch_once(config, checkpoint, recorder) == 5
    assert recorder.counts()[uids[3]] == 1
    assert all(recorder.counts()[uid] == 2 for uid in uids[4:])
    assert checkpoint.get(imap_user, "INBOX") == (validity, uids[-1])


def test_after_import_leave_opens_the_folder_read_only(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    uid = dovecot.append(imap_user, make_mail(1))
    before = dovecot.flags(imap_user, uid)
    fetch_once(make_config(after_import="leave"), checkpoint, recorder)
    assert dovecot.flags(imap_user, uid) == before
    assert dovecot.uids(imap_user) == [uid]


@pytest.mark.parametrize(
    ("after_import", "flag"), [("flag", r"\Flagged"), ("flag:$Helpdesk", "$Helpdesk")]
)
def test_after_import_flag_marks_only_handled_mail(
    dovecot, imap_user, make_config, checkpoint, recorder, after_import, flag
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(5)])
    recorder.fail_uids = {uids[1]}
    with pytest.raises(FetchIncomplete):
        fetch_once(make_config(after_import=after_import), checkpoint, recorder, batch_size=2)
    flagged = [uid for uid in uids if flag in dovecot.flags(imap_user, uid)]
    assert flagged == [uids[0], *uids[2:]]


def test_after_import_move_moves_handled_mail(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    dovecot.create_folder(imap_user, "Imported")
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(5)])
    fetch_once(make_config(after_import="move:Imported"), checkpoint, recorder, batch_size=2)
    assert recorder.uids == uids
    assert dovecot.uids(imap_user) == []
    assert len(dovecot.uids(imap_user, "Imported")) == 5


def test_move_without_the_move_extension_expunges_only_the_moved_mail(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    dovecot.create_folder(imap_user, "Imported")
    # Another client's mail marked \Deleted (but not expunged) must survive our move.
    theirs = dovecot.append(imap_user, make_mail(1))
    fetch_once(make_config(), checkpoint, recorder)
    dovecot.set_flags(imap_user, [theirs], [r"\Deleted"])
    ours = dovecot.append_many(imap_user, [make_mail(n) for n in (2, 3)])

    # The plain listener advertises neither MOVE nor IDLE: COPY + UID EXPUNGE is used.
    config = make_config(host=dovecot.plain_host, after_import="move:Imported")
    assert fetch_once(config, checkpoint, recorder) == 2

    assert recorder.uids == [theirs, *ours]
    assert dovecot.uids(imap_user) == [theirs]
    assert len(dovecot.uids(imap_user, "Imported")) == 2


def test_a_missing_move_target_is_reported_and_the_move_done_once_it_exists(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(3)])
    config = make_config(after_import="move:Imported")
    with MailboxFetcher(config, checkpoint, recorder) as fetcher:
        with pytest.raises(FetchIncomplete) as raised:
            fetcher.fetch_all()
        assert "INBOX" in raised.value.folder_errors
        assert raised.value.handled == 3
        # Handled mail is not offered twice, even though it could not be moved.
        assert checkpoint.get(imap_user, "INBOX")[1] == uids[-1]

        # Still missing: reported again, and new mail is still fetched meanwhile.
        late = dovecot.append(imap_user, make_mail(9))
        with pytest.raises(FetchIncomplete) as raised:
            fetcher.fetch_all()
        assert "Imported" in raised.value.folder_errors["INBOX"]
        assert raised.value.handled == 1

        dovecot.create_folder(imap_user, "Imported")
        assert fetcher.fetch_all() == 0
    uids.append(late)
    assert dovecot.uids(imap_user) == []
    assert len(dovecot.uids(imap_user, "Imported")) == 4
    assert recorder.counts() == {uid: 1 for uid in uids}


def test_a_new_uidvalidity_rescans_the_folder_from_the_start(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    dovecot.create_folder(imap_user, "Lists")
    dovecot.append_many(imap_user, [make_mail(n) for n in range(3)], folder="Lists")
    config = make_config(folders=["INBOX", "Lists"])
    assert fetch_once(config, checkpoint, recorder) == 3
    old_validity, old_mark = checkpoint.get(imap_user, "Lists")
    assert old_mark == 3

    # Recreated folders start their UIDs again, below the old watermark.
    dovecot.delete_folder(imap_user, "Lists")
    dovecot.create_folder(imap_user, "Lists")
    new_uids = dovecot.append_many(imap_user, [make_mail(n) for n in (10, 11)], folder="Lists")
    new_validity = dovecot.uidvalidity(imap_user, "Lists")
    assert new_validity != old_validity
    assert new_uids == [1, 2]

    assert fetch_once(config, checkpoint, recorder) == 2
    assert [(m.uidvalidity, m.uid) for m in recorder.mails[3:]] == [
        (new_validity, 1),
        (new_validity, 2),
    ]
    assert checkpoint.get(imap_user, "Lists") == (new_validity, 2)


def test_a_missing_folder_is_reported_and_the_other_folders_still_fetched(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    uid = dovecot.append(imap_user, make_mail(1))
    config = make_config(folders=["Gone", "INBOX"])
    with pytest.raises(FetchIncomplete) as raised:
        fetch_once(config, checkpoint, recorder)
    assert list(raised.value.folder_errors) == ["Gone"]
    assert recorder.uids == [uid]


def test_a_connection_cut_mid_fetch_resumes_without_loss_or_repeats(
    dovecot, imap_user, make_config, checkpoint, recorder
):
    uids = dovecot.append_many(imap_user, [make_mail(n) for n in range(40)])
    kicked = []

    def kick_at_the_fifteenth(mail):
        if mail.uid == uids[14] and not kicked:
            kicked.append(mail.uid)
            dovecot.kick(imap_user)

    recorder.on_mail = kick_at_the_fifteenth
    config = make_config(after_import="flag")
    with pytest.raises(ImapConnectionError):
        fetch_once(config, checkpoint, recorder, batch_size=10)
    # The batch in hand was handled; the next FETCH found the connection gone.
    assert recorder.uids == uids[:20]

    assert fetch_once(config, checkpoint, recorder, batch_size=10) == 20
    assert recorder.counts() == {uid: 1 for uid in uids}
    assert checkpoint.get(imap_user, "INBOX")[1] == uids[-1]
