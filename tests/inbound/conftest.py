"""Helpers for the inbound tests: the shared mail corpus and hand-built mails."""

from __future__ import annotations

import base64
import email
import json
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import dkim
import mailparser
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# The repository's parent folder holds shared/ (the corpus is never copied in here).
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def parse_mail(raw: bytes) -> Message:
    """The Message mail-parser builds (compat32), as the ingester hands it to us.

    mail-parser 4.8 raises on a few valid files while post-processing (an epilogue it
    cannot locate); the Message it would have returned is the stdlib's, so use that.
    """
    try:
        return mailparser.parse_from_bytes(raw).message
    except AttributeError:
        return email.message_from_bytes(raw)


def corpus_file(*parts: str) -> Path:
    """A file in the shared corpus; skips the test when the corpus is not checked out."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"corpus file {path} is missing: ../shared must sit beside the checkout")
    return path


def corpus_mail(*parts: str) -> Message:
    """A corpus file, parsed."""
    return parse_mail(corpus_file(*parts).read_bytes())


def corpus_json(*parts: str) -> Any:
    """A corpus expectation file."""
    with corpus_file(*parts).open(encoding="utf-8") as handle:
        return json.load(handle)


def mail_files(folder: str) -> list[Path]:
    """Every mail a corpus folder lists in its INDEX.tsv (one row per mail file)."""
    index = corpus_file(folder, "INDEX.tsv")
    rows = index.read_text(encoding="utf-8").splitlines()[1:]
    return [index.parent / row.split("\t", 1)[0] for row in rows if row.strip()]


def build_mail(headers: dict[str, str] | list[tuple[str, str]], body: str = "Hello\n") -> Message:
    """A mail from header pairs and a body, parsed like inbound mail."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    text = "".join(f"{name}: {value}\r\n" for name, value in pairs) + "\r\n" + body
    return parse_mail(text.encode("utf-8"))


# -- DKIM ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair for signing test mail, and its DKIM TXT record."""

    private_pem: bytes
    txt: str


def make_key(bits: int = 2048) -> SigningKey:
    """A fresh RSA key pair in the forms dkimpy and DNS want."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(private_pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(public_der).decode())


@pytest.fixture(scope="session")
def dkim_key() -> SigningKey:
    """One 2048-bit key for the whole run (generating keys is the slow part)."""
    return make_key()


def sign(
    raw: bytes, key: SigningKey, domain: str, headers: list[str], selector: str = "s1"
) -> bytes:
    """``raw`` with a DKIM-Signature of ``domain`` over ``headers`` prepended, as a
    signing server would."""
    signature = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        key.private_pem,
        include_headers=[h.encode() for h in headers],
    )
    return signature + raw


def write_overrides(path: Path, records: dict[str, str | list[str]]) -> Path:
    """A HELPDESK_DKIM_TXT_OVERRIDES file holding ``records``."""
    path.write_text(json.dumps(records), encoding="utf-8")
    return path
