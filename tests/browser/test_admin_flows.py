"""An admin's evening in Chromium: invite a volunteer (who sets a password from the mail
and logs in), set up a committee, try a mail against the routing rules; screenshots of the
admin pages."""

from __future__ import annotations

import email
import itertools
import re
from email import policy

from playwright.sync_api import expect

from helpdesk.extensions import db
from tests.browser.conftest import TEST_PASSWORD_HASH, log_in, screenshot

_serial = itertools.count(1)


def _admin(live_server) -> str:
    """An admin, a committee with members, a rule, a mailbox and a quarantined mail."""
    from helpdesk import agents, canned, committees
    from helpdesk.inbound.ingest import Source, quarantine
    from helpdesk.inbound.mailboxes import add_mailbox, record_health
    from helpdesk.inbound.rule_admin import save_rule
    from helpdesk.storage import raw_mail_store
    from tests.support.mails import make_mail

    n = next(_serial)
    with live_server.app.app_context():
        admin = agents.create_agent(f"admin{n}@conference.test", "Alex Admin", admin=True)
        admin.password_hash = TEST_PASSWORD_HASH
        program = committees.add_committee(
            f"program-{n}", "Program", mail_addresses=[f"program-{n}@conference.test"]
        )
        committees.add_committee(
            f"diversity-{n}",
            "Diversity",
            visibility="private",
            mail_addresses=[f"diversity-{n}@conference.test"],
        )
        for i, name in enumerate(("Bruno Program", "Chiara Talks")):
            agent = agents.create_agent(f"member{n}-{i}@conference.test", name)
            committees.set_membership(program.id, agent.id, "lead" if i == 0 else "member")
        canned.create(program.id, "Visa letter", "Dear {{ contact.name }}, your letter ...")
        save_rule(
            None,
            name="Visa questions to program",
            conditions={"subject_keywords": ["visa"]},
            committee_id=program.id,
            tags=["visa"],
            priority="high",
            enabled=True,
        )
        add_mailbox(
            f"info-{n}",
            host="imap.conference.test",
            port=993,
            tls="implicit",
            username="info@conference.test",
            password="not-shown",
        )
        db.session.commit()
        record_health(f"info-{n}", ok=False, error="authentication failed")
        raw = make_mail(to=f"program-{n}@conference.test", subject="Undecodable mess")
        quarantine(
            raw,
            raw_mail_store().put(raw),
            Source(f"info-{n}/INBOX"),
            "parse",
            ValueError("header 'Date' is not a date"),
        )
        email_address = admin.email
        db.session.remove()
    return email_address


