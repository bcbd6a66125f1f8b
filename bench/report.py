"""`--report DIR` of every `hanko bench`: the report as JSON and an HTML page with plots
(PNG, drawn by matplotlib without a display) of throughput and latency percentiles
against the peers of the same run. The page is one file beside its images and the
JSON, so a folder of runs can be copied, served or attached as it is."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec


class Chart(msgspec.Struct, frozen=True):
    """Bars: one group per label, one bar per series within it."""

    title: str
    ylabel: str
    labels: list[str]
    series: dict[str, list[float]]
    note: str = ""


def throughput_and_latency(
    rows: Mapping[str, Mapping[str, float]],
    *,
    what: str,
    rate_key: str = "requests_per_s",
    unit: str = "requests/s",
    percentiles: Sequence[str] = ("p50_ms", "p75_ms", "p90_ms", "p99_ms"),
) -> list[Chart]:
    """The two charts most benchmarks want from rows of peers (or runs): the rate of
    each, and its latency percentiles side by side."""
    names = list(rows)
    rates = [float(rows[n].get(rate_key, math.nan)) for n in names]
    charts = [Chart(title=f"{what}: throughput", ylabel=unit, labels=names, series={unit: rates})]
    present = [p for p in percentiles if any(p in rows[n] for n in names)]
    if present:
        charts.append(
            Chart(
                title=f"{what}: latency percentiles",
                ylabel="ms",
                labels=names,
                series={
                    p.removesuffix("_ms"): [float(rows[n].get(p, math.nan)) for n in names]
                    for p in present
                },
            )
        )
    return charts


def _draw(chart: Chart, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        count = max(len(chart.series), 1)
        width = 0.8 / count
        for i, (name, values) in enumerate(chart.series.items()):
            xs = [x + (i - (count - 1) / 2) * width for x in range(len(chart.labels))]
            bars = ax.bar(xs, [0 if math.isnan(v) else v for v in values], width, label=name)
            ax.bar_label(bars, labels=[_short(v) for v in values], fontsize=7, padding=2)
        ax.set_xticks(
            range(len(chart.labels)), chart.labels, rotation=15 if len(chart.labels) > 4 else 0
        )
        ax.set_ylabel(chart.ylabel)
        ax.set_title(chart.title)
        if len(chart.series) > 1:
            ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def _short(v: float) -> str:
    if math.isnan(v):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _scalars(report: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """The report's scalar values, by dotted name (the page's table)."""
    out: list[tuple[str, Any]] = []
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _scalars(value, name + ".")
        elif not isinstance(value, list):
            out.append((name, value))
    return out


def write_report(
    directory: Path, bench: str, report: Mapping[str, Any], charts: Sequence[Chart]
) -> Path:
    """DIR/<bench>.json, DIR/<bench>-<n>.png and DIR/<bench>.html; the page's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{bench}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    images = []
    for n, chart in enumerate(charts, 1):
        name = f"{bench}-{n}.png"
        _draw(chart, directory / name)
        images.append((name, chart))
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>hanko bench {e(bench)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "img{max-width:100%;border:1px solid #ddd;margin:1em 0}"
        "table{border-collapse:collapse;font-size:90%}td{border:1px solid #ddd;padding:2px 8px}"
        "</style></head><body>",
        f"<h1>hanko bench {e(bench)}</h1>",
        f"<p>Run at {e(when)}. Ratios hold across machines; absolute figures do not. "
        f'The whole report: <a href="{e(bench)}.json">{e(bench)}.json</a>.</p>',
    ]
    for name, chart in images:
        parts.append(f"<h2>{e(chart.title)}</h2>")
        parts.append(f'<img src="{e(name)}" alt="{e(chart.title)}" width="800" height="450">')
        if chart.note:
            parts.append(f"<p>{e(chart.note)}</p>")
    parts.append("<h2>Figures</h2><table>")
    parts += [f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in _scalars(report)]
    parts.append("</table></body></html>")
    page = directory / f"{bench}.html"
    page.write_text("\n".join(parts) + "\n")
    return page


def _rate_key(row: Mapping[str, Any]) -> str | None:
    keys = [k for k, v in row.items() if k.endswith("_per_s") and isinstance(v, int | float)]
    return keys[0] if keys else None


def charts_from(report: Mapping[str, Any], bench: str) -> list[Chart]:
    """Charts found in a report's shape: a table of two or more rows that each carry a
    rate (`*_per_s`) gives a throughput chart, and a latency chart when the rows carry
    percentiles (`p50_ms`...); two or more scalar rates side by side give one chart; a
    list of levels (rows of peers, keyed by the level's first field) gives each peer's
    rate across the levels."""
    charts: list[Chart] = []

    def visit(node: Any, path: str) -> None:
        what = f"{bench} {path}".strip()
        if isinstance(node, list):
            levels = [r for r in node if isinstance(r, Mapping)]
            if levels:
                charts.extend(_levels(levels, what))
            return
        if not isinstance(node, Mapping):
            return
        rows = {k: v for k, v in node.items() if isinstance(v, Mapping) and _rate_key(v)}
        if len(rows) >= 2:
            key = _rate_key(next(iter(rows.values())))
            if key is not None:
                same = {k: v for k, v in rows.items() if key in v}
                unit = key.removesuffix("_per_s").replace("_", " ") + "/s"
                charts.extend(throughput_and_latency(same, what=what, rate_key=key, unit=unit))
        rates = {
            k: float(v)
            for k, v in node.items()
            if k.endswith("_per_s") and isinstance(v, int | float)
        }
        if len(rates) >= 2:
            charts.append(
                Chart(
                    title=f"{what}: rates",
                    ylabel="per second",
                    labels=list(rates),
                    series={"per second": list(rates.values())},
                )
            )
        for k, v in node.items():
            if isinstance(v, Mapping | list):
                visit(v, f"{path} {k}".strip())

    visit(report, "")
    return charts


def _levels(levels: list[Mapping[str, Any]], what: str) -> list[Chart]:
    first = next(iter(levels[0]))
    labels = [f"{first}={r.get(first)}" for r in levels]
    peers = [k for k, v in levels[0].items() if isinstance(v, Mapping) and _rate_key(v)]
    if not peers:
        return []
    key = _rate_key(levels[0][peers[0]])
    assert key is not None

    def column(peer: str, field: str) -> list[float]:
        return [float(r.get(peer, {}).get(field, math.nan)) for r in levels]

    unit = key.removesuffix("_per_s").replace("_", " ") + "/s"
    charts = [
        Chart(
            title=f"{what}: throughput by level",
            ylabel=unit,
            labels=labels,
            series={p: column(p, key) for p in peers},
        )
    ]
    for q in ("p50_ms", "p99_ms"):
        if any(q in r.get(p, {}) for r in levels for p in peers):
            charts.append(
                Chart(
                    title=f"{what}: {q.removesuffix('_ms')} latency by level",
                    ylabel="ms",
                    labels=labels,
                    series={p: column(p, q) for p in peers},
                )
            )
    return charts


def maybe_write(args: Any, bench: str, report: Mapping[str, Any]) -> None:
    """`--report DIR` given: write the page and say where (stderr; stdout is the report)."""
    directory = getattr(args, "report", None)
    if directory is None:
        return
    import sys

    page = write_report(Path(directory), bench, report, charts_from(report, bench))
    sys.stderr.write(f"bench {bench}: report written to {page}\n")
