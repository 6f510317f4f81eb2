"""Hostile mail HTML opened in Chromium: nothing runs, nothing pops up, nothing leaves.

Every payload of DOMPurify's test corpus (shared/corpus/xss/dompurify) arrives as the
HTML body of a mail through the real pipeline (helpdesk.inbound.ingest.ingest). The
payloads are batched, twenty mails threaded onto one ticket, and each ticket page is
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

from helpdesk.extensions import db
from helpdesk.models import Message, Ticket
from tests.browser.conftest import enhanced, log_in
from tests.conftest import SHARED

CORPUS = SHARED / "corpus" / "xss" / "dompurify" / "expect.json"
BATCH = 20
LOOPBACK = {"127.0.0.1", "localhost"}
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


def watch(context, page, allowed_script_prefixes: tuple[str, ...]) -> Watch:
    """Attach the three detectors to a page of ``context``."""
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
    return seen


def _show_every_formatted_mail(page) -> int:
    summaries = page.locator("details.formatted > summary")
    for i in range(summaries.count()):
        summaries.nth(i).click()
    return summaries.count()


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

    context = browser.new_context(reduced_motion="reduce")
    try:
        page = context.new_page()
        log_in(page, live_server, world.agents[0].email)
        seen = watch(
            context,
            page,
            (f"{live_server.url}/static/", f"{live_server.url}/bootstrap/"),
        )
        proxied_before = len(refusing_proxy.requests_seen)
        frames = 0
        for number in numbers:
            page.goto(f"{live_server.url}/tickets/{number}")
            enhanced(page)
            frames += _show_every_formatted_mail(page)
            # Give load, error and animation handlers time to fire if they could.
            page.wait_for_timeout(250)
        assert frames >= len(corpus) * 0.8  # nearly every payload keeps some HTML to show
        assert seen.dialogs == []
        assert seen.external == []
        assert seen.scripts == []
        assert refusing_proxy.requests_seen[proxied_before:] == []
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
        seen = watch(context, page, ())
        page.set_content(CONTROL_PAGE)
        page.wait_for_timeout(500)
        assert seen.dialogs == ["alert: control"]
        assert any("tracker.example.com" in url for url in seen.external)
        assert seen.scripts  # the handler was compiled in the frame
    finally:
        context.close()
