"""Settings: strict parsing, clear one-line errors naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpdesk import create_app
from helpdesk.config import ConfigError, Settings, documented_settings, setting_variables

ROOT = Path(__file__).resolve().parents[1]
HELPDESK = Path(sys.executable).with_name("helpdesk")


def test_defaults_need_no_settings_at_all():
    settings = Settings.from_environ({})
    assert settings.env == "development"
    assert settings.mail_backend == "files"
    assert settings.redis_url is None
    assert settings.database_url is None  # the SQLite file in the instance folder


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("HELPDESK_DATABASE_URL", "not a url", "is not a database URL"),
        ("HELPDESK_DATABASE_URL", "mysql://u@h/db", "unsupported database 'mysql'"),
        ("HELPDESK_DATABASE_URL", "postgresql://u@h", "names no database"),
        ("HELPDESK_MAIL_BACKEND", "carrier-pigeon", "is not one of files, smtp, sendgrid"),
        ("HELPDESK_ENV", "staging", "is not one of development, production"),
        ("HELPDESK_REDIS_URL", "http://localhost", "is not a redis://"),
        ("HELPDESK_REDIS_URL", "redis://localhost:99999", "invalid port"),
        ("HELPDESK_BASE_URL", "helpdesk.example.org", "is not an http:// or https:// URL"),
        ("HELPDESK_SECRET_KEY", "short", "at least 32 characters"),
        ("HELPDESK_SESSION_HOURS", "twelve", "is not an integer"),
        ("HELPDESK_UNSUBSCRIBE_ADDRESS", "unsubscribe", "is not a mail address"),
        ("HELPDESK_UNSUBSCRIBE_ADDRESS", "u+x@example.org", "is not a mail address"),
        ("HELPDESK_SESSION_HOURS", "0", "must be greater than zero"),
        ("HELPDESK_LOGIN_RATE", "lots", "is not a rate"),
        ("HELPDESK_SMTP_URL", "ftp://mail.example.org", "does not start with one of"),
        ("HELPDESK_ENCRYPTION_KEY", "not-a-key", "must be Fernet keys"),
        ("HELPDESK_SUBJECT_TAG", "[bad]", "must be 1-40 letters"),
        ("HELPDESK_REOPEN_DAYS", "-3", "must be greater than zero"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_environ({variable: value})
    assert str(info.value).startswith(f"{variable}: ")
    assert message in str(info.value)


def test_database_urls_are_normalised_to_psycopg():
    settings = Settings.from_environ({"HELPDESK_DATABASE_URL": "postgres://u:p@db:5433/helpdesk"})
    assert settings.database_url == "postgresql+psycopg://u:p@db:5433/helpdesk"


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"HELPDESK_ENV": "production"}, "HELPDESK_SECRET_KEY"),
        (
            {"HELPDESK_ENV": "production", "HELPDESK_SECRET_KEY": "s" * 40},
            "HELPDESK_ENCRYPTION_KEY",
        ),
        ({"HELPDESK_MAIL_BACKEND": "smtp"}, "HELPDESK_SMTP_URL"),
        ({"HELPDESK_MAIL_BACKEND": "sendgrid"}, "HELPDESK_SENDGRID_API_KEY"),
    ],
)
def test_settings_that_need_another_setting_say_which(environ, variable):
    with pytest.raises(ConfigError, match=f"^{variable}: is required when"):
        Settings.from_environ(environ)


def test_development_secret_is_generated_once_and_kept(tmp_path):
    first = create_app({"HELPDESK_INSTANCE_PATH": str(tmp_path)})
    second = create_app({"HELPDESK_INSTANCE_PATH": str(tmp_path)})
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_https_base_url_makes_cookies_secure(tmp_path):
    app = create_app(
        {"HELPDESK_INSTANCE_PATH": str(tmp_path), "HELPDESK_BASE_URL": "https://help.example.org"}
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    plain = create_app({"HELPDESK_INSTANCE_PATH": str(tmp_path)})
    assert plain.config["SESSION_COOKIE_SECURE"] is False
    assert plain.config["SESSION_COOKIE_HTTPONLY"] is True
    assert plain.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_the_embedded_default_uses_sqlite_in_the_instance_folder(tmp_path):
    app = create_app({"HELPDESK_INSTANCE_PATH": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'helpdesk.sqlite3'}"
    assert app.config["HELPDESK_OUTBOX_PATH"] == str(tmp_path / "outbox")
    assert app.config["HELPDESK_REDIS_URL"] is None


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for variable, _default, doc in documented_settings():
        assert doc
        assert f"`{variable}`" in readme, f"{variable} missing from the README's table"
    assert len(setting_variables()) == len(documented_settings())


def _run(args, env_overrides, cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update(env_overrides)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HELPDESK_DATABASE_URL", "postgresql//missing-colon"),
        ("HELPDESK_MAIL_BACKEND", "pigeon"),
    ],
)
def test_bad_configuration_stops_the_cli_with_one_line(tmp_path, variable, value):
    result = _run(
        [str(HELPDESK), "committee", "list"],
        {"HELPDESK_INSTANCE_PATH": str(tmp_path), variable: value},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"helpdesk: configuration error: {variable}: ")


def test_bad_configuration_stops_wsgi_with_one_line(tmp_path):
    result = _run(
        [sys.executable, "-c", "import wsgi"],
        {"HELPDESK_INSTANCE_PATH": str(tmp_path), "HELPDESK_MAIL_BACKEND": "pigeon"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "helpdesk: configuration error: HELPDESK_MAIL_BACKEND: 'pigeon' is not one of "
        "files, smtp, sendgrid"
    )
