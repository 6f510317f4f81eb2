"""What became of a campaign: figures per recipient, event totals, and an hourly timeline.

The database does the counting whatever the campaign's size: one aggregate statement over
its deliveries (the figures the automatic pause also uses, so the page and the pause
agree), and two over its event counts per kind and hour (helpdesk.outbound.event_counts),
which hold a few hundred rows where the events themselves run to hundreds of thousands.

Per recipient, a delivery counts once however many events it drew (its first-time columns,
``delivered_at``, ``opened_at`` ...); opens and clicks also count every event, since a
recipient may open a mail many times.

Opens and clicks are shown when tracking is on. The campaign's ``track_opens`` and
``track_clicks`` say so when set; SendGrid may also track for the whole account without
being asked, so open or click events recorded for the campaign show it was on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from helpdesk.extensions import db
from helpdesk.models import Campaign, CampaignEventCount
from helpdesk.outbound.autopause import campaign_stats
from helpdesk.outbound.event_counts import SECONDS_PER_HOUR

# The timeline shows the campaign's first week, hour by hour, from its first event.
TIMELINE_HOURS = 7 * 24
TIMELINE_EVENTS = ("delivered", "open")
TOTAL_EVENTS = ("open", "click")

# (key in campaign_stats, label, event kind counted in total)
_ALWAYS = (
    ("delivered", "Delivered", None),
    ("bounced", "Bounced", None),
    ("complaints", "Spam complaints", None),
    ("unsubscribes", "Unsubscribed", None),
)
_OPENS = ("opens", "Opened", "open")
_CLICKS = ("clicks", "Clicked", "click")


@dataclass(frozen=True)
class Figure:
    """One line of the report: recipients concerned, their share of sent mail, events."""

    key: str
    label: str
    recipients: int
    rate: float | None  # share of the mail sent; None while nothing was sent
    events: int | None = None  # every event, repeats included (opens and clicks only)


@dataclass(frozen=True)
class Hour:
    """Provider events in one hour (UTC)."""

    start: datetime
    delivered: int
    opens: int


@dataclass(frozen=True)
class CampaignReport:
    """A campaign's results as shown to its organisers."""

    recipients: int
    sent: int
    figures: tuple[Figure, ...]
    tracks_opens: bool
    tracks_clicks: bool
    timeline: tuple[Hour, ...]
    later_events: int  # timeline events after its window, counted but not drawn


def event_totals(campaign_id: int) -> dict[str, int]:
    """Open and click events of the campaign, repeats included (zeros included)."""
    statement = (
        sa.select(CampaignEventCount.event, sa.func.sum(CampaignEventCount.total))
        .where(
            CampaignEventCount.campaign_id == campaign_id,
            CampaignEventCount.event.in_(TOTAL_EVENTS),
        )
        .group_by(CampaignEventCount.event)
    )
    totals = dict.fromkeys(TOTAL_EVENTS, 0)
    totals.update((event, int(n)) for event, n in db.session.execute(statement))
    return totals


def timeline(campaign_id: int) -> tuple[tuple[Hour, ...], int]:
    """Delivered and open events per hour over the first week from the first one.

    Returns the hours, every one of the window (empty ones included, so that a chart's
    gaps are real), and how many events came after the window.
    """
    rows = db.session.execute(
        sa.select(
            CampaignEventCount.hour, CampaignEventCount.event, CampaignEventCount.total
        ).where(
            CampaignEventCount.campaign_id == campaign_id,
            CampaignEventCount.event.in_(TIMELINE_EVENTS),
        )
    ).all()
    counts = {(hour, event): total for hour, event, total in rows}
    if not counts:
        return (), 0
    first = min(hour for hour, _ in counts)
    end = first + TIMELINE_HOURS
    last = max(hour for hour, _ in counts if hour < end)
    hours = tuple(
        Hour(
            start=datetime.fromtimestamp(number * SECONDS_PER_HOUR, UTC),
            delivered=counts.get((number, "delivered"), 0),
            opens=counts.get((number, "open"), 0),
        )
        for number in range(first, last + 1)
    )
    later = sum(total for (hour, _), total in counts.items() if hour >= end)
    return hours, later


def campaign_report(campaign_id: int) -> CampaignReport:
    """The campaign's figures, rates of sent mail, event totals and timeline."""
    track_opens, track_clicks = db.session.execute(
        sa.select(Campaign.track_opens, Campaign.track_clicks).where(Campaign.id == campaign_id)
    ).one()
    stats = campaign_stats(campaign_id)
    totals = event_totals(campaign_id)
    sent = stats["sent"]
    tracks_opens = bool(track_opens) or totals["open"] > 0
    tracks_clicks = bool(track_clicks) or totals["click"] > 0
    shown = list(_ALWAYS)
    if tracks_opens:
        shown.append(_OPENS)
    if tracks_clicks:
        shown.append(_CLICKS)
    figures = tuple(
        Figure(
            key=key,
            label=label,
            recipients=stats[key],
            rate=stats[key] / sent if sent else None,
            events=totals[kind] if kind else None,
        )
        for key, label, kind in shown
    )
    hours, later = timeline(campaign_id)
    return CampaignReport(
        recipients=stats["recipients"],
        sent=sent,
        figures=figures,
        tracks_opens=tracks_opens,
        tracks_clicks=tracks_clicks,
        timeline=hours,
        later_events=later,
    )
