"""Each fault of the SendGrid stand-in mapped to its outcome, with the right attempts."""

from __future__ import annotations

import socket
import time

import pytest

from helpdesk.outbound.backends import Outcome
from helpdesk.outbound.backends.sendgrid import SendGridBackend
from tests.outbound.conftest import make_batch
from tests.support.sendgrid_server import API_KEY, Fault


def test_rate_limit_honours_retry_after_then_succeeds(stand_in, sendgrid_backend, sleeps):
    stand_in.fail_next(2, Fault.RATE_LIMIT, retry_after=7)
    results = sendgrid_backend().send(make_batch(3))
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert stand_in.attempts == 3
    assert stand_in.counts[429] == 2
    assert len(sleeps) == 2
    assert all(7 <= s <= 7.5 for s in sleeps)
    assert len(stand_in.recipients_snapshot()) == 3


def test_rate_limit_that_never_ends_is_temporary_after_the_last_attempt(
    stand_in, sendgrid_backend, sleeps
):
    stand_in.fail_next(10, Fault.RATE_LIMIT, retry_after=1)
    results = sendgrid_backend(max_attempts=4).send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.TEMPORARY] * 2
    assert "429" in results[0].error
    assert "after 4 attempts" in results[0].error
    assert stand_in.attempts == 4
    assert len(sleeps) == 3


def test_a_retry_after_beyond_the_bound_is_not_waited_for(stand_in, sendgrid_backend, sleeps):
    stand_in.fail_next(1, Fault.RATE_LIMIT, retry_after=3600)
    [result] = sendgrid_backend(max_retry_after=60).send(make_batch(1))
    assert result.outcome == Outcome.TEMPORARY
    assert "retry after 3600 s" in result.error
    assert stand_in.attempts == 1
    assert sleeps == []


@pytest.mark.parametrize(("fault", "status"), [(Fault.SERVER_ERROR, 500), (Fault.UNAVAILABLE, 503)])
def test_server_errors_are_retried_with_backoff(stand_in, sendgrid_backend, sleeps, fault, status):
    stand_in.fail_next(2, fault)
    results = sendgrid_backend(backoff_base=0.5).send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert stand_in.attempts == 3
    assert stand_in.counts[status] == 2
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0


def test_server_errors_give_up_as_temporary_with_capped_backoff(stand_in, sendgrid_backend, sleeps):
    stand_in.fail_next(20, Fault.UNAVAILABLE)
    [result] = sendgrid_backend(max_attempts=6, backoff_base=1.0, backoff_cap=4.0).send(
        make_batch(1)
    )
    assert result.outcome == Outcome.TEMPORARY
    assert "503" in result.error
    assert stand_in.attempts == 6
    assert len(sleeps) == 5
    assert all(0 <= s <= bound for s, bound in zip(sleeps, [1, 2, 4, 4, 4], strict=True))


def test_backoff_really_waits_between_attempts(stand_in):
    stand_in.fail_next(1, Fault.SERVER_ERROR)
    backend = SendGridBackend(API_KEY, host=stand_in.url, timeout=5, backoff_base=0.05)
    started = time.monotonic()
    [result] = backend.send(make_batch(1))
    assert result.outcome == Outcome.ACCEPTED
    assert stand_in.attempts == 2
    assert time.monotonic() - started < 2


def test_a_slow_answer_within_the_timeout_is_fine(stand_in, sendgrid_backend):
    stand_in.fail_next(1, Fault.SLOW, delay=0.2)
    [result] = sendgrid_backend(timeout=5).send(make_batch(1))
    assert result.outcome == Outcome.ACCEPTED
    assert stand_in.attempts == 1


def test_a_timeout_after_sending_is_uncertain_and_not_retried(stand_in, sendgrid_backend, sleeps):
    stand_in.fail_next(1, Fault.SLOW, delay=1.0)
    results = sendgrid_backend(timeout=0.3).send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.UNCERTAIN] * 2
    assert "outcome unknown" in results[0].error
    assert sleeps == []
    assert stand_in.attempts == 1


