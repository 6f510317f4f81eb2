"""A private Dovecot IMAP server for tests and benchmarks.

``DovecotServer`` installs ``dovecot-imapd`` from Debian's packages when it is missing,
writes a configuration that reads nothing from /etc, and runs its own ``dovecot -F``
process group on free loopback ports. Mail is stored as the package's ``dovecot`` user
in a temporary directory that is removed on stop.

Mail is kept in Dovecot's sdbox format: with maildir, a message saved while a client
enters IDLE is sometimes never announced (about 1 in 15 in a tight loop here), which
would make IDLE tests flaky for reasons that have nothing to do with the client.

Each account gets a twin login (``<name>.ops``) on the same mail store. The helpers here
(APPEND, flags, folders) use that twin, so ``kick(name)`` cuts the client under test
without touching the connection a test uses to drive the server.

Two listeners are offered on the same port number:

- ``host`` (127.0.0.1): the full Dovecot capability list, with IDLE and MOVE;
- ``plain_host`` (127.0.0.2): a capability list without IDLE and MOVE, so clients can be
  tested against a server that forces them to poll and to COPY + EXPUNGE.

Use it as a context manager outside pytest, or through the ``dovecot`` fixture::

    with DovecotServer() as server:
        server.add_user("alice", "secret")
        server.append("alice", b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient

HOST = "127.0.0.1"
PLAIN_HOST = "127.0.0.2"
OPS_SUFFIX = ".ops"
OPS_PASSWORD = "ops-password"
# Capabilities of the PLAIN_HOST listener: what an old server without IDLE or MOVE offers.
PLAIN_CAPABILITIES = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS NAMESPACE"
START_TIMEOUT = 15.0
_APPENDUID = re.compile(rb"APPENDUID (\d+) (\d+)")

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
mail_location = sdbox:{root}/mail/%u
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


class DovecotServer:
    """A private Dovecot instance; start() and stop() it, or use it as a context manager."""

    def __init__(self, *, oauth2_introspection_url: str | None = None) -> None:
        self.host = HOST
        self.plain_host = PLAIN_HOST
        self.port = 0
        self.tls_port = 0
        self.oauth2_introspection_url = oauth2_introspection_url
        self.root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def config_path(self) -> Path:
        """The dovecot.conf of this instance."""
        assert self.root is not None, "server was never started"
        return self.root / "dovecot.conf"

    @property
    def ca_file(self) -> str:
        """The self-signed certificate the TLS listeners present (trust it as a CA)."""
        assert self.root is not None, "server was never started"
        return str(self.root / "tls" / "cert.pem")

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (writing its configuration first) and wait for its greeting."""
        if self.running:
            return
        ensure_dovecot_installed()
        if self.root is None:
            self._prepare()
        assert self.root is not None
        log = self.root / "dovecot.log"
        for _attempt in range(3):
            self._process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.config_path)],
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                self._wait_for_greeting()
                return
            except DovecotError:
                self._kill()
                text = log.read_text(errors="replace") if log.exists() else ""
                if "Address already in use" not in text:
                    raise
                # Another process took a port between free_port() and bind: pick again.
                self._write_config(free_port(), free_port())
        raise DovecotError("could not find free ports for dovecot")

    def stop(self) -> None:
        """Stop the server but keep its mail, so start() brings the same accounts back."""
        self._kill()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self._kill()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def _prepare(self) -> None:
        # mkdtemp makes a 0700 directory; the dovecot user must be able to traverse it.
        self.root = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
        self.root.chmod(0o711)
        account = pwd.getpwnam("dovecot")
        mail = self.root / "mail"
        mail.mkdir()
        os.chown(mail, account.pw_uid, account.pw_gid)
        # One passwd-file per account: Dovecot re-reads a changed file at most once a
        # second, but opens a file it has not seen before at once.
        (self.root / "users").mkdir(mode=0o755)
        self._make_certificate(self.root / "tls")
        if self.oauth2_introspection_url:
            config = OAUTH2_CONFIG.format(url=self.oauth2_introspection_url)
            (self.root / "oauth2.conf").write_text(config)
            (self.root / "oauth2.conf").chmod(0o644)
        self._write_config(free_port(), free_port())

    def _write_config(self, port: int, tls_port: int) -> None:
        assert self.root is not None
        self.port, self.tls_port = port, tls_port
        account = pwd.getpwnam("dovecot")
        oauth2 = OAUTH2_PASSDB.format(root=self.root) if self.oauth2_introspection_url else ""
        self.config_path.write_text(
            CONFIG.format(
                root=self.root,
                host=self.host,
                plain_host=self.plain_host,
                port=port,
                tls_port=tls_port,
                uid=account.pw_uid,
                gid=account.pw_gid,
                oauth2_passdb=oauth2,
                plain_capabilities=PLAIN_CAPABILITIES,
            )
        )

    @staticmethod
    def _make_certificate(directory: Path) -> None:
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

    def _wait_for_greeting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last_error: OSError | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
                raise DovecotError(f"dovecot exited with {self._process.returncode}: {stderr}")
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    if sock.recv(200).startswith(b"* OK"):
                        return
            except OSError as error:
                last_error = error
            # Nothing to wait on but the listener appearing; poll it briefly.
            time.sleep(0.02)
        raise DovecotError(f"dovecot did not greet on port {self.port}: {last_error}")

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Dovecot's children (imap, auth, log) share the group; make sure none outlives it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.stderr is not None:
            process.stderr.close()

    # -- accounts ------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Create an account ``name`` and its ``name.ops`` twin on the same mail store."""
        assert self.root is not None, "server was never started"
        if not re.fullmatch(r"[A-Za-z0-9_.@-]+", name) or name.endswith(OPS_SUFFIX):
            raise ValueError(f"unusable user name {name!r}")
        if ":" in password or "\n" in password:
            raise ValueError("passwords may not contain ':' or newlines")
        mail = self.root / "mail" / name
        twin = f"{name}{OPS_SUFFIX}"
        self._write_user(name, f"{name}:{{PLAIN}}{password}::::::\n")
        self._write_user(twin, f"{twin}:{{PLAIN}}{OPS_PASSWORD}::::::userdb_mail=sdbox:{mail}\n")

    def _write_user(self, name: str, line: str) -> None:
        assert self.root is not None
        path = self.root / "users" / name
        if path.exists():
            raise ValueError(f"user {name!r} exists already")
        path.write_text(line)
        path.chmod(0o644)

    def connections(self, name: str) -> list[int]:
        """Process ids of the imap sessions ``name`` has open right now."""
        result = self._doveadm("who", "-1", name)
        pids = []
        for line in result.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
                pids.append(int(fields[2]))
        return pids

    def kick(self, name: str) -> None:
        """Cut every connection of ``name`` from the server side (doveadm kick).

        Returns once the sessions' processes have exited, so the client's next command
        is sure to find its connection gone.
        """
        pids = self.connections(name)
        self._doveadm("kick", name, allowed=(0, 68))  # 68: no connection to kick
        for pid in pids:
            _wait_for_exit(pid, timeout=10)

    def _doveadm(self, *args: str, allowed: tuple[int, ...] = (0,)) -> str:
        result = subprocess.run(
            ["doveadm", "-c", str(self.config_path), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in allowed:
            raise DovecotError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # -- driving a mailbox through the twin login ----------------------------------------

    @contextlib.contextmanager
    def client(self, name: str) -> Iterator[IMAPClient]:
        """An IMAP connection logged in as ``name``'s twin (not affected by kick(name))."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        try:
            client.login(name + OPS_SUFFIX, OPS_PASSWORD)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(
        self, name: str, raw: bytes, folder: str = "INBOX", flags: Iterable[str] = ()
    ) -> int:
        """APPEND ``raw`` to ``name``'s ``folder``; returns the new message's UID."""
        return self.append_many(name, [raw], folder, flags)[0]

    def append_many(
        self, name: str, raws: Iterable[bytes], folder: str = "INBOX", flags: Iterable[str] = ()
    ) -> list[int]:
        """APPEND each of ``raws`` over one connection; returns their UIDs in order."""
        uids = []
        flag_list = tuple(flags)
        with self.client(name) as client:
            for raw in raws:
                response = client.append(folder, raw, flags=flag_list)
                match = _APPENDUID.search(response)
                if not match:
                    raise DovecotError(f"APPEND gave no APPENDUID: {response!r}")
                uids.append(int(match.group(2)))
        return uids

    def flags(self, name: str, uid: int, folder: str = "INBOX") -> set[str]:
        """The flags of message ``uid`` in ``folder``."""
        with self.client(name) as client:
            client.select_folder(folder, readonly=True)
            found = client.get_flags([uid])
        if uid not in found:
            raise DovecotError(f"no message {uid} in {name}'s {folder}")
        return {flag.decode() for flag in found[uid]}

    def set_flags(self, name: str, uids: Iterable[int], flags: Iterable[str], folder="INBOX"):
        """Add ``flags`` to messages ``uids`` as another client would."""
        with self.client(name) as client:
            client.select_folder(folder)
            client.add_flags(list(uids), list(flags))

    def clear_flags(self, name: str, uids: Iterable[int], flags: Iterable[str], folder="INBOX"):
        """Remove ``flags`` from messages ``uids`` as another client would."""
        with self.client(name) as client:
            client.select_folder(folder)
            client.remove_flags(list(uids), list(flags))

    def uids(self, name: str, folder: str = "INBOX") -> list[int]:
        """UIDs of the messages in ``folder``, ascending."""
        with self.client(name) as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def uidvalidity(self, name: str, folder: str = "INBOX") -> int:
        """The folder's UIDVALIDITY."""
        with self.client(name) as client:
            return client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"]

    def create_folder(self, name: str, folder: str) -> None:
        """Create ``folder`` in ``name``'s account."""
        with self.client(name) as client:
            client.create_folder(folder)

    def delete_folder(self, name: str, folder: str) -> None:
        """Delete ``folder`` (with its mail) from ``name``'s account."""
        with self.client(name) as client:
            client.delete_folder(folder)

    def folders(self, name: str) -> list[str]:
        """Names of ``name``'s folders."""
        with self.client(name) as client:
            return sorted(folder for _flags, _sep, folder in client.list_folders())

    def log(self) -> str:
        """The server's log so far (for failure messages)."""
        assert self.root is not None, "server was never started"
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_for_exit(pid: int, timeout: float) -> None:
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


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One private Dovecot server for the whole test session."""
    with DovecotServer() as server:
        yield server
