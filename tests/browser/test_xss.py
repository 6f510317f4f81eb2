"""Hostile mail HTML opened in Chromium: nothing runs, nothing pops up, nothing leaves.

Every payload of DOMPurify's test corpus (shared/corpus/xss/dompurify) arrives as the
HTML body of a mail through the real pipeline (helpdesk.inbound.ingest.ingest). The
payloads are batched, forty mails threaded onto one ticket, and each ticket page is
opened with its mails' formatted versions shown. Three detectors watch: dialogs,
requests to any host that is not this machine (routed to fail, and a refusing proxy
behind that), and every script Chromium compiles in the page's frames (over CDP). A
control test proves each detector fires on a page that does let a payload run.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from helpdesk.extensions import db
from helpdesk.models import Message, Ticket
from tests.browser.conftest import enhanced, log_in
from tests.conftest import SHARED

CORPUS = SHARED / "corpus" / "xss" / "dompurify" / "expect.json"
BATCH = 40
LOOPBACK = {"127.0.0.1", "localhost"}
# Chromium's own service calls (form autofill hints, account checks, component updates)
# go to Google's API and account hosts, whatever the page holds; the proxy
# refuses them too. Turning them all off would need a second --disable-features flag,
# which replaces playwright's own list. Requests the page makes are counted by the route
# detector, which sees every host.
BROWSER_SERVICE_SUFFIXES = (".googleapis.com", ".google.com")
_serial = itertools.count(1)


def payloads() -> list[str]:
    """The corpus's payloads (a missing corpus is an error, not a skip)."""
    if not CORPUS.exists():
        pytest.fail(f"the XSS corpus is missing at {CORPUS}")
    return [entry["payload"] for entry in json.loads(CORPUS.read_text())]


def _mail(payload: str, *, to: str, index: int, thread: str | None, run: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Mallory {index} <mallory@example.org>"
    mail["To"] = to
    mail["Subject"] = f"Payload batch {run}-{index // BATCH}"
    mail["Message-ID"] = f"<xss-{run}-{index}@example.org>"
    if thread:
        mail["In-Reply-To"] = f"<{thread}>"
        mail["References"] = f"<{thread}>"
    mail.set_content(payload, subtype="html", charset="utf-8")
    return mail.as_bytes()


@dataclass
class Watch:
    """What the detectors saw."""

    dialogs: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)


