"""The shared mail corpus, read in place (never copied into the repository)."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"

# Folders holding whole mails. email-reply-parser holds bare reply bodies and xss holds
# HTML payloads; neither is a mail.
MAIL_FOLDERS = (
    "cpython-email",
    "django-helpdesk",
    "flanker",
    "flufl-bounce",
    "mail-parser",
    "ruby-mail-gem",
    "sisimai-set-of-emails",
    "talon",
)
_METADATA_PREFIXES = ("README", "INDEX", "LICENSE", "MIT-LICENSE", "NOTICE", "expected")


def corpus_path(relative: str) -> Path:
    """The path of one corpus file; fails loudly when the corpus is not there."""
    path = CORPUS / relative
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} is missing (is shared/ next to the repo?)")
    return path


def read(relative: str) -> bytes:
    """The bytes of one corpus file."""
    return corpus_path(relative).read_bytes()


def mail_files() -> list[Path]:
    """Every file in the mail folders except the folders' own metadata, sorted."""
    if not CORPUS.is_dir():
        raise FileNotFoundError(f"the corpus is missing at {CORPUS}")
    files = []
    for folder in MAIL_FOLDERS:
        for path in sorted((CORPUS / folder).rglob("*")):
            if path.is_file() and not path.name.startswith(_METADATA_PREFIXES):
                files.append(path)
    return files


def indexed_mails(folder: str) -> list[str]:
    """The files a mail folder's INDEX.tsv lists, relative to the corpus."""
    lines = corpus_path(f"{folder}/INDEX.tsv").read_text(encoding="utf-8").splitlines()
    return [f"{folder}/{line.split(chr(9), 1)[0]}" for line in lines[1:] if line.strip()]


def xss_vectors() -> list[dict]:
    """DOMPurify's vectors: a list of {title?, payload, expected}."""
    return json.loads(corpus_path("xss/dompurify/expect.json").read_text(encoding="utf-8"))
