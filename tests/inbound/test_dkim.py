"""DKIM verification: keys from the override table or from DNS, and what fails."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dkim
import dns.message
import dns.rcode
import dns.resolver
import dns.rrset
import pytest

from helpdesk.config import ConfigError, Settings
from helpdesk.inbound.dkim import DkimVerifier, DnsLookup, TableLookup, load_txt_overrides
from tests.inbound.conftest import make_key, sign, write_overrides

MAIL = (
    b"From: Jane Doe <jane@example.org>\r\n"
    b"To: program@pycon.test\r\n"
    b"Subject: Talk proposal\r\n"
    b"Message-ID: <t1@example.org>\r\n"
    b"\r\n"
    b"Hello, here is my proposal.\r\n"
)
HEADERS = ["from", "to", "subject", "message-id"]
STOP = b"stop serving"


def table_verifier(records: dict[str, str]) -> DkimVerifier:
    """A verifier reading keys from ``records`` only."""
    return DkimVerifier(TableLookup(records))


def test_a_signed_mail_passes_with_its_key_from_the_override_file(tmp_path, dkim_key):
    path = write_overrides(tmp_path / "keys.json", {"s1._domainkey.example.org": dkim_key.txt})
    settings = Settings.from_environ({"HELPDESK_DKIM_TXT_OVERRIDES": str(path)})
    verifier = DkimVerifier.from_settings(settings)
    signed = sign(MAIL, dkim_key, "example.org", HEADERS)
    assert verifier.verify(signed) == ["example.org"]
    [result] = verifier.check(signed)
    assert (result.domain, result.selector, result.passed, result.error) == (
        "example.org",
        "s1",
        True,
        None,
    )
    assert result.signed_headers == frozenset(HEADERS)


def test_a_changed_signed_header_or_body_fails(dkim_key):
    verifier = table_verifier({"s1._domainkey.example.org": dkim_key.txt})
    signed = sign(MAIL, dkim_key, "example.org", HEADERS)
    forged_header = signed.replace(b"Subject: Talk proposal", b"Subject: Refund please")
    forged_body = signed.replace(b"my proposal", b"my invoice")
    assert verifier.verify(forged_header) == []
    assert verifier.verify(forged_body) == []
    [result] = verifier.check(forged_body)
    assert not result.passed
    assert "body hash mismatch" in (result.error or "")


def test_an_unsigned_header_may_change_without_breaking_the_signature(dkim_key):
    verifier = table_verifier({"s1._domainkey.example.org": dkim_key.txt})
    signed = sign(MAIL, dkim_key, "example.org", ["from", "subject"])
    changed = signed.replace(b"To: program@pycon.test", b"To: someone@else.example")
    [result] = verifier.check(changed)
    assert result.passed
    assert "to" not in result.signed_headers


def test_a_key_missing_from_the_table_fails_without_asking_dns(dkim_key):
    verifier = table_verifier({"other._domainkey.example.org": dkim_key.txt})
    [result] = verifier.check(sign(MAIL, dkim_key, "example.org", HEADERS))
    assert not result.passed
    assert result.error


def test_only_the_passing_signatures_are_listed(dkim_key):
    other_key = make_key(1024)
    once = sign(MAIL, dkim_key, "example.org", HEADERS)
    twice = sign(once, other_key, "googlegroups.com", HEADERS)
    # The googlegroups.com record holds the wrong key: that signature fails.
    verifier = table_verifier(
        {"s1._domainkey.example.org": dkim_key.txt, "s1._domainkey.googlegroups.com": dkim_key.txt}
    )
    assert verifier.verify(twice) == ["example.org"]
    assert [r.domain for r in verifier.check(twice)] == ["googlegroups.com", "example.org"]


def test_keys_below_the_minimum_size_are_refused():
    # cryptography will not make keys under 1024 bits, so raise the bar instead.
    weak = make_key(1024)
    verifier = DkimVerifier(TableLookup({"s1._domainkey.example.org": weak.txt}), min_key_bits=2048)
    [result] = verifier.check(sign(MAIL, weak, "example.org", HEADERS))
    assert not result.passed
    assert "too small" in (result.error or "")


def test_a_record_split_into_strings_is_joined(tmp_path, dkim_key):
    txt = dkim_key.txt
    path = write_overrides(
        tmp_path / "keys.json", {"S1._domainkey.Example.org.": [txt[:200], txt[200:]]}
    )
    verifier = DkimVerifier(TableLookup(load_txt_overrides(path)))
    assert verifier.verify(sign(MAIL, dkim_key, "example.org", HEADERS)) == ["example.org"]


def test_unsigned_and_unparseable_mail_has_no_signatures(dkim_key):
    verifier = table_verifier({"s1._domainkey.example.org": dkim_key.txt})
    assert verifier.check(MAIL) == []
    assert verifier.check(b" folded line before any header\r\nFrom: x\r\n\r\nbody") == []
    assert verifier.check(b"\x00\x01 not a mail at all") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "is not readable JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"example.org": "v=DKIM1; p=abc"}', "must map selector._domainkey.domain"),
        ('{"s._domainkey.example.org": 42}', "must map selector._domainkey.domain"),
    ],
)
def test_a_bad_override_file_is_a_config_error_naming_the_setting(tmp_path, content, message):
    path = tmp_path / "keys.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_txt_overrides(path)
    assert raised.value.variable == "HELPDESK_DKIM_TXT_OVERRIDES"
    assert message in raised.value.reason


def test_without_overrides_the_verifier_uses_dns():
    verifier = DkimVerifier.from_settings(Settings.from_environ({}))
    assert isinstance(verifier.lookup, DnsLookup)


# -- DNS ------------------------------------------------------------------------------------


class TxtServer:
    """A DNS server on loopback answering TXT queries from a table, counting queries."""

    def __init__(self, records: dict[str, str], *, silent: bool = False) -> None:
        self.records = {name.lower().rstrip(".") + ".": value for name, value in records.items()}
        self.silent = silent
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            data, peer = self.sock.recvfrom(4096)
            if data == STOP:
                return
            query = dns.message.from_wire(data)
            name = query.question[0].name.to_text().lower()
            self.queries.append(name)
            if self.silent:
                continue
            response = dns.message.make_response(query)
            if name in self.records:
                value = self.records[name]
                chunks = " ".join(f'"{value[i : i + 200]}"' for i in range(0, len(value), 200))
                response.answer.append(dns.rrset.from_text(name, 300, "IN", "TXT", chunks))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def stop(self) -> None:
        """Stop serving: a closed socket would not wake the blocked thread, a datagram does."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(STOP, ("127.0.0.1", self.port))
        self.thread.join()
        self.sock.close()

    def resolver(self) -> dns.resolver.Resolver:
        """A resolver that asks only this server."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        return resolver


@pytest.fixture
def txt_server(dkim_key) -> Iterator[TxtServer]:
    """A DNS server holding the test key at s1._domainkey.example.org."""
    server = TxtServer({"s1._domainkey.example.org": dkim_key.txt})
    server.thread.start()
    yield server
    server.stop()


def test_dns_lookup_finds_the_key_and_caches_it(txt_server, dkim_key):
    verifier = DkimVerifier(DnsLookup(timeout=2, resolver=txt_server.resolver()))
    signed = sign(MAIL, dkim_key, "example.org", HEADERS)
    assert verifier.verify(signed) == ["example.org"]
    assert verifier.verify(signed) == ["example.org"]
    assert txt_server.queries == ["s1._domainkey.example.org."]


def test_dns_lookup_of_a_missing_key_is_none(txt_server):
    lookup = DnsLookup(timeout=2, resolver=txt_server.resolver())
    assert lookup("nothing._domainkey.example.org") is None


def test_a_dns_timeout_fails_the_signature_as_a_temporary_error(dkim_key):
    server = TxtServer({}, silent=True)
    server.thread.start()
    try:
        lookup = DnsLookup(timeout=0.2, resolver=server.resolver())
        with pytest.raises(dkim.DnsTimeoutError):
            lookup("s1._domainkey.example.org")
        [result] = DkimVerifier(lookup).check(sign(MAIL, dkim_key, "example.org", HEADERS))
        assert not result.passed
    finally:
        server.stop()
