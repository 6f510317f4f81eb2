"""The jobs facade: after-commit only, ids only, inline by default, RQ with Redis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from rq import Queue, SimpleWorker

from helpdesk.extensions import db
from helpdesk.jobs import QUEUES, enqueue, job, pending_jobs, set_worker_app
from helpdesk.models import JobFailure, Message, User
from tests import job_fixtures
from tests.conftest import REDIS_URL, helpdesk_env

ROOT = Path(__file__).resolve().parents[1]


def _notes(session, ticket_id):
    return list(
        session.scalars(
            sa.select(Message.text)
            .where(Message.ticket_id == ticket_id)
            .where(Message.direction == "note")
            .order_by(Message.id)
        )
    )


def test_inline_jobs_run_only_after_commit(session, make_ticket, make_user):
    ticket, author = make_ticket(), make_user()
    session.commit()
    enqueue(job_fixtures.add_note, ticket.id, author.id, "from a job")
    assert _notes(session, ticket.id) == []  # not yet: nothing has committed
    session.commit()
    assert _notes(session, ticket.id) == ["from a job"]


def test_a_rollback_discards_enqueued_jobs(session, make_ticket, make_user):
    ticket, author = make_ticket(), make_user()
    session.commit()
    enqueue(job_fixtures.add_note, ticket.id, author.id, "never")
    session.rollback()
    assert pending_jobs() == []
    session.commit()
    assert _notes(session, ticket.id) == []


def test_jobs_enqueued_by_jobs_run_in_order(session, make_ticket, make_user):
    ticket, author = make_ticket(), make_user()
    session.commit()
    enqueue(job_fixtures.add_note_then_chain, ticket.id, author.id, "first")
    session.commit()
    assert _notes(session, ticket.id) == ["first", "first (chained)"]


def test_jobs_take_ids_not_objects(session, make_ticket, make_user):
    ticket, author = make_ticket(), make_user()
    with pytest.raises(TypeError, match="takes ids and plain values"):
        enqueue(job_fixtures.add_note, ticket, author.id, "x")


def test_only_declared_jobs_can_be_enqueued(session):
    def not_a_job():
        pass

    with pytest.raises(TypeError, match="not declared with @job"):
        enqueue(not_a_job)
    with pytest.raises(ValueError, match="unknown queue"):
        job("nonsense")


def test_a_failing_inline_job_is_recorded_and_its_work_rolled_back(session, make_user, app):
    user = make_user(name="Unchanged")
    session.commit()
    app.config["HELPDESK_JOBS_RAISE"] = False
    try:
        enqueue(job_fixtures.always_fails, user.id)
        session.commit()
    finally:
        app.config["HELPDESK_JOBS_RAISE"] = True
    session.expire_all()
    assert session.get(User, user.id).name == "Unchanged"
    failure = session.scalars(sa.select(JobFailure)).one()
    assert failure.job == "tests.job_fixtures:always_fails"
    assert failure.args == [user.id]
    assert "this job always fails" in failure.error


@pytest.fixture
def redis_queue(app):
    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    app.config["HELPDESK_REDIS_URL"] = REDIS_URL
    app.extensions.pop("helpdesk_redis", None)
    yield connection
    app.config["HELPDESK_REDIS_URL"] = None
    app.extensions.pop("helpdesk_redis", None)
    connection.flushdb()


def test_with_redis_jobs_reach_rq_only_after_commit(
    session, make_ticket, make_user, redis_queue, app
):
    ticket, author = make_ticket(), make_user()
    session.commit()
    queue = Queue("default", connection=redis_queue)
    enqueue(job_fixtures.add_note, ticket.id, author.id, "via rq")
    assert queue.count == 0
    session.commit()
    assert queue.count == 1
    assert _notes(session, ticket.id) == []  # queued, not run inline

    set_worker_app(app)
    SimpleWorker([queue], connection=redis_queue).work(burst=True)
    session.expire_all()
    assert _notes(session, ticket.id) == ["via rq"]


def test_with_redis_a_rollback_queues_nothing(session, make_ticket, make_user, redis_queue):
    ticket, author = make_ticket(), make_user()
    session.commit()
    enqueue(job_fixtures.add_note, ticket.id, author.id, "never")
    session.rollback()
    session.commit()
    assert all(Queue(q, connection=redis_queue).count == 0 for q in QUEUES)


def _worker(app, *queues: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("helpdesk")), "worker", "--burst", *queues],
        env=helpdesk_env(app, HELPDESK_REDIS_URL=REDIS_URL),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_helpdesk_worker_runs_jobs_and_records_final_failures(committed_app):
    from helpdesk import committees, tickets
    from helpdesk.agents import create_agent

    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    committed_app.config["HELPDESK_REDIS_URL"] = REDIS_URL
    with committed_app.app_context():
        committee = committees.add_committee("info", "Info", triage=True)
        author = create_agent("worker@conference.test", "Worker")
        ticket = tickets.create_ticket(committee.id, "Worker test")
        db.session.commit()
        enqueue(job_fixtures.add_note, ticket.id, author.id, "done by a worker")
        enqueue(job_fixtures.always_fails, author.id)
        db.session.commit()
        ticket_id, author_id = ticket.id, author.id

    result = _worker(committed_app, "default")
    assert result.returncode == 0, result.stderr

    with committed_app.app_context():
        notes = db.session.scalars(sa.select(Message.text).where(Message.ticket_id == ticket_id))
        assert list(notes) == ["done by a worker"]
        failure = db.session.scalars(sa.select(JobFailure)).one()
        assert failure.job == "tests.job_fixtures:always_fails"
        assert failure.attempts == 3  # the first try and two retries
        assert db.session.get(User, author_id).name == "Worker"
    connection.flushdb()


def test_helpdesk_worker_refuses_unknown_queues(committed_app):
    result = _worker(committed_app, "emails")
    assert result.returncode == 2
    assert "unknown queue(s) emails" in result.stderr


def test_periodic_jobs_are_queued_once_per_period_whoever_asks(redis_queue):
    from helpdesk.jobs import enqueue_due_periodic

    assert enqueue_due_periodic(redis_queue, 600.0) >= 1
    # Within the shortest period (the campaign sweeper's 10 s): everything already queued.
    assert enqueue_due_periodic(redis_queue, 605.0) == 0
    assert enqueue_due_periodic(redis_queue, 661.0) >= 1  # the next minute
    queued = Queue("mail-transactional", connection=redis_queue).job_ids
    assert sum("transactional_maintain" in job_id for job_id in queued) == 2
