"""A scenario's result: a table on stdout, DIR/SCENARIO.json and a PNG chart."""

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.machine import machine
from bench.timeline import Timeline

__all__ = ["Chart", "Result", "common_rows", "draw", "publish"]


@dataclass
class Chart:
    """Throughput (and batch latency) over time from `timeline`, or bars when there is none.
    Marks and spans are in seconds after the timeline's start."""

    title: str
    timeline: Timeline | None = None
    unit: str = "transactions/s"
    latency: bool = True
    latency_label: str = "batch latency (ms)"
    marks: list[tuple[float, str]] = field(default_factory=list)
    spans: list[tuple[float, float, str]] = field(default_factory=list)
    bars: list[tuple[str, float]] = field(default_factory=list)
    lines: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Drawn instead of throughput when there is no timeline: (seconds, value) series by name."""


@dataclass
class Result:
    scenario: str
    fields: dict[str, Any]
    parameters: dict[str, Any]
    rows: list[tuple[str, str]]
    chart: Chart
    ok: bool = True


def publish(result: Result, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    payload = {"scenario": result.scenario, **result.fields, "ok": result.ok, "parameters": result.parameters,
               "machine": machine(), "timestamp": datetime.now(UTC).isoformat(timespec="seconds")}
    json_path, png_path = out / f"{result.scenario}.json", out / f"{result.scenario}.png"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    draw(result.chart, png_path)
    print(table(f"patron bench {result.scenario}", [*result.rows, ("json", str(json_path)), ("chart", str(png_path))]))
    return json_path, png_path


def common_rows(common: dict, unit: str) -> list[tuple[str, str]]:
    """Table rows for the fields `Harness.common` makes."""
    per_member = common["disk_bytes_per_member"]
    roles = ", ".join(f"{name} {seconds}" for name, seconds in common.get("cpu_seconds_per_1000_by_role", {}).items())
    # the tree's own build: a stale engine (a .py edited after `make`) ran about 40% slower in `ingest`, unsaid
    missing = [("NOT COMPILED", f"ran without {'; '.join(common['not_compiled'])}: not the compiled server's "
                                f"figures (make venv, or python setup.py build_ext --inplace)")
               ] if common.get("not_compiled") else []
    return [*missing,
            ("CPU", f"{common['cpu_seconds_per_1000']} s per 1,000 {unit} (serve tree, {common['cpu_seconds']} s)"
                    + (f": {roles}" if roles else "")),
            ("peak RSS", f"{common['peak_rss_bytes'] / 2**20:,.0f} MiB (serve tree)"),
            ("disk", f"{per_member:,.0f} bytes per member with ledger and index, "
                     f"{common['member_record_bytes_per_member']:,.0f} of it the member record "
                     f"({common['members']:,} members)" if per_member else "-")]


def table(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    lines = [title, "-" * max(len(title), width + 24)]
    lines += [f"{label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines)


def draw(chart: Chart, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    with_latency = chart.timeline is not None and chart.latency and bool(chart.timeline.answers)
    figure, axes = pyplot.subplots(2 if with_latency else 1, 1, figsize=(10, 6.5 if with_latency else 4),
                                   sharex=True, squeeze=False)
    top = axes[0][0]
    if chart.lines:
        _lines(top, chart)
    elif chart.timeline is None:
        _bars(top, chart)
    else:
        _throughput(top, chart, chart.timeline)
        if with_latency:
            _latency(axes[1][0], chart, chart.timeline)
    top.set_title(chart.title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _throughput(axis: Any, chart: Chart, timeline: Timeline) -> None:
    counts = [n for _, n in timeline.per_second()]
    axis.stairs(counts, range(len(counts) + 1), fill=True, alpha=0.6, label=chart.unit)
    axis.set_ylabel(chart.unit)
    axis.set_ylim(bottom=0)
    _marks(axis, chart)
    axis.set_xlabel("seconds (answers in each second)")
    axis.grid(alpha=0.3)


def _latency(axis: Any, chart: Chart, timeline: Timeline) -> None:
    rows = timeline.latency_per_second()
    middles = [second + 0.5 for second, _, _ in rows]
    axis.plot(middles, [p50 * 1000 for _, p50, _ in rows], marker=".", label="p50")
    axis.plot(middles, [p99 * 1000 for _, _, p99 in rows], marker=".", label="p99")
    _series_axes(axis, chart, chart.latency_label, "seconds (answers in each second)")


def _series_axes(axis: Any, chart: Chart, label: str, seconds: str) -> None:
    axis.set_ylabel(label)
    axis.set_xlabel(seconds)
    axis.set_ylim(bottom=0)
    axis.legend(loc="best")
    _marks(axis, chart)
    axis.grid(alpha=0.3)


def _marks(axis: Any, chart: Chart) -> None:
    for (first, last, label), color in zip(chart.spans, itertools.cycle(("tab:orange", "tab:green", "tab:cyan"))):
        axis.axvspan(first, last, alpha=0.2, color=color, label=label, zorder=0)
    for (at, label), color in zip(chart.marks, ("tab:red", "tab:green", "tab:purple", "tab:brown"), strict=False):
        axis.axvline(at, color=color, linestyle="--", label=label, zorder=3)
    if chart.spans or chart.marks:
        axis.legend(loc="best")


def _lines(axis: Any, chart: Chart) -> None:
    for name, points in chart.lines.items():
        axis.plot([at for at, _ in points], [value for _, value in points], label=name)
    _series_axes(axis, chart, chart.unit, "seconds")


def _bars(axis: Any, chart: Chart) -> None:
    labels = [label for label, _ in chart.bars]
    values = [value for _, value in chart.bars]
    drawn = axis.bar(labels, values, color=["tab:blue", "tab:gray", "tab:green", "tab:orange"][:len(values)])
    axis.bar_label(drawn, labels=[f"{v:,.0f}" for v in values])
    axis.set_ylabel(chart.unit)
    axis.grid(alpha=0.3, axis="y")
