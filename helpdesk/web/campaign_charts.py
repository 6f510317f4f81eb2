"""The campaign page's charts, laid out on the server for inline SVG.

The pages' Content-Security-Policy allows no inline script and no inline style (not even a
``style`` attribute), so a chart is plain SVG placed by attributes: x, y, width, height and
fill. These functions compute those numbers; templates/campaigns/_results.html draws them,
with the same figures as text and in a table for screen readers and text browsers.
"""

from __future__ import annotations

from dataclasses import dataclass

from helpdesk.outbound.reports import CampaignReport, Figure

# Dark enough for white-on-colour contrast of 4.5:1; each bar also carries its label.
FILLS = {
    "delivered": "#146c43",
    "bounced": "#b02a37",
    "complaints": "#8a4500",
    "unsubscribes": "#5c636a",
    "opens": "#0b5ed7",
    "clicks": "#6f42c1",
}
TRACK_FILL = "#e9ecef"  # the full width: all the mail sent
TIME_FORMAT = "%Y-%m-%d %H:%M"

# Figures chart: label column, bars, then the value column.
WIDTH = 640
LABEL_WIDTH = 140
PLOT_WIDTH = 350
ROW_HEIGHT = 30
BAR_HEIGHT = 20

# Timeline: axis labels on the left, the legend on top, times below.
AXIS_WIDTH = 56
LEGEND_HEIGHT = 24
PLOT_HEIGHT = 120
TIMES_HEIGHT = 24


def count_text(n: int) -> str:
    """A count with thousands separators."""
    return f"{n:,}"


def percent_text(rate: float | None) -> str:
    """A share as a percentage with one decimal; a dash when there is nothing to share."""
    return "\N{EN DASH}" if rate is None else f"{rate:.1%}"


@dataclass(frozen=True)
class Bar:
    """One horizontal bar, its label before it and its value after its track."""

    key: str
    label: str
    text: str  # recipients and share; totals of events are in the description and table
    y: float
    width: float
    fill: str


@dataclass(frozen=True)
class FiguresChart:
    """Horizontal bars of the report's figures, each as long as its share of mail sent."""

    width: int
    height: int
    plot_x: int
    plot_width: int
    bar_height: int
    bars: tuple[Bar, ...]
    description: str
    track_fill: str = TRACK_FILL

    @property
    def value_x(self) -> int:
        """Where the values start, after the bars' track."""
        return self.plot_x + self.plot_width + 8


def _figure_text(figure: Figure) -> str:
    text = f"{count_text(figure.recipients)} ({percent_text(figure.rate)})"
    if figure.events is not None:
        text += f", {count_text(figure.events)} in all"
    return text


def figures_chart(report: CampaignReport) -> FiguresChart:
    """Bars of delivered, bounced, complaints, unsubscribes (and opens, clicks if tracked).

    A bar's length is proportional to its number of recipients, the full track being all
    the mail sent; with nothing sent every bar is empty.
    """
    scale = max([report.sent, *(f.recipients for f in report.figures)])
    bars = tuple(
        Bar(
            key=figure.key,
            label=figure.label,
            text=f"{count_text(figure.recipients)} ({percent_text(figure.rate)})",
            y=index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
            width=round(PLOT_WIDTH * figure.recipients / scale, 2) if scale else 0.0,
            fill=FILLS[figure.key],
        )
        for index, figure in enumerate(report.figures)
    )
    parts = [f"{f.label.lower()} {_figure_text(f)}" for f in report.figures]
    description = f"Of {count_text(report.sent)} mails sent: " + "; ".join(parts) + "."
    return FiguresChart(
        width=WIDTH,
        height=len(bars) * ROW_HEIGHT,
        plot_x=LABEL_WIDTH,
        plot_width=PLOT_WIDTH,
        bar_height=BAR_HEIGHT,
        bars=bars,
        description=description,
    )


@dataclass(frozen=True)
class Column:
    """One hour's column of one series."""

    series: str
    x: float
    y: float
    width: float
    height: float
    fill: str


@dataclass(frozen=True)
class TimelineChart:
    """Columns per hour: delivered, and opens when tracked, side by side."""

    width: int
    height: int
    plot_x: int
    plot_y: int
    plot_width: int
    plot_height: int
    peak: int
    columns: tuple[Column, ...]
    legend: tuple[tuple[str, str], ...]  # (label, fill)
    first: str
    last: str
    description: str


def timeline_chart(report: CampaignReport) -> TimelineChart | None:
    """The hourly timeline, or None when no event has come yet."""
    hours = report.timeline
    if not hours:
        return None
    # (attribute of Hour and key of FILLS, label)
    series = [("delivered", "Delivered")]
    if report.tracks_opens:
        series.append(("opens", "Opens"))
    peak = max(getattr(hour, key) for hour in hours for key, _ in series)
    plot_width = WIDTH - AXIS_WIDTH - 8
    slot = plot_width / len(hours)
    column_width = slot * 0.8 / len(series)
    columns = []
    for index, hour in enumerate(hours):
        for position, (key, _) in enumerate(series):
            value = getattr(hour, key)
            height = round(PLOT_HEIGHT * value / peak, 2) if peak else 0.0
            columns.append(
                Column(
                    series=key,
                    x=round(AXIS_WIDTH + index * slot + slot * 0.1 + position * column_width, 2),
                    y=round(LEGEND_HEIGHT + PLOT_HEIGHT - height, 2),
                    width=round(column_width, 2),
                    height=height,
                    fill=FILLS[key],
                )
            )
    first, last = hours[0].start.strftime(TIME_FORMAT), hours[-1].start.strftime(TIME_FORMAT)
    busiest = []
    for key, label in series:
        top = max(hours, key=lambda hour, key=key: getattr(hour, key))
        busiest.append(
            f"{label.lower()} {count_text(getattr(top, key))} at {top.start.strftime(TIME_FORMAT)}"
        )
    description = (
        f"Events per hour (UTC) from {first} to {last}. Busiest hour: " + "; ".join(busiest) + "."
    )
    return TimelineChart(
        width=WIDTH,
        height=LEGEND_HEIGHT + PLOT_HEIGHT + TIMES_HEIGHT,
        plot_x=AXIS_WIDTH,
        plot_y=LEGEND_HEIGHT,
        plot_width=round(plot_width),
        plot_height=PLOT_HEIGHT,
        peak=peak,
        columns=tuple(columns),
        legend=tuple((label, FILLS[key]) for key, label in series),
        first=first,
        last=last,
        description=description,
    )
