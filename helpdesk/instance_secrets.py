"""Development secrets kept in the instance folder, created once and then reused.

Production sets ``HELPDESK_SECRET_KEY`` and ``HELPDESK_ENCRYPTION_KEY``; a development
instance generates each on first start and keeps it in a private file, so sessions and
encrypted secrets survive restarts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name


def load_or_create_secret_key(
    instance_path: Path, name: str = SECRET_KEY_FILE, *, fernet: bool = False
) -> str:
    """Return a development secret kept in the instance folder, creating it once.

    ``fernet`` makes it a Fernet key (for encrypting stored secrets) instead of a
    session-signing secret.
    """
    path = instance_path / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    if fernet:
        from cryptography.fernet import Fernet

        value = Fernet.generate_key().decode()
    else:
        value = secrets.token_urlsafe(48)
    instance_path.mkdir(parents=True, exist_ok=True)
    # Written whole to a private file, then linked into place: link() fails when the name
    # exists, so two processes starting at once agree on the first one's key.
    tmp = instance_path / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
