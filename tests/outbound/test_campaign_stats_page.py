"""The campaign page's results: figures from provider events, a chart without script, a table.

Events go through the webhook's ingestion (helpdesk.outbound.events.ingest_events), as
SendGrid's would.
"""

from __future__ import annotations

from datetime import timedelta

import html5lib
import pytest
import sqlalchemy as sa

from helpdesk.outbound import reports
from helpdesk.web.campaign_charts import PLOT_HEIGHT, PLOT_WIDTH
from tests.helpers import login
from tests.outbound.stats_fixtures import *  # noqa: F403 (fixtures)
from tests.outbound.stats_fixtures import LAUNCHED, event, ingest, mix

SVG = "{http://www.w3.org/2000/svg}"


def _page(app, organiser, campaign):
    client = app.test_client()
    login(client, organiser)
    response = client.get(f"/outbound/campaigns/{campaign.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _document(html: str):
    return html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)


def _table(html: str) -> dict[str, dict[str, str]]:
    """The results table: figure key -> {recipients, rate, events}."""
    rows = {}
    for row in _document(html).iter("tr"):
        if row.get("data-figure") is None:
            continue
        cells = {
            name: "".join(cell.itertext()).strip()
            for cell in row.iter("td")
            for name in ("recipients", "rate", "events")
            if cell.get(f"data-{name}") is not None and "".join(cell.itertext()).strip()
        }
        rows[row.get("data-figure")] = cells
    return rows


def _bars(html: str) -> dict[str, float]:
    """The figures chart's bars: figure key -> width."""
    chart = _chart(html, "results-chart")
    return {
        group.get("data-figure"): float(rect.get("width"))
        for group in chart.iter(f"{SVG}g")
        for rect in group.iter(f"{SVG}rect")
        if rect.get("class") == "stats-bar"
    }


def _chart(html: str, chart_id: str):
    for svg in _document(html).iter(f"{SVG}svg"):
        if svg.get("id") == chart_id:
            return svg
    raise AssertionError(f"no chart {chart_id}")


def test_page_shows_the_figures_of_a_known_mix_of_events(app, session, make_campaign):
    campaign, deliveries, organiser = make_campaign(10, track_opens=True, track_clicks=True)
    ingest(session, mix(deliveries))
    html = _page(app, organiser, campaign)
    assert _table(html) == {
        "delivered": {"recipients": "8", "rate": "80.0%"},
        "bounced": {"recipients": "2", "rate": "20.0%"},
        "complaints": {"recipients": "1", "rate": "10.0%"},
        "unsubscribes": {"recipients": "1", "rate": "10.0%"},
        "opens": {"recipients": "4", "rate": "40.0%", "events": "6"},
        "clicks": {"recipients": "2", "rate": "20.0%", "events": "3"},
    }
    description = "".join(_chart(html, "results-chart").find(f"{SVG}desc").itertext())
    assert description == (
        "Of 10 mails sent: delivered 8 (80.0%); bounced 2 (20.0%); spam complaints 1 (10.0%);"
        " unsubscribed 1 (10.0%); opened 4 (40.0%), 6 in all; clicked 2 (20.0%), 3 in all."
    )


def test_opens_and_clicks_are_hidden_when_tracking_is_off(app, session, make_campaign):
    campaign, deliveries, organiser = make_campaign(4)
    ingest(session, [event("delivered", d) for d in deliveries])
    html = _page(app, organiser, campaign)
    assert set(_table(html)) == {"delivered", "bounced", "complaints", "unsubscribes"}
    assert set(_bars(html)) == {"delivered", "bounced", "complaints", "unsubscribes"}
    assert "Opens and clicks are not tracked for this campaign." in html
    assert 'data-series="opens"' not in html


def test_tracking_set_on_the_campaign_shows_opens_before_the_first_one(app, session, make_campaign):
    campaign, deliveries, organiser = make_campaign(4, track_opens=True)
    ingest(session, [event("delivered", d) for d in deliveries])
    html = _page(app, organiser, campaign)
    assert _table(html)["opens"] == {"recipients": "0", "rate": "0.0%", "events": "0"}
    assert "clicks" not in _table(html)


def test_open_events_show_the_provider_tracked_without_the_campaign_flag(
    app, session, make_campaign
):
    campaign, deliveries, organiser = make_campaign(4)
    ingest(session, [event("open", deliveries[0]), event("open", deliveries[0])])
    html = _page(app, organiser, campaign)
    assert _table(html)["opens"] == {"recipients": "1", "rate": "25.0%", "events": "2"}
    assert "clicks" not in _table(html)


