"""DKIM verification of inbound mail with dkimpy.

Public keys come from DNS (dnspython, with a small TTL-honouring cache and a timeout) or,
when ``HELPDESK_DKIM_TXT_OVERRIDES`` names a JSON file, from that file alone: tests and
air-gapped installations then make no DNS query at all.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dkim
import dns.exception
import dns.resolver
from dkim.util import InvalidTagValueList, parse_tag_value

from helpdesk.config import ConfigError, Settings

log = logging.getLogger(__name__)

OVERRIDES_VARIABLE = "HELPDESK_DKIM_TXT_OVERRIDES"
DNS_TIMEOUT = 3.0
DNS_CACHE_SIZE = 512
# Below this, RSA keys are forgeable; RFC 8301 makes 1024 bits the minimum.
MIN_KEY_BITS = 1024
# A mail with more signatures than this is not worth the DNS traffic.
MAX_SIGNATURES = 10

TxtLookup = Callable[[str], bytes | None]


@dataclass(frozen=True)
class SignatureResult:
    """The outcome of checking one DKIM-Signature header."""

    domain: str  # the d= tag, lower-cased
    selector: str
    passed: bool
    signed_headers: frozenset[str]  # lower-cased names listed in h=
    error: str | None = None


def record_name(name: str | bytes) -> str:
    """A DNS name as a table key: text, lower case, no trailing dot."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return name.strip().rstrip(".").lower()


def load_txt_overrides(path: Path) -> dict[str, str]:
    """Read the override table: a JSON object of ``selector._domainkey.domain`` -> TXT.

    A record may be one string or a list of strings (DNS splits long records); a file
    that is missing or malformed raises ConfigError naming the setting.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(OVERRIDES_VARIABLE, f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(OVERRIDES_VARIABLE, f"{path} is not readable JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(OVERRIDES_VARIABLE, f"{path} must hold a JSON object")
    records = {}
    for name, value in document.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "".join(value)
        if not isinstance(value, str) or "._domainkey." not in name:
            raise ConfigError(
                OVERRIDES_VARIABLE,
                f"{path}: entry {name!r} must map selector._domainkey.domain to a TXT string",
            )
        records[record_name(name)] = value
    return records


class TableLookup:
    """TXT records from a fixed table; names not in it have no record."""

    def __init__(self, records: Mapping[str, str]) -> None:
        self.records = {record_name(name): value for name, value in records.items()}

    def __call__(self, name: str) -> bytes | None:
        """The record for ``name``, or None."""
        value = self.records.get(record_name(name))
        return value.encode("utf-8") if value is not None else None


class DnsLookup:
    """TXT records from DNS through dnspython, cached for their TTL."""

    def __init__(
        self,
        timeout: float = DNS_TIMEOUT,
        resolver: dns.resolver.Resolver | None = None,
        cache_size: int = DNS_CACHE_SIZE,
    ) -> None:
        self.timeout = timeout
        self.cache_size = cache_size
        self._resolver = resolver

    @property
    def resolver(self) -> dns.resolver.Resolver:
        """The resolver, set up on first use (reading resolv.conf is deferred until then)."""
        if self._resolver is None:
            self._resolver = dns.resolver.Resolver()
        self._resolver.lifetime = self.timeout
        if not isinstance(self._resolver.cache, dns.resolver.LRUCache):
            self._resolver.cache = dns.resolver.LRUCache(self.cache_size)
        return self._resolver

    def __call__(self, name: str) -> bytes | None:
        """The DKIM key record at ``name``; raises dkim.DnsTimeoutError when DNS fails."""
        try:
            answer = self.resolver.resolve(record_name(name) + ".", "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except (
            dns.exception.Timeout,
            dns.resolver.NoNameservers,
            dns.resolver.NoResolverConfiguration,
        ) as error:
            # A temporary failure, not a missing key: dkimpy logs it and fails the check.
            raise dkim.DnsTimeoutError(f"{name}: {error}") from error
        records = [b"".join(rdata.strings) for rdata in answer]
        keys = [r for r in records if r.startswith(b"v=DKIM1") or b"p=" in r]
        return keys[0] if keys else None


class DkimVerifier:
    """Checks the DKIM signatures of raw mail against keys from a lookup."""

    def __init__(self, lookup: TxtLookup, *, min_key_bits: int = MIN_KEY_BITS) -> None:
        self.lookup = lookup
        self.min_key_bits = min_key_bits

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimVerifier:
        """DNS, or the override table when HELPDESK_DKIM_TXT_OVERRIDES is set."""
        if settings.dkim_txt_overrides is not None:
            return cls(TableLookup(load_txt_overrides(settings.dkim_txt_overrides)))
        return cls(DnsLookup())

    def _dnsfunc(self, name: bytes | str, timeout: float = DNS_TIMEOUT) -> bytes | None:
        # dkimpy's calling convention: a name with a trailing dot and a timeout keyword.
        return self.lookup(record_name(name))

    def check(self, raw: bytes) -> list[SignatureResult]:
        """Every DKIM signature of ``raw`` (up to MAX_SIGNATURES), passed or not."""
        try:
            verifier = dkim.DKIM(raw, logger=log, minkey=self.min_key_bits)
        except (dkim.DKIMException, IndexError) as error:
            # dkimpy refuses some malformed header blocks outright; nothing is verified.
            log.info("DKIM: mail headers not parseable: %s", error)
            return []
        signatures = [v for name, v in verifier.headers if name.lower() == b"dkim-signature"]
        results = []
        for index, value in enumerate(signatures[:MAX_SIGNATURES]):
            results.append(self._check_one(verifier, index, value))
        return results

    def _check_one(self, verifier: dkim.DKIM, index: int, value: bytes) -> SignatureResult:
        tags = _tags(value)
        domain = tags.get(b"d", b"").decode("ascii", "replace").strip().lower()
        selector = tags.get(b"s", b"").decode("ascii", "replace").strip()
        signed = frozenset(
            h.strip().lower() for h in tags.get(b"h", b"").decode("ascii", "replace").split(":")
        )
        try:
            passed = bool(verifier.verify(idx=index, dnsfunc=self._dnsfunc))
            error = None if passed else "signature does not verify"
        except dkim.DKIMException as failure:
            passed, error = False, str(failure) or type(failure).__name__
        return SignatureResult(domain, selector, passed, signed - {""}, error)

    def verify(self, raw: bytes) -> list[str]:
        """The domains (d=) of the signatures on ``raw`` that pass."""
        return [result.domain for result in self.check(raw) if result.passed]


def _tags(value: bytes) -> dict[bytes, bytes]:
    try:
        return parse_tag_value(re.sub(rb"\s+", b"", value))
    except InvalidTagValueList:
        return {}
