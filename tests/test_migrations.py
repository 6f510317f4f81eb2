"""Migrations: head matches the models exactly, on PostgreSQL and SQLite, and go down again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from helpdesk import create_app, resource_dir
from helpdesk.extensions import db
from helpdesk.search_index import is_search_object
from tests.conftest import base_config, create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_app(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    else:
        url = create_postgres_database("helpdesk_migrations")
    application = create_app(base_config(tmp_path, url))
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    if request.param == "postgresql":
        drop_postgres_database(url)


def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    return not is_search_object(name)


def _differences(connection) -> list:
    # The full-text index is built by the revision, outside the metadata (migrations/env.py).
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": _include_object}
    )
    return compare_metadata(context, db.metadata)


def test_upgrade_to_head_matches_the_models_and_downgrade_works(empty_app):
    with empty_app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            assert _differences(connection) == []
            tables = set(sa.inspect(connection).get_table_names())
        assert set(db.metadata.tables) <= tables

        downgrade(revision="base")
        with db.engine.connect() as connection:
            assert set(sa.inspect(connection).get_table_names()) <= {"alembic_version"}

        upgrade()  # and back up again from base
        with db.engine.connect() as connection:
            assert _differences(connection) == []


def test_revisions_are_date_prefixed_and_never_import_the_app():
    versions = sorted((resource_dir("migrations") / "versions").glob("*.py"))
    assert versions
    for path in versions:
        assert path.name[:10].replace("-", "").isdigit(), path.name
        source = path.read_text()
        assert "helpdesk" not in source.split('"""', 2)[-1], f"{path.name} imports the app"
        imports = [line for line in source.splitlines() if line.startswith(("import", "from"))]
        assert all(
            line.split()[1].split(".")[0] in ("sqlalchemy", "alembic") for line in imports
        ), imports
