"""The report as text, JSON or one self-contained HTML file.

The HTML's charts are matplotlib figures saved as SVG and inlined: static vector graphics, no
JavaScript, no fonts or scripts fetched from anywhere (docs/report.md says why matplotlib).
matplotlib is imported only here, and only for ``--format html``.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradectl.report.build import Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def render_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def render_text(report: Report) -> str:
    period = report.start if report.start == report.end else f"{report.start} to {report.end}"
    lines = [f"tradectl report {period} (generated {report.generated_at})", ""]
    lines.append("Per rule:")
    if not report.rules:
        lines.append("  no fills and no orders")
    header = (
        f"  {'rule':<20} {'fills':>5} {'bought':>14} {'sold':>14} {'realized P&L':>14} "
        f"{'commissions':>12} {'OER':>6}"
    )
    if report.rules:
        lines.append(header)
    for line in report.rules:
        lines.append(
            f"  {line.rule:<20} {line.fills:>5} {_money(line.bought):>14} {_money(line.sold):>14} "
            f"{_money(line.realized):>14} {_money(line.commissions):>12} "
            f"{line.order_efficiency:>6.2f}"
        )
    lines += ["", "Account:"]
    for day in report.days:
        lines.append(
            f"  {day.day}: NAV open {_money(day.nav_open)} close {_money(day.nav_close)}, "
            f"P&L {_money(day.daily_pnl)}; breaker headroom {_money(day.breaker_headroom)} "
            f"({day.headroom_fraction:.2%} of the open, limit {day.max_daily_loss_fraction:.2%})"
        )
    if report.weights:
        lines += ["", "Allocation weights at the close:"]
        for weight in report.weights:
            flag = "  OUTSIDE BAND" if weight.outside_band else ""
            lines.append(
                f"  {weight.rule:<16} {weight.symbol:<6} weight {weight.weight:7.2%} target "
                f"{weight.target:7.2%} (band ±{weight.drift:.2%}, {weight.status}){flag}"
            )
    lines += ["", f"Orders: {len(report.orders)}"]
    for order in report.orders:
        limit = "" if order.limit is None else f" @ {order.limit:g}"
        lines.append(
            f"  {order.sent_at} {order.rule:<16} {order.action:<6} {order.side:<4} "
            f"{order.quantity:>8g} {order.symbol:<6} {order.order_type}{limit} {order.state}"
        )
    if report.notes:
        lines += ["", "Notes:"] + [f"  - {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


# --- HTML -----------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.text, th.text { text-align: left; }
.chart svg { max-width: 100%; height: auto; }
.bad { color: #b00020; font-weight: bold; }
"""


_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)


def _dates(times: Sequence[str]) -> Any:
    from matplotlib.dates import date2num

    return date2num([datetime.fromisoformat(at) for at in times])  # type: ignore[no-untyped-call]


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    # The Dublin Core block names a few namespaces and nothing a reader needs.
    return _METADATA.sub("", text[text.index("<svg") :])


def _new_figure(width: float, height: float) -> Figure:
    import matplotlib

    # Text stays text (no glyph outlines): smaller files, and nothing to fetch.
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["svg.hashsalt"] = "tradectl"
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def weights_chart(report: Report) -> str | None:
    if not report.weights:
        return None
    figure = _new_figure(8, 0.5 + 0.45 * len(report.weights))
    axes = figure.subplots()
    labels = [f"{w.rule}: {w.symbol}" for w in report.weights]
    rows = list(range(len(report.weights)))
    for row, weight in zip(rows, report.weights, strict=True):
        band = axes.barh(
            row,
            2 * weight.drift,
            left=weight.target - weight.drift,
            height=0.8,
            color="#d9e8f5",
            zorder=1,
        )
        band.patches[0].set_gid(f"band-{weight.rule}-{weight.symbol}")
    bars = axes.barh(
        rows, [w.weight for w in report.weights], height=0.4, color="#1f77b4", zorder=2
    )
    for bar, weight in zip(bars.patches, report.weights, strict=True):
        bar.set_gid(f"weight-{weight.rule}-{weight.symbol}")
    targets = axes.scatter(
        [w.target for w in report.weights], rows, marker="D", s=60, color="#d62728", zorder=3
    )
    targets.set_gid("targets")
    axes.set_yticks(rows, labels)
    axes.invert_yaxis()
    axes.set_xlabel(
        "weight of the allocation's capital (bar), target (red diamond), drift band (light blue)"
    )
    axes.set_title("Allocation weights against targets at the close")
    return _svg(figure)