def watch(context, page, allowed_script_prefixes: tuple[str, ...]) -> tuple[Watch, object]:
    """Attach the three detectors to a page of ``context``; returns them and the CDP session."""
    seen = Watch()

    def on_dialog(dialog) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_route(route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:", "about:")) or host in LOOPBACK:
            route.continue_()
        else:
            seen.external.append(route.request.url)
            route.abort()

    def on_script(event: dict) -> None:
        url = event.get("url", "")
        aux = event.get("executionContextAuxData") or {}
        if not aux.get("isDefault", True):
            return  # playwright's own isolated world
        if url.startswith(allowed_script_prefixes) or "__playwright" in url:
            return
        seen.scripts.append(url or f"inline script in frame {aux.get('frameId')}")

    page.on("dialog", on_dialog)
    context.route("**/*", on_route)
    cdp = context.new_cdp_session(page)
    cdp.on("Debugger.scriptParsed", on_script)
    cdp.send("Debugger.enable")
    return seen, cdp


def _proxied_host(request_line: str) -> str:
    """The host a proxied request line names ("CONNECT host:443 ..." or "GET http://host/...")."""
    parts = request_line.split()
    target = parts[1] if len(parts) > 1 else ""
    if parts and parts[0] == "CONNECT":
        return target.rsplit(":", 1)[0].lower()
    return (urlsplit(target).hostname or "").lower()


def _show_every_formatted_mail(cdp) -> int:
    """Open every "Formatted mail" fold, as an agent reading the whole thread would.

    The test's script runs in an isolated world of its own (as an extension's would): a
    script in the page's world would itself count as one that ran.
    """
    tree = cdp.send("Page.getFrameTree")
    world = cdp.send(
        "Page.createIsolatedWorld",
        {"frameId": tree["frameTree"]["frame"]["id"], "worldName": "xss-test"},
    )
    opened = cdp.send(
        "Runtime.evaluate",
        {
            "expression": "[...document.querySelectorAll('details.formatted')]"
            ".map(fold => { fold.open = true; }).length",
            "contextId": world["executionContextId"],
            "returnByValue": True,
        },
    )
    return opened["result"]["value"]


def test_no_payload_runs_pops_up_or_reaches_out(browser, live_server, scene, refusing_proxy):
    from helpdesk.inbound.ingest import Source, ingest

    run = next(_serial)
    world = scene(agent_count=1, ticket_count=0)
    address = f"{world.committee.slug}@conference.test"
    corpus = payloads()
    numbers: list[int] = []
    with live_server.app.app_context():
        first_of_batch = None
        for index, payload in enumerate(corpus):
            if index % BATCH == 0:
                first_of_batch = None
            raw = _mail(payload, to=address, index=index, thread=first_of_batch, run=run)
            result = ingest(raw, Source(f"xss corpus #{index}"))
            assert result.outcome == "tickets", (index, result)
            if first_of_batch is None:
                first_of_batch = f"xss-{run}-{index}@example.org"
                numbers.extend(result.new_ticket_numbers)
            else:
                assert result.new_ticket_numbers == [], f"payload {index} was not threaded"
        stored = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Message)
            .join(Ticket)
            .where(Ticket.number.in_(numbers), Message.direction == "inbound")
        )
        db.session.remove()
    assert stored == len(corpus)
    assert len(numbers) == -(-len(corpus) // BATCH)

    # Tall enough that no mail frame waits, lazily, for a scroll to load.
    context = browser.new_context(
        reduced_motion="reduce", viewport={"width": 1280, "height": 16000}
    )
    try:
        page = context.new_page()
        log_in(page, live_server, world.agents[0].email)
        seen, cdp = watch(
            context,
            page,
            (f"{live_server.url}/static/", f"{live_server.url}/bootstrap/"),
        )
        proxied_before = len(refusing_proxy.requests_seen)
        frames = 0
        for number in numbers:
            page.goto(f"{live_server.url}/tickets/{number}")
            enhanced(page)
            opened = _show_every_formatted_mail(cdp)
            # Every opened fold's frame has loaded its mail.
            expect(page.locator("details.formatted[open] iframe")).to_have_count(opened)
            for _ in range(100):
                if sum(f.url == "about:srcdoc" for f in page.frames) >= opened:
                    break
                page.wait_for_timeout(50)
            assert sum(f.url == "about:srcdoc" for f in page.frames) == opened
            frames += opened
            # Give load, error and animation handlers time to fire if they could.
            page.wait_for_timeout(250)
        assert frames >= len(corpus) * 0.8  # nearly every payload keeps some HTML to show
        assert seen.dialogs == []
        assert seen.external == []
        assert seen.scripts == []
        proxied = [
            line
            for line in refusing_proxy.requests_seen[proxied_before:]
            if not _proxied_host(line).endswith(BROWSER_SERVICE_SUFFIXES)
        ]
        assert proxied == []
    finally:
        context.close()


CONTROL_PAGE = """<!doctype html><html><body>
<iframe sandbox="allow-scripts allow-modals" srcdoc="
  &lt;img src=x onerror=&quot;alert('control')&quot;&gt;
  &lt;img src=&quot;https://tracker.example.com/p.gif&quot;&gt;"></iframe>
</body></html>"""


def test_the_detectors_fire_when_a_payload_does_run(browser):
    context = browser.new_context()
    try:
        page = context.new_page()
        seen, _ = watch(context, page, ())
        page.set_content(CONTROL_PAGE)
        page.wait_for_timeout(500)
        assert seen.dialogs == ["alert: control"]
        assert any("tracker.example.com" in url for url in seen.external)
        assert seen.scripts  # the handler was compiled in the frame
    finally:
        context.close()