def test_an_admin_invites_a_volunteer_who_sets_a_password(browser, live_server, tmp_path):
    admin_email = _admin(live_server)
    admin_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    invitee_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = admin_ctx.new_page()
        log_in(page, live_server, admin_email)
        page.get_by_role("link", name="Admin", exact=True).click()
        page.get_by_role("link", name="Users").click()
        n = next(_serial)
        address = f"newcomer{n}@example.org"
        before = live_server.outbox_files()
        page.get_by_label("E-mail").fill(address)
        page.get_by_label("Name").fill("Nia Newcomer")
        page.get_by_role("button", name="Send invitation", exact=True).click()
        expect(page.get_by_text(f"Invitation sent to {address}.")).to_be_visible()
        newcomer_row = page.get_by_role("row", name=re.compile("Nia Newcomer"))
        expect(newcomer_row.get_by_role("cell", name="invited")).to_be_visible()
        screenshot(page, "admin-users", tmp_path)

        new_files = live_server.outbox_files() - before
        assert len(new_files) == 1
        mail = email.message_from_bytes(new_files.pop().read_bytes(), policy=policy.default)
        assert mail["To"] == address
        assert mail["Subject"] == "Your invitation to the helpdesk"
        link = re.search(r"https?://\S+/invitation/\S+", mail.get_content()).group(0)
        path = link.split("/invitation/", 1)[1]

        invitee = invitee_ctx.new_page()
        invitee.goto(f"{live_server.url}/invitation/{path}")
        expect(invitee.get_by_role("heading", name="Welcome to the helpdesk")).to_be_visible()
        expect(invitee.get_by_label("Your name")).to_have_value("Nia Newcomer")
        invitee.get_by_label("New password").fill("a long enough passphrase")
        invitee.get_by_label("Repeat the password").fill("a long enough passphrase")
        screenshot(invitee, "invitation", tmp_path)
        invitee.get_by_role("button", name="Set password").click()
        invitee.wait_for_url(f"{live_server.url}/")
        expect(invitee.get_by_text("Your password is set.")).to_be_visible()

        # Logged out, the newcomer logs in with the new password; the link is used up.
        invitee.get_by_role("button", name="Log out").click()
        invitee.get_by_label("E-mail").fill(address)
        invitee.get_by_label("Password").fill("a long enough passphrase")
        invitee.get_by_role("button", name="Log in").click()
        invitee.wait_for_url(f"{live_server.url}/")
        expect(invitee.get_by_role("link", name="Nia Newcomer")).to_be_visible()
        invitee.goto(f"{live_server.url}/invitation/{path}")
        expect(
            invitee.get_by_role("heading", name="This link is not valid any more")
        ).to_be_visible()
        page.reload()
        expect(
            page.get_by_role("row", name=re.compile("Nia Newcomer")).get_by_role(
                "cell", name="active"
            )
        ).to_be_visible()
    finally:
        admin_ctx.close()
        invitee_ctx.close()


def test_screenshots_of_the_admin_pages(context, live_server, tmp_path):
    admin_email = _admin(live_server)
    page = context.new_page()
    log_in(page, live_server, admin_email)
    page.goto(f"{live_server.url}/admin/committees")
    expect(page.get_by_role("heading", name="Committees")).to_be_visible()
    screenshot(page, "admin-committees", tmp_path)

    row = page.get_by_role("row", name=re.compile("Program")).last
    row.get_by_role("link", name="settings").click()
    page.get_by_label("Discord webhook URL").fill(
        "https://discord.com/api/webhooks/123456789012/" + "s3cret" * 6
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(
        page.get_by_text("Posting to https://discord.com/api/webhooks/123456789012/s3cr…")
    ).to_be_visible()
    screenshot(page, "admin-committee", tmp_path)

    page.get_by_role("link", name="Members").click()
    expect(page.get_by_role("cell", name="Bruno Program", exact=True)).to_be_visible()
    screenshot(page, "admin-members", tmp_path)

    page.goto(f"{live_server.url}/admin/rules/test")
    page.get_by_label("Headers or raw mail").fill(
        "From: Sam Speaker <sam@example.net>\nTo: info@conference.test\n"
        "Subject: Visa invitation letter\n"
    )
    page.get_by_role("button", name="Route it").click()
    expect(page.locator("#routed-to")).to_have_text("Program")
    screenshot(page, "admin-rule-test", tmp_path)

    page.get_by_role("link", name="Routing rules").click()
    expect(page.get_by_role("link", name="Visa questions to program").first).to_be_visible()
    screenshot(page, "admin-rules", tmp_path)

    page.get_by_role("link", name="Mailboxes").click()
    expect(page.get_by_text("authentication failed").first).to_be_visible()
    assert "not-shown" not in page.content()
    screenshot(page, "admin-mailboxes", tmp_path)

    page.get_by_role("link", name="Quarantine").click()
    page.get_by_role("link", name=re.compile(r"^\d+$")).first.click()
    expect(page.locator("#headers")).to_contain_text("Subject: Undecodable mess")
    screenshot(page, "admin-quarantine", tmp_path)
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Quarantine entry deleted.")).to_be_visible()

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_text("quarantine.deleted").first).to_be_visible()
    screenshot(page, "admin-audit", tmp_path)
