"""Mail address normalisation and validation shared by every module that stores one."""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.utils import parseaddr

from helpdesk.errors import ServiceError

# Deliberately simple: one @, no spaces or angle brackets, a dotted domain (or localhost
# style names in development). Deliverability is the mail server's judgement, not ours.
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+$")


def normalize(address: str) -> str:
    """The lower-cased, trimmed form used as an address's identity."""
    return address.strip().lower()


def is_valid(address: str) -> bool:
    """Whether ``address`` looks like a bare mail address (local@domain)."""
    address = address.strip()
    if len(address) > 320 or not _ADDRESS.match(address):
        return False
    local, _, domain = address.rpartition("@")
    return bool(local) and len(local) <= 64 and ".." not in domain and not domain.startswith(".")


def require_valid(address: str, field: str = "email") -> str:
    """Return the trimmed address or raise a ServiceError naming ``field``."""
    if not is_valid(address):
        raise ServiceError(f"{address!r} is not a valid mail address", field=field)
    return address.strip()


def parse_one(value: str) -> tuple[str, str]:
    """Split ``"Name <a@b>"`` into (name, address); address empty when there is none."""
    name, address = parseaddr(value)
    return name.strip(), address.strip()


def format_address(name: str, address: str) -> str:
    """A header-ready ``Name <address>``, quoting and encoding the name as needed."""
    if not name:
        return address
    local, _, domain = address.rpartition("@")
    return str(Address(display_name=name, username=local, domain=domain))
