"""How the private Dovecot test server is installed and configured (see dovecot.py)."""

from __future__ import annotations

import os
import pwd
import select
import shutil
import socket
import subprocess
from pathlib import Path

HOST = "127.0.0.1"
PLAIN_HOST = "127.0.0.2"
# Capabilities of the PLAIN_HOST listener: what an old server without IDLE or MOVE offers.
PLAIN_CAPABILITIES = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS NAMESPACE"

CONFIG = """\
instance_name = helpdesk-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = {host}, {plain_host}
ssl = yes
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
default_internal_user = dovecot
default_login_user = dovenull
mailbox_idle_check_interval = 1 secs
mail_max_userip_connections = 200
auth_failure_delay = 0
namespace inbox {{
  inbox = yes
  separator = /
}}
# Tests fail logins on purpose; Dovecot's per-IP penalty would slow every later login
# from 127.0.0.1 by up to 15 s. An unusable anvil-auth-penalty socket turns it off.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
  process_min_avail = 1
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
{oauth2_passdb}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u
}}
local {plain_host} {{
  protocol imap {{
    imap_capability = {plain_capabilities}
  }}
}}
"""

OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf
}}
"""

OAUTH2_CONFIG = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


class DovecotError(RuntimeError):
    """The test server could not be installed, started or driven."""


def ensure_dovecot_installed() -> None:
    """Install dovecot-imapd (and doveadm) from Debian's packages when missing."""
    if shutil.which("dovecot") and shutil.which("doveadm"):
        return
    if os.geteuid() != 0:
        raise DovecotError("dovecot is not installed and installing it needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "dovecot-imapd"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DovecotError(f"apt-get install dovecot-imapd failed:\n{result.stderr}")
    if not shutil.which("dovecot"):
        raise DovecotError("dovecot is still missing after installing dovecot-imapd")


def free_port(host: str = HOST) -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def render_config(root: Path, port: int, tls_port: int, *, oauth2: bool) -> str:
    """dovecot.conf for an instance living in ``root``."""
    account = pwd.getpwnam("dovecot")
    return CONFIG.format(
        root=root,
        host=HOST,
        plain_host=PLAIN_HOST,
        port=port,
        tls_port=tls_port,
        uid=account.pw_uid,
        gid=account.pw_gid,
        oauth2_passdb=OAUTH2_PASSDB.format(root=root) if oauth2 else "",
        plain_capabilities=PLAIN_CAPABILITIES,
    )


def render_oauth2_config(introspection_url: str) -> str:
    """The oauth2 passdb settings: validate tokens at ``introspection_url``."""
    return OAUTH2_CONFIG.format(url=introspection_url)


def make_certificate(directory: Path) -> None:
    """A self-signed certificate for localhost and both listener addresses."""
    directory.mkdir()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
            "-days", "2", "-subj", "/CN=localhost",
            "-addext", f"subjectAltName=DNS:localhost,IP:{HOST},IP:{PLAIN_HOST}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def wait_for_exit(pid: int, timeout: float) -> None:
    """Block until process ``pid`` has exited (a pidfd becomes readable when it does)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise DovecotError(f"imap process {pid} did not exit within {timeout} s")
    finally:
        os.close(fd)
