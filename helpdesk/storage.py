"""Content-addressed file stores for raw mail and attachments."""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
from functools import cache
from pathlib import Path

from flask import current_app


class ContentStore:
    """Files named by the SHA-256 of their bytes, written once and atomically.

    A file is written to a temporary name, flushed to disk and renamed into place, so a
    crash leaves either the whole file or none; storing the same bytes twice is free.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def key_for(sha256: str) -> str:
        """Relative path of the file holding ``sha256``: one level of 256 directories.

        (A store grows by tens of thousands of mails a year; 65,536 second-level
        directories would mean a new directory for nearly every file for years, and
        creating it costs as much as writing the file.)
        """
        return f"{sha256[:2]}/{sha256}"

    def path(self, sha256: str) -> Path:
        """Absolute path of the file holding ``sha256`` (where a store written with two
        levels of fan-out has it, if that is where it is)."""
        path = self.root / self.key_for(sha256)
        if not path.exists():
            older = self.root / sha256[:2] / sha256[2:4] / sha256
            if older.exists():
                return older
        return path

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data`` (unless present) and return its SHA-256.

        ``durable=False`` leaves flushing to the disk to a later :meth:`sync`, for callers
        that store many files and make them durable together.
        """
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.root / self.key_for(sha256)
        try:
            if target.stat().st_size == len(data):
                return sha256
        except FileNotFoundError:
            pass
        tmp = target.with_name(f".{sha256}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            fh = open(tmp, "wb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:  # the fan-out directories are made on first use
            target.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "wb")  # noqa: SIM115
        with fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        if durable:
            _fsync_directory(target.parent)
        return sha256

    def sync(self) -> None:
        """Make everything stored so far durable (one flush of the store's filesystem)."""
        self.root.mkdir(parents=True, exist_ok=True)
        _syncfs(self.root)

    def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``; raises FileNotFoundError when absent."""
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        """Whether ``sha256`` is stored."""
        return self.path(sha256).exists()


def _fsync_directory(path: Path) -> None:
    """Make a rename durable: the directory entry is data too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding ``path`` (Linux syncfs; a full sync elsewhere)."""
    syncfs = _libc_syncfs()
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs is not None and syncfs(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


@cache
def _libc_syncfs():
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


def raw_mail_store() -> ContentStore:
    """The store of received mail for the current app."""
    return ContentStore(Path(current_app.config["HELPDESK_RAW_MAIL_PATH"]))


def attachment_store() -> ContentStore:
    """The store of attachment contents for the current app."""
    return ContentStore(Path(current_app.config["HELPDESK_ATTACHMENTS_PATH"]))