def test_bars_are_proportional_to_the_figures(app, session, make_campaign):
    campaign, deliveries, organiser = make_campaign(10, track_opens=True, track_clicks=True)
    ingest(session, mix(deliveries))
    bars = _bars(_page(app, organiser, campaign))
    # The full track is the 10 mails sent.
    assert bars == pytest.approx(
        {
            "delivered": PLOT_WIDTH * 0.8,
            "bounced": PLOT_WIDTH * 0.2,
            "complaints": PLOT_WIDTH * 0.1,
            "unsubscribes": PLOT_WIDTH * 0.1,
            "opens": PLOT_WIDTH * 0.4,
            "clicks": PLOT_WIDTH * 0.2,
        }
    )


def test_zero_sent_campaign_renders_without_dividing_by_zero(app, session, make_campaign):
    waiting, _, organiser = make_campaign(3, sent=0, track_opens=True, track_clicks=True)
    html = _page(app, organiser, waiting)
    assert "Nothing has been sent yet." in html
    assert {row["rate"] for row in _table(html).values()} == {"\N{EN DASH}"}
    assert set(_bars(html).values()) == {0.0}
    empty, _, organiser = make_campaign(0)
    html = _page(app, organiser, empty)
    assert set(_bars(html).values()) == {0.0}
    assert "timeline-chart" not in html


def test_a_draft_says_its_figures_come_after_the_launch(app, session, make_campaign):
    draft, _, organiser = make_campaign(0, launched=False)
    html = _page(app, organiser, draft)
    assert "Figures appear once the campaign is launched." in html
    assert "results-chart" not in html


def test_timeline_counts_delivered_and_opens_per_hour(app, session, make_campaign):
    campaign, deliveries, organiser = make_campaign(4, track_opens=True)
    first, third = LAUNCHED, LAUNCHED + timedelta(hours=2)
    events = [event("delivered", d, first + timedelta(minutes=10)) for d in deliveries]
    events += [event("open", deliveries[0], first + timedelta(minutes=59))]
    events += [event("open", d, third + timedelta(minutes=1)) for d in deliveries[:2]]
    ingest(session, events)
    hours, later = reports.timeline(campaign.id)
    assert [(h.start, h.delivered, h.opens) for h in hours] == [
        (first, 4, 1),
        (first + timedelta(hours=1), 0, 0),
        (third, 0, 2),
    ]
    assert later == 0
    html = _page(app, organiser, campaign)
    columns = [
        (rect.get("data-series"), float(rect.get("height")))
        for rect in _chart(html, "timeline-chart").iter(f"{SVG}rect")
        if rect.get("data-series")
    ]
    # Heights against the busiest hour's 4 deliveries; the empty hour is drawn empty.
    assert [series for series, _ in columns] == ["delivered", "opens"] * 3
    assert [height for _, height in columns] == pytest.approx(
        [PLOT_HEIGHT, PLOT_HEIGHT / 4, 0, 0, 0, PLOT_HEIGHT / 2]
    )
    rows = [
        [cell_text.strip() for cell_text in row.itertext() if cell_text.strip()]
        for row in _document(html).find(".//table[@id='timeline-table']/tbody").iter("tr")
    ]
    assert rows == [["2026-11-20 09:00", "4", "1"], ["2026-11-20 11:00", "0", "2"]]


def test_page_costs_the_same_statements_for_a_small_and_a_larger_campaign(
    app, session, make_campaign
):
    from helpdesk.extensions import db

    def statements_for(n: int) -> int:
        campaign, deliveries, organiser = make_campaign(n, track_opens=True, track_clicks=True)
        ingest(session, mix(deliveries) + [event("open", d) for d in deliveries])
        client = app.test_client()
        login(client, organiser)
        seen: list[str] = []

        def record(conn, cursor, statement, *args):
            seen.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert client.get(f"/outbound/campaigns/{campaign.id}").status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        return len(seen)

    assert statements_for(10) == statements_for(60)


def test_results_use_no_inline_style_or_script(app, session, make_campaign):
    campaign, deliveries, organiser = make_campaign(10, track_opens=True, track_clicks=True)
    ingest(session, mix(deliveries))
    html = _page(app, organiser, campaign)
    section = next(
        s for s in _document(html).iter("section") if s.get("aria-labelledby") == "results-h"
    )
    elements = list(section.iter())
    assert {chart.get("role") for chart in section.iter(f"{SVG}svg")} == {"img"}
    assert len(list(section.iter(f"{SVG}svg"))) == 2
    assert not [e.tag for e in elements if e.get("style") is not None]
    assert not [e.tag for e in elements if str(e.tag).endswith(("script", "style"))]
    for chart in section.iter(f"{SVG}svg"):
        labels = chart.get("aria-labelledby").split()
        assert [chart.find(f"{SVG}title").get("id"), chart.find(f"{SVG}desc").get("id")] == labels


def test_sent_counts_what_the_provider_took_not_what_waits(app, session, make_campaign):
    campaign, deliveries, organiser = make_campaign(10, sent=4)
    ingest(session, [event("delivered", d) for d in deliveries[:4]])
    html = _page(app, organiser, campaign)
    assert _table(html)["delivered"] == {"recipients": "4", "rate": "100.0%"}