def nav_chart(report: Report) -> str | None:
    if not report.nav_series:
        return None
    figure = _new_figure(8, 3)
    axes = figure.subplots()
    (line,) = axes.plot(
        _dates([at for at, _ in report.nav_series]),
        [nav for _, nav in report.nav_series],
        color="#2ca02c",
    )
    line.set_gid("nav-line")
    axes.xaxis_date()
    for day in report.days:
        floor = axes.axhline(day.breaker_floor, color="#d62728", linestyle="--", linewidth=1)
        floor.set_gid(f"breaker-floor-{day.day}")
    axes.ticklabel_format(axis="y", style="plain", useOffset=False)
    axes.set_title("NAV through the day (dashed: the circuit breaker's floor)")
    figure.autofmt_xdate()
    return _svg(figure)


def fills_chart(report: Report, symbol: str) -> str:
    figure = _new_figure(8, 3)
    axes = figure.subplots()
    series = report.price_series.get(symbol, [])
    if series:
        (line,) = axes.plot(
            _dates([at for at, _ in series]), [p for _, p in series], color="#7f7f7f"
        )
        line.set_gid(f"price-{symbol}")
    for side, marker, color in (("BUY", "^", "#2ca02c"), ("SELL", "v", "#d62728")):
        fills = [f for f in report.fills if f.symbol == symbol and f.side == side]
        if fills:
            points = axes.scatter(
                _dates([f.time for f in fills]),
                [f.price for f in fills],
                marker=marker,
                s=80,
                color=color,
                zorder=3,
                label=side,
            )
            points.set_gid(f"fills-{side.lower()}-{symbol}")
    axes.xaxis_date()
    axes.set_title(f"{symbol}: fills on the price")
    axes.legend(loc="best")
    figure.autofmt_xdate()
    return _svg(figure)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], text_columns: int = 1) -> str:
    head = "".join(
        f'<th class="text">{html.escape(h)}</th>'
        if i < text_columns
        else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="text">{html.escape(str(c))}</td>'
            if i < text_columns
            else f"<td>{html.escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: Report) -> str:
    period = report.start if report.start == report.end else f"{report.start} to {report.end}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>tradectl report {html.escape(period)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>tradectl report {html.escape(period)}</h1>",
        f"<p>Generated {html.escape(report.generated_at)} from the journal.</p>",
        "<h2>Per rule</h2>",
        _table(
            ["rule", "fills", "bought", "sold", "realized P&L", "commissions", "OER"],
            [
                (
                    r.rule,
                    r.fills,
                    _money(r.bought),
                    _money(r.sold),
                    _money(r.realized),
                    _money(r.commissions),
                    f"{r.order_efficiency:.2f}",
                )
                for r in report.rules
            ],
        ),
        "<h2>Account</h2>",
        _table(
            ["day", "NAV open", "NAV close", "daily P&L", "breaker headroom", "of the open"],
            [
                (
                    d.day,
                    _money(d.nav_open),
                    _money(d.nav_close),
                    _money(d.daily_pnl),
                    _money(d.breaker_headroom),
                    f"{d.headroom_fraction:.2%}",
                )
                for d in report.days
            ],
        ),
    ]
    charts = [("weights", weights_chart(report)), ("nav", nav_chart(report))]
    symbols = sorted({f.symbol for f in report.fills})
    charts += [(f"fills-{symbol}", fills_chart(report, symbol)) for symbol in symbols]
    for name, svg in charts:
        if svg is not None:
            parts.append(f'<div class="chart" id="chart-{html.escape(name)}">{svg}</div>')
    parts += [
        "<h2>Orders</h2>",
        _table(
            ["sent", "rule", "action", "side", "quantity", "symbol", "type", "limit", "state"],
            [
                (
                    o.sent_at,
                    o.rule,
                    o.action,
                    o.side,
                    f"{o.quantity:g}",
                    o.symbol,
                    o.order_type,
                    "" if o.limit is None else f"{o.limit:g}",
                    o.state,
                )
                for o in report.orders
            ],
            text_columns=4,
        ),
    ]
    if report.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{html.escape(note)}</li>" for note in report.notes]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
