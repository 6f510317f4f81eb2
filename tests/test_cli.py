"""The operators' commands: names and options are kept stable for their scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

from helpdesk.models import ApiToken, AuditEvent, Committee, Membership, Subscription, Ticket, User

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def invoke(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input, catch_exceptions=False)


def test_committee_add_with_addresses_visibility_and_triage(app, session):
    result = invoke(
        app,
        "committee", "add", "program",
        "--name", "Program committee",
        "--address", "program@pycon.test",
        "--address", "talks@pycon.test",
        "--visibility", "members",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    invoke(app, "committee", "add", "info", "--name", "Info", "--triage")
    program = session.scalars(sa.select(Committee).where(Committee.slug == "program")).one()
    assert program.address_list == ["program@pycon.test", "talks@pycon.test"]
    assert program.visibility == "members"
    assert session.scalars(sa.select(Committee.slug).where(Committee.is_triage)).all() == ["info"]
    listing = invoke(app, "committee", "list").output
    assert "info\topen triage\tInfo" in listing
    assert "program\tmembers\tProgram committee\tprogram@pycon.test, talks@pycon.test" in listing


def test_committee_add_reports_errors_without_a_traceback(app, session):
    invoke(app, "committee", "add", "grants", "--name", "Grants")
    again = invoke(app, "committee", "add", "grants", "--name", "Grants")
    assert again.exit_code == 1
    assert "a committee 'grants' exists already" in again.output
    bad = invoke(app, "committee", "add", "x", "--name", "X", "--visibility", "secret")
    assert bad.exit_code == 2
    assert "'secret' is not one of" in bad.output


def test_create_agent_with_memberships_and_password_from_stdin(app, session):
    invoke(app, "committee", "add", "diversity", "--name", "Diversity", "--visibility", "private")
    invoke(app, "committee", "add", "info", "--name", "Info")
    result = invoke(
        app,
        "create-agent", "Dana@Conference.test",
        "--name", "Dana",
        "--committee", "diversity:lead",
        "--committee", "info",
        "--password-stdin",
        input="a password from a pipe\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "password:" not in result.output
    user = session.scalars(sa.select(User).where(User.email == "dana@conference.test")).one()
    roles = {
        m.committee.slug: m.role.value
        for m in session.scalars(sa.select(Membership).where(Membership.user_id == user.id))
    }
    assert roles == {"diversity": "lead", "info": "member"}
    from helpdesk.agents import authenticate

    assert authenticate("dana@conference.test", "a password from a pipe") is not None
    audited = session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.subject_user_id == user.id)
    ).all()
    assert audited.count("membership.added") == 2


def test_create_agent_generates_and_prints_a_password(app, session):
    result = invoke(app, "create-agent", "eve@conference.test", "--name", "Eve", "--admin")
    password = result.output.split("password: ")[1].strip()
    from helpdesk.agents import authenticate

    user = authenticate("eve@conference.test", password)
    assert user is not None
    assert user.is_admin


def test_create_agent_rejects_a_bad_membership(app, session):
    result = invoke(app, "create-agent", "x@conference.test", "--name", "X", "--committee", "nope")
    assert result.exit_code == 1
    assert "no committee 'nope'" in result.output
    assert session.scalar(sa.select(User).where(User.email == "x@conference.test")) is None


def test_api_token_prints_a_working_token_stored_hashed(app, session, client):
    invoke(app, "create-agent", "api@conference.test", "--name", "API")
    token = invoke(app, "api-token", "api@conference.test").output.strip()
    assert token.startswith("hd_")
    row = session.scalars(sa.select(ApiToken)).one()
    assert token not in (row.token_hash, row.prefix)
    response = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    unknown = invoke(app, "api-token", "nobody@conference.test")
    assert unknown.exit_code == 1


def test_demo_creates_the_conference_and_can_run_twice(app, session):
    first = invoke(app, "demo")
    assert first.exit_code == 0, first.output
    second = invoke(app, "demo")
    assert second.exit_code == 0
    slugs = set(session.scalars(sa.select(Committee.slug)))
    assert {
        "info",
        "program",
        "grants",
        "diversity",
        "steering",
        "sponsoring",
        "volunteers",
    } <= slugs
    private = session.scalars(
        sa.select(Committee.slug).where(Committee.visibility == "private")
    ).all()
    assert set(private) == {"diversity", "steering"}
    assert session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 7  # not doubled
    assert "attendee-news" in first.output
    assert session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 3

    # The printed credentials of the second run log in.
    from helpdesk.agents import authenticate

    for line in second.output.splitlines():
        if "password:" in line:
            email, _, rest = line.strip().partition(" ")
            password = rest.split("password:")[1].split()[0]
            assert authenticate(email, password) is not None, email


def _env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env["HELPDESK_INSTANCE_PATH"] = str(tmp_path)
    return env


def test_helpdesk_is_the_flask_cli_of_wsgi(tmp_path):
    env = _env(tmp_path)
    run = dict(cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    subprocess.run([str(BIN / "helpdesk"), "init-db"], **run)
    subprocess.run(
        [str(BIN / "helpdesk"), "committee", "add", "info", "--name", "Info", "--triage"], **run
    )
    ours = subprocess.run([str(BIN / "helpdesk"), "committee", "list"], **run).stdout
    flasks = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "committee", "list"], **run
    ).stdout
    assert ours == flasks == "info\topen triage\tInfo\t\n"


def test_demo_refuses_production(tmp_path):
    env = _env(tmp_path)
    env.update(
        HELPDESK_ENV="production",
        HELPDESK_SECRET_KEY="p" * 40,
        HELPDESK_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    result = subprocess.run(
        [str(BIN / "helpdesk"), "demo"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "refusing to create demo data" in result.stderr