def test_a_dropped_connection_after_sending_is_uncertain(stand_in, sendgrid_backend, sleeps):
    stand_in.fail_next(1, Fault.DROP)
    results = sendgrid_backend().send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.UNCERTAIN] * 2
    assert stand_in.attempts == 1
    assert sleeps == []
    assert stand_in.accepted == []


def test_accepted_but_never_answered_is_uncertain_and_never_resent(stand_in, sendgrid_backend):
    stand_in.fail_next(1, Fault.ACCEPT_THEN_DROP)
    results = sendgrid_backend().send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.UNCERTAIN] * 2
    assert stand_in.attempts == 1
    # SendGrid has it: a retry here would have sent everyone a second copy.
    assert len(stand_in.received_by("person0@example.com")) == 1


def test_nobody_listening_is_retried_then_temporary(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = SendGridBackend(
        API_KEY, host=f"http://127.0.0.1:{port}", timeout=2, max_attempts=3, sleep=sleeps.append
    )
    [result] = backend.send(make_batch(1))
    assert result.outcome == Outcome.TEMPORARY
    assert "cannot reach SendGrid" in result.error
    assert len(sleeps) == 2


def test_a_wrong_api_key_is_permanent_without_retry(stand_in, sendgrid_backend, sleeps):
    results = sendgrid_backend(api_key="SG.wrong").send(make_batch(2))
    assert [r.outcome for r in results] == [Outcome.PERMANENT] * 2
    assert "401" in results[0].error
    assert "authorization grant is invalid" in results[0].error
    assert stand_in.attempts == 1
    assert sleeps == []


def test_413_is_permanent_without_retry(stand_in, sendgrid_backend):
    batch = make_batch(1)
    batch.recipients[0].headers["X-Padding"] = "p" * (31 * 1024 * 1024)
    [result] = sendgrid_backend(max_body_bytes=64 * 1024 * 1024).send(batch)
    assert result.outcome == Outcome.PERMANENT
    assert "413" in result.error
    assert stand_in.attempts == 1


def test_a_400_naming_personalizations_fails_only_those(stand_in, sendgrid_backend):
    batch = make_batch(4)
    # Valid for us (development hosts have no dot), refused by the API.
    batch.recipients[1].to = ["dev@localhost"]
    batch.recipients[3].to = ["ops@localhost"]
    results = sendgrid_backend().send(batch)
    assert [r.outcome for r in results] == [
        Outcome.ACCEPTED,
        Outcome.PERMANENT,
        Outcome.ACCEPTED,
        Outcome.PERMANENT,
    ]
    assert "valid address" in results[1].error
    assert stand_in.attempts == 2
    assert [len(a.body["personalizations"]) for a in stand_in.accepted] == [2]


def test_a_400_not_naming_personalizations_fails_the_whole_request(stand_in, sendgrid_backend):
    batch = make_batch(2)
    batch.from_addr = "office@localhost"
    results = sendgrid_backend().send(batch)
    assert [r.outcome for r in results] == [Outcome.PERMANENT] * 2
    assert "from.email" in results[0].error
    assert stand_in.attempts == 1


def test_random_faults_never_lose_or_double_a_recipient(stand_in, sendgrid_backend):
    stand_in.random_faults(
        rate_limit=0.15, server_error=0.1, drop=0.05, accept_then_drop=0.05, seed=7
    )
    backend = sendgrid_backend(max_attempts=8)
    outcomes = {}
    for start in range(0, 3000, 100):
        for result in backend.send(make_batch(100, start=start)):
            outcomes[start + result.index] = result.outcome
    delivered = {int(r.custom_args["delivery_id"]) for r in stand_in.recipients_snapshot()}
    accepted = {i for i, o in outcomes.items() if o == Outcome.ACCEPTED}
    uncertain = {i for i, o in outcomes.items() if o == Outcome.UNCERTAIN}
    assert len(stand_in.recipients_snapshot()) == len(delivered), "no address got two copies"
    assert accepted <= delivered
    assert delivered - accepted <= uncertain
    assert uncertain
    assert accepted
