"""Background jobs that failed for good, kept so that nothing fails silently."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.database import JSONType, utcnow
from helpdesk.extensions import db


class JobFailure(db.Model):
    """A job that raised on its last attempt."""

    __tablename__ = "job_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(sa.String(255), index=True)
    queue: Mapped[str] = mapped_column(sa.String(64))
    args: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    error: Mapped[str] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=1)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
