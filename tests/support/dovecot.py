"""A private Dovecot IMAP server for tests and benchmarks.

``DovecotServer`` installs ``dovecot-imapd`` from Debian's packages when it is missing,
writes a configuration that reads nothing from /etc, and runs its own ``dovecot -F``
process group on free loopback ports. Mail is stored as the package's ``dovecot`` user
in a temporary directory that is removed on stop.

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

from tests.support.dovecot_setup import (
    HOST,
    PLAIN_HOST,
    DovecotError,
    ensure_dovecot_installed,
    free_port,
    make_certificate,
    render_config,
    render_oauth2_config,
    wait_for_exit,
)
from tests.support.oauth2_server import OAuth2Server, oauth2_server

__all__ = ["DovecotError", "DovecotServer", "dovecot", "free_port", "oauth2_server"]

OPS_SUFFIX = ".ops"
OPS_PASSWORD = "ops-password"
START_TIMEOUT = 15.0
_APPENDUID = re.compile(rb"APPENDUID (\d+) (\d+)")


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
        make_certificate(self.root / "tls")
        if self.oauth2_introspection_url:
            config = render_oauth2_config(self.oauth2_introspection_url)
            (self.root / "oauth2.conf").write_text(config)
            (self.root / "oauth2.conf").chmod(0o644)
        self._write_config(free_port(), free_port())

    def _write_config(self, port: int, tls_port: int) -> None:
        assert self.root is not None
        self.port, self.tls_port = port, tls_port
        oauth2 = bool(self.oauth2_introspection_url)
        self.config_path.write_text(render_config(self.root, port, tls_port, oauth2=oauth2))

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
        self._write_user(twin, f"{twin}:{{PLAIN}}{OPS_PASSWORD}::::::userdb_mail=maildir:{mail}\n")

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
            wait_for_exit(pid, timeout=10)

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


@pytest.fixture(scope="session")
def dovecot(oauth2_server: OAuth2Server) -> Iterator[DovecotServer]:
    """One private Dovecot for the test session, checking XOAUTH2 tokens at oauth2_server.

    Use it with ``pytest_plugins = ["tests.support.dovecot"]``, or import ``dovecot`` and
    ``oauth2_server`` into a conftest.
    """
    with DovecotServer(oauth2_introspection_url=oauth2_server.introspection_url) as server:
        yield server
