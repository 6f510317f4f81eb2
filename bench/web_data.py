"""Data for the web benchmark: a conference-sized helpdesk in PostgreSQL, in a minute.

Set-based INSERT ... SELECT over generate_series: ten committees (open, members-only and
private), forty agents, 20,000 contacts, 100,000 tickets with five messages each, tags,
contact kinds and the search documents. Text comes from 2,000 generated paragraphs.
"""

from __future__ import annotations

import random

import psycopg

TICKETS = 100_000
MESSAGES_PER_TICKET = 5
CONTACTS = 20_000
COMMITTEES = [
    ("info", "Info desk", "open"),
    ("program", "Program committee", "open"),
    ("sponsoring", "Sponsoring", "open"),
    ("volunteers", "Volunteers", "open"),
    ("finance", "Finance", "open"),
    ("venue", "Venue", "open"),
    ("grants", "Grants and financial aid", "members"),
    ("coc", "Code of conduct", "members"),
    ("diversity", "Diversity and inclusion", "private"),
    ("steering", "Steering committee", "private"),
]
WORDS = [
    "ticket",
    "invoice",
    "visa",
    "letter",
    "talk",
    "schedule",
    "slot",
    "speaker",
    "grant",
    "travel",
    "hotel",
    "room",
    "badge",
    "refund",
    "payment",
    "receipt",
    "company",
    "address",
    "sponsor",
    "booth",
    "volunteer",
    "shift",
    "lunch",
    "dinner",
    "vegan",
    "allergy",
    "wheelchair",
    "access",
    "childcare",
    "sprint",
    "tutorial",
    "keynote",
    "slides",
    "video",
    "recording",
    "wifi",
    "train",
    "airport",
    "taxi",
    "certificate",
    "attendance",
    "discount",
    "student",
    "group",
    "registration",
    "transfer",
    "name",
    "change",
    "deadline",
    "extension",
    "question",
    "please",
    "thanks",
    "hello",
    "conference",
    "python",
    "berlin",
    "friday",
    "thursday",
    "morning",
    "afternoon",
    "evening",
    "tomorrow",
]
# Words of a few letters that each occur in about one ticket in twenty: what an agent
# searches for is usually rarer than the topic words above, which nearly every ticket has.
RARE_WORDS = [f"zq{i:04d}" for i in range(3000)]


def _paragraphs(rng: random.Random, count: int) -> list[str]:
    def word() -> str:
        return rng.choice(RARE_WORDS) if rng.random() < 0.7 else rng.choice(WORDS)

    return [" ".join(word() for _ in range(rng.randint(25, 70))) for _ in range(count)]


def fill(url: str) -> None:
    """Committees, agents, contacts, tickets, messages, tags and search documents."""
    rng = random.Random(20260525)
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("CREATE TEMP TABLE paragraphs (id int PRIMARY KEY, text text)")
        with conn.cursor().copy("COPY paragraphs (id, text) FROM STDIN") as copy:
            for i, text in enumerate(_paragraphs(rng, 2000)):
                copy.write_row((i, text))
        for slug, name, visibility in COMMITTEES:
            conn.execute(
                "INSERT INTO committees (slug, name, visibility, is_triage, acknowledge, "
                "created_at) VALUES (%s, %s, %s, %s, true, now())",
                (slug, name, visibility, slug == "info"),
            )
        conn.execute(
            "INSERT INTO users (email, name, password_hash, active, is_admin, session_version, "
            "created_at) SELECT 'agent' || g || '@conference.example', 'Agent ' || g, NULL, "
            "true, false, 1, now() FROM generate_series(1, 40) g"
        )
        conn.execute(
            "INSERT INTO memberships (user_id, committee_id, role, created_at) "
            "SELECT u.id, c.id, 'member', now() FROM users u JOIN committees c "
            "ON (u.id + c.id) % 4 = 0"
        )
        conn.execute(
            "INSERT INTO contacts (email, email_key, name, created_at, updated_at) "
            "SELECT 'person' || g || '@example.org', 'person' || g || '@example.org', "
            "'Person ' || g, now(), now() FROM generate_series(1, %s) g",
            (CONTACTS,),
        )
        conn.execute(
            "INSERT INTO contact_kinds (contact_id, kind) SELECT id, "
            "(ARRAY['attendee', 'speaker', 'grant_applicant'])[1 + id % 3] FROM contacts"
        )
        conn.execute(
            """
            INSERT INTO tickets (number, subject, committee_id, status, priority, assignee_id,
                                 contact_id, created_at, updated_at, version)
            SELECT g,
                   initcap((SELECT text FROM paragraphs WHERE id = g %% 2000)::varchar(60)),
                   (SELECT id FROM committees ORDER BY id OFFSET g %% 10 LIMIT 1),
                   (ARRAY['new', 'open', 'pending', 'solved', 'closed', 'closed', 'closed',
                          'solved'])[1 + g %% 8],
                   'normal',
                   CASE WHEN g %% 3 = 0 THEN 1 + g %% 40 END,
                   1 + g %% %s,
                   now() - make_interval(mins => g * 3),
                   now() - make_interval(mins => (g * 7919) %% 150000),
                   1
            FROM generate_series(1, %s) g
            """,
            (CONTACTS, TICKETS),
        )
        conn.execute("INSERT INTO counters (name, value) VALUES ('ticket_number', %s)", (TICKETS,))
        conn.execute(
            """
            INSERT INTO messages (ticket_id, direction, message_id, subject, from_address,
                                  from_name, to_addresses, cc_addresses, text,
                                  sender_verified, created_at)
            SELECT t.id,
                   CASE WHEN k = 0 THEN 'inbound'
                        ELSE (ARRAY['inbound', 'outbound', 'note'])[1 + (t.id + k) %% 3] END,
                   'm' || t.id || '-' || k || '@example.org',
                   t.subject, c.email, c.name, '[]'::jsonb, '[]'::jsonb,
                   p.text || E'\\n\\nref ' || t.id || '-' || k,
                   true,
                   t.created_at + make_interval(mins => k * 30)
            FROM tickets t
            JOIN contacts c ON c.id = t.contact_id
            CROSS JOIN generate_series(0, %s) k
            JOIN paragraphs p ON p.id = (t.id * 31 + k * 17) %% 2000
            """,
            (MESSAGES_PER_TICKET - 1,),
        )
        conn.execute(
            "INSERT INTO ticket_tags (ticket_id, tag) SELECT id, "
            "(ARRAY['visa', 'invoice', 'schedule', 'refund'])[1 + id % 4] FROM tickets "
            "WHERE id % 5 = 0"
        )
        conn.execute(
            """
            INSERT INTO ticket_search (ticket_id, document)
            SELECT t.id, t.subject || ' ' || c.email || ' ' || c.name || ' ' ||
                   string_agg(m.text, ' ' ORDER BY m.id)
            FROM tickets t JOIN contacts c ON c.id = t.contact_id
            JOIN messages m ON m.ticket_id = t.id
            GROUP BY t.id, t.subject, c.email, c.name
            """
        )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
