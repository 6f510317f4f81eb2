"""Mail settings and get_backend: parsing, defaults and clear errors."""

from __future__ import annotations

import pytest

from helpdesk import create_app
from helpdesk.config import ConfigError, Settings, documented_settings
from helpdesk.outbound.backends import get_backend
from helpdesk.outbound.backends.files import FilesBackend
from helpdesk.outbound.backends.sendgrid import SendGridBackend
from helpdesk.outbound.backends.smtp import SmtpBackend
from tests.support.sendgrid_server import WEBHOOK_PUBLIC_KEY


def test_mail_rate_uses_the_limits_notation():
    settings = Settings.from_environ({"HELPDESK_MAIL_RATE": "50/second;100000/hour"})
    assert settings.mail_rate == "50/second;100000/hour"
    assert Settings.from_environ({}).mail_rate is None
    with pytest.raises(ConfigError, match="HELPDESK_MAIL_RATE"):
        Settings.from_environ({"HELPDESK_MAIL_RATE": "fast please"})


def test_webhook_public_key_is_checked_at_start_up():
    settings = Settings.from_environ({"HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY": WEBHOOK_PUBLIC_KEY})
    assert settings.sendgrid_webhook_public_key == WEBHOOK_PUBLIC_KEY
    with pytest.raises(ConfigError, match="HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY: is not base64"):
        Settings.from_environ({"HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY": "copy-paste error"})


def test_timeout_and_tolerance_must_be_positive():
    with pytest.raises(ConfigError, match="HELPDESK_MAIL_TIMEOUT"):
        Settings.from_environ({"HELPDESK_MAIL_TIMEOUT": "0"})
    with pytest.raises(ConfigError, match="HELPDESK_SENDGRID_WEBHOOK_TOLERANCE"):
        Settings.from_environ({"HELPDESK_SENDGRID_WEBHOOK_TOLERANCE": "soon"})


def test_new_settings_are_documented():
    documented = {variable for variable, _, doc in documented_settings() if doc}
    assert {
        "HELPDESK_MAIL_RATE",
        "HELPDESK_MAIL_TIMEOUT",
        "HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY",
        "HELPDESK_SENDGRID_WEBHOOK_TOLERANCE",
    } <= documented


def test_get_backend_builds_each_backend_from_app_config(tmp_path):
    files = get_backend({"HELPDESK_MAIL_BACKEND": "files", "HELPDESK_OUTBOX_PATH": str(tmp_path)})
    assert isinstance(files, FilesBackend)
    assert files.outbox == tmp_path
    smtp = get_backend(
        {
            "HELPDESK_MAIL_BACKEND": "smtp",
            "HELPDESK_SMTP_URL": "smtps://u:p@relay.example",
            "HELPDESK_MAIL_TIMEOUT": 7,
        }
    )
    assert isinstance(smtp, SmtpBackend)
    assert (smtp.server.port, smtp.server.security, smtp.timeout) == (465, "tls", 7.0)
    sendgrid = get_backend(
        {
            "HELPDESK_MAIL_BACKEND": "sendgrid",
            "HELPDESK_SENDGRID_API_KEY": "SG.key",
            "HELPDESK_SENDGRID_HOST": "http://127.0.0.1:9/",
        }
    )
    assert isinstance(sendgrid, SendGridBackend)
    assert sendgrid.client.host == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("config", "variable"),
    [
        ({"HELPDESK_MAIL_BACKEND": "smtp"}, "HELPDESK_SMTP_URL"),
        ({"HELPDESK_MAIL_BACKEND": "sendgrid"}, "HELPDESK_SENDGRID_API_KEY"),
        ({"HELPDESK_MAIL_BACKEND": "pigeon"}, "HELPDESK_MAIL_BACKEND"),
    ],
)
def test_get_backend_names_the_missing_setting(config, variable):
    with pytest.raises(ConfigError, match=variable):
        get_backend(config)


def test_the_app_config_carries_every_mail_setting(tmp_path):
    app = create_app(
        {
            "HELPDESK_INSTANCE_PATH": str(tmp_path),
            "HELPDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "HELPDESK_MAIL_BACKEND": "sendgrid",
            "HELPDESK_SENDGRID_API_KEY": "SG.key",
            "HELPDESK_MAIL_RATE": "10/second",
            "HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY": WEBHOOK_PUBLIC_KEY,
        }
    )
    assert app.config["HELPDESK_MAIL_RATE"] == "10/second"
    assert app.config["HELPDESK_MAIL_TIMEOUT"] == 30
    assert app.config["HELPDESK_SENDGRID_WEBHOOK_TOLERANCE"] == 600
    assert app.config["HELPDESK_SENDGRID_WEBHOOK_PUBLIC_KEY"] == WEBHOOK_PUBLIC_KEY
    assert app.config["HELPDESK_SENDGRID_HOST"] == "https://api.sendgrid.com"
    assert isinstance(get_backend(app.config), SendGridBackend)
