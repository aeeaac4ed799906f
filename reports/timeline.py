"""The evidence timeline as numbers for an inline SVG bar chart (no chart library, no network)."""

from __future__ import annotations

from reports.model import Bar, TimelineView

WIDTH, HEIGHT, PAD = 640, 160, 24


def _months(first: str, last: str) -> list[str]:
    y, m = map(int, first.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def build_timeline(per_month: dict[str, int], undated: int = 0) -> TimelineView:
    """Bars of evidence items per month ("YYYY-MM" -> count), every month in the span shown; items
    with no date of their own are counted in the description, never placed on a month."""
    aside = ((" 1 more item of evidence gives no date and is not shown." if undated == 1 else
              f" {undated} more items of evidence give no date and are not shown.") if undated else "")
    if not per_month:
        return TimelineView(WIDTH, HEIGHT, (), (), "No dated evidence yet." + aside)
    months = _months(min(per_month), max(per_month))
    peak = max(per_month.values())
    slot = (WIDTH - 2 * PAD) / len(months)
    bars, axis = [], []
    for i, month in enumerate(months):
        count = per_month.get(month, 0)
        height = (HEIGHT - 2 * PAD) * count / peak if peak else 0
        x = PAD + i * slot
        bars.append(Bar(x=round(x + slot * 0.15, 1), y=round(HEIGHT - PAD - height, 1), width=round(slot * 0.7, 1),
                        height=round(height, 1), label=month, count=count))
        axis.append((round(x + slot / 2, 1), month[2:]))
    busiest = max(per_month, key=per_month.get)
    description = (f"Evidence items per month from {months[0]} to {months[-1]}: {sum(per_month.values())} in all, "
                   f"most in {busiest} ({per_month[busiest]}).{aside}")
    return TimelineView(WIDTH, HEIGHT, tuple(bars), tuple(axis), description)
