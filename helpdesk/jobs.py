"""The queue facade: background work as plain functions taking ids.

A job is a module-level function decorated with :func:`job`, which declares its queue,
timeout and retry policy where the function is defined. :func:`enqueue` records the
call on the current database session; nothing is queued until that session commits,
so a job never runs against rows that were rolled back or are not yet visible.

With ``HELPDESK_REDIS_URL`` set, committed jobs are pushed to RQ queues and run by
``helpdesk worker``. Without it (the embedded default) they run inline, in order,
right after the commit that released them, each in its own transaction.

Jobs must be idempotent: RQ retries them, and the domain's sweepers re-enqueue work
whose rows say it is still due.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app

from helpdesk.database import Session
from helpdesk.extensions import db

log = logging.getLogger(__name__)

# Queues in the order a worker listening on all of them serves them.
QUEUES = ("mail-transactional", "inbound", "default", "mail-bulk")

_PENDING = "helpdesk.jobs.pending"  # enqueued in the open transaction
_READY = "helpdesk.jobs.ready"  # committed, waiting to run inline
_DRAINING = "helpdesk.jobs.draining"

P = ParamSpec("P")
R = TypeVar("R")

_ALLOWED_ARG_TYPES = (int, str, float, bool, type(None))


@dataclass(frozen=True)
class JobOptions:
    """Where and how a job runs."""

    queue: str
    timeout: int
    retries: int
    retry_intervals: tuple[int, ...]


@dataclass(frozen=True)
class PendingJob:
    """A job call waiting for its transaction to commit."""

    name: str
    args: tuple[Any, ...]
    options: JobOptions
    job_id: str | None


def init_app(app: Flask) -> None:
    """With Redis configured, import RQ now rather than in the first request that queues."""
    if app.config.get("HELPDESK_REDIS_URL"):
        import rq  # noqa: F401 - a sixth of a second, once per process


def job(
    queue: str = "default",
    *,
    timeout: int = 300,
    retries: int = 3,
    retry_intervals: tuple[int, ...] = (10, 60, 300),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a function as a job on ``queue`` with its timeout and retry policy."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; queues are {', '.join(QUEUES)}")

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if "<locals>" in fn.__qualname__:
            raise TypeError(f"job {fn.__qualname__} must be a module-level function")
        fn.job_options = JobOptions(queue, timeout, retries, tuple(retry_intervals))  # type: ignore[attr-defined]
        return fn

    return decorate


# Jobs to run every so many seconds, registered with @periodic where they are defined.
_PERIODIC: dict[str, tuple[Callable[..., Any], int]] = {}
# Modules that define periodic jobs; the worker imports them to find their jobs.
PERIODIC_MODULES = ("helpdesk.outbound.transactional", "helpdesk.outbound.bulk")


def periodic(every_seconds: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run a job (taking no arguments) every ``every_seconds`` while workers run."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if not hasattr(fn, "job_options"):
            raise TypeError(f"{fn.__qualname__}: put @periodic above @job")
        _PERIODIC[job_name(fn)] = (fn, every_seconds)
        return fn

    return decorate


def enqueue_due_periodic(connection: Any, now: float) -> int:
    """Queue each periodic job for the current period once, whichever worker asks first.

    The job id names the period, so every worker may call this: the second and later
    attempts for a period find the job already there.
    """
    from rq import Queue
    from rq.exceptions import DuplicateJobError

    for module in PERIODIC_MODULES:
        importlib.import_module(module)
    queued = 0
    for name, (fn, every) in _PERIODIC.items():
        options: JobOptions = fn.job_options  # type: ignore[attr-defined]
        try:
            Queue(options.queue, connection=connection).enqueue_call(
                execute,
                args=(name,),
                timeout=options.timeout,
                job_id=_periodic_id(name, int(now // every)),
                unique=True,
                result_ttl=max(every * 2, 600),
                failure_ttl=24 * 3600,
                description=f"{name} (every {every} s)",
            )
            queued += 1
        except DuplicateJobError:
            continue
    return queued


def _periodic_id(name: str, period: int) -> str:
    # RQ allows letters, digits, underscores and dashes in job ids.
    return "periodic-" + re.sub(r"[^A-Za-z0-9_]", "_", name) + f"-{period}"


def job_name(fn: Callable[..., Any]) -> str:
    """The importable name of a job function, ``module:function``."""
    return f"{fn.__module__}:{fn.__qualname__}"


def resolve(name: str) -> Callable[..., Any]:
    """The job function called ``module:function``; refuses anything not declared a job."""
    module_name, _, attr = name.partition(":")
    fn = getattr(importlib.import_module(module_name), attr)
    if not hasattr(fn, "job_options"):
        raise TypeError(f"{name} is not a job")
    return fn


def _check_args(name: str, args: tuple[Any, ...]) -> None:
    def ok(value: Any) -> bool:
        if isinstance(value, _ALLOWED_ARG_TYPES):
            return True
        if isinstance(value, list | tuple):
            return all(ok(v) for v in value)
        if isinstance(value, dict):
            return all(isinstance(k, str) and ok(v) for k, v in value.items())
        return False

    for arg in args:
        if not ok(arg):
            raise TypeError(
                f"job {name} takes ids and plain values, not {type(arg).__name__}; "
                "pass the object's id and load it in the job"
            )


def enqueue(fn: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
    """Queue ``fn(*args)`` to run once the current transaction commits.

    ``job_id`` makes the call idempotent on RQ: a second enqueue with the same id while
    the first is still known to Redis is dropped there.
    """
    options: JobOptions | None = getattr(fn, "job_options", None)
    if options is None:
        raise TypeError(f"{fn!r} is not declared with @job")
    name = job_name(fn)
    _check_args(name, args)
    session = db.session()
    session.info.setdefault(_PENDING, []).append(PendingJob(name, tuple(args), options, job_id))


def pending_jobs() -> list[PendingJob]:
    """Jobs enqueued in the current, uncommitted transaction (for tests and debugging)."""
    return list(db.session().info.get(_PENDING, []))


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending: list[PendingJob] = session.info.pop(_PENDING, [])
    if not pending:
        return
    if current_app.config.get("HELPDESK_REDIS_URL"):
        _push_to_rq(pending)
    else:
        session.info.setdefault(_READY, []).extend(pending)


@sa.event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def _push_to_rq(pending: list[PendingJob]) -> None:
    from rq import Callback, Queue, Retry

    connection = redis_connection()
    try:
        with connection.pipeline() as pipe:
            for p in pending:
                Queue(p.options.queue, connection=connection).enqueue_call(
                    execute,
                    args=(p.name, *p.args),
                    timeout=p.options.timeout,
                    retry=Retry(max=p.options.retries, interval=list(p.options.retry_intervals))
                    if p.options.retries
                    else None,
                    on_failure=Callback(record_final_failure),
                    job_id=p.job_id,
                    description=f"{p.name}{p.args!r}",
                    failure_ttl=14 * 24 * 3600,
                    result_ttl=3600,
                    pipeline=pipe,
                )
            pipe.execute()
    except Exception:
        # The transaction has committed; raising would make callers retry work that is
        # done. The rows stay due, and the domain sweepers enqueue them again.
        log.exception("could not queue %d job(s) on Redis: %s", len(pending), pending)


def run_committed_inline_jobs(session: Session) -> None:
    """Run, in order, the inline jobs released by the commit that just finished."""
    ready: list[PendingJob] | None = session.info.get(_READY)
    if not ready or session.info.get(_DRAINING):
        return
    session.info[_DRAINING] = True
    try:
        while ready:
            _run_inline(session, ready.pop(0))
    finally:
        session.info[_DRAINING] = False


def _run_inline(session: Session, pending: PendingJob) -> None:
    try:
        resolve(pending.name)(*pending.args)
        session.commit()
    except Exception as exc:
        session.rollback()
        log.exception("job %s%r failed", pending.name, pending.args)
        _record_failure(session, pending.name, pending.options.queue, pending.args, exc, 1)
        if current_app.config.get("HELPDESK_JOBS_RAISE"):
            raise


def _record_failure(
    session: Session,
    name: str,
    queue: str,
    args: tuple[Any, ...],
    exc: BaseException,
    attempts: int,
) -> None:
    from helpdesk.models import JobFailure

    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    session.add(JobFailure(job=name, queue=queue, args=list(args), error=error, attempts=attempts))
    session.commit()


# -- running on RQ -------------------------------------------------------------------------

_worker_app: Flask | None = None
_worker_pid: int | None = None


def set_worker_app(app: Flask) -> None:
    """Use ``app`` for jobs run in this process (``helpdesk worker`` sets it before forking)."""
    global _worker_app, _worker_pid
    _worker_app, _worker_pid = app, os.getpid()


def _app_for_job() -> Flask:
    global _worker_app, _worker_pid
    if _worker_app is None:
        from helpdesk import create_app

        set_worker_app(create_app())
    assert _worker_app is not None
    if _worker_pid != os.getpid():
        # A forked work horse must not share the parent's pooled database connections.
        with _worker_app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
        _worker_pid = os.getpid()
    return _worker_app


def execute(name: str, *args: Any) -> Any:
    """Entry point RQ calls: run job ``name`` in a fresh app context and commit its work."""
    with _app_for_job().app_context():
        return _execute_in_context(name, args)


def _execute_in_context(name: str, args: tuple[Any, ...]) -> Any:
    try:
        result = resolve(name)(*args)
        db.session.commit()
        return result
    except BaseException:
        db.session.rollback()
        raise
    finally:
        db.session.remove()


def record_final_failure(job: Any, connection: Any, exc_type: Any, exc: Any, tb: Any) -> None:
    """RQ failure callback: keep a JobFailure row once no retry is left."""
    if job.retries_left:
        return
    name, *args = job.args
    attempts = 1 + resolve(name).job_options.retries
    with _app_for_job().app_context():
        _record_failure(db.session(), name, job.origin, tuple(args), exc, attempts)
        db.session.remove()


# -- connections ------------------------------------------------------------------------


def redis_connection():
    """The app's Redis client (created on first use, one per process and app)."""
    from redis import Redis

    url = current_app.config.get("HELPDESK_REDIS_URL")
    if not url:
        raise RuntimeError("HELPDESK_REDIS_URL is not set")
    state = current_app.extensions.setdefault("helpdesk_redis", {})
    pid = os.getpid()
    if state.get("pid") != pid:
        state["client"] = Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
        state["pid"] = pid
    return state["client"]
