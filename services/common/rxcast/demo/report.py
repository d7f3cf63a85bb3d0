"""The demo's report: markdown with PNG plots, from a run's ledger."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import itertools

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.transforms import blended_transform_factory

from rxcast.demo import measures as M
from rxcast.demo.ledger import Ledger

COLORS = {"online": "#1f77b4", "batch": "#ff7f0e"}
INCIDENT_COLORS = {
    "data_drift": "#d62728",
    "prediction_drift": "#9467bd",
    "concept_drift": "#2ca02c",
    "data_quality": "#8c564b",
    "performance": "#ff7f0e",
}


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _mark_events(ax, ledger: Ledger) -> None:
    for day, kind in M.event_days(ledger):
        ax.axvline(day, color="black", linestyle="--", linewidth=1)
        ax.annotate(kind, (day, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right", fontsize=8)


def _dates(ax) -> None:
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.grid(alpha=0.3)


def _plot_accuracy(ledger: Ledger, daily, path: Path) -> None:
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    for ax, metric, label in ((axes[0], "mae", "MAE (units over 7 days)"), (axes[1], "wape", "WAPE")):
        for mode in M.MODES:
            ax.plot(daily["day"], daily[f"{mode}_{metric}"], label=mode, color=COLORS[mode], linewidth=1.6)
        ax.set_ylabel(label)
        _mark_events(ax, ledger)
        _dates(ax)
    for run in ledger.batch_runs:
        axes[0].axvline(run.day, color=COLORS["batch"], alpha=0.15, linewidth=3)
    # Promotions as ticks along the foot, one row per line: the online line is
    # promoted most days, and full-height lines hid the curves.
    foot = blended_transform_factory(axes[0].transData, axes[0].transAxes)
    first = ledger.days[0].day if ledger.days else None
    for row, mode in enumerate(M.MODES):
        days = [t.day for t in ledger.trainings if t.promoted and t.alias == mode and (first is None or t.day >= first)]
        axes[0].plot(
            days, [0.03 + 0.05 * row] * len(days), "|", color=COLORS[mode], markersize=9, transform=foot,
            label=f"{mode} version promoted",
        )  # fmt: skip
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title("Daily forecast error against actuals (orange bands: batch runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_latency(ledger: Ledger, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    data = [np.concatenate([np.asarray(getattr(log, mode).latencies_ms) for log in ledger.days]) for mode in M.MODES]
    bins = np.logspace(np.log10(max(min(d.min() for d in data), 0.05)), np.log10(max(d.max() for d in data)), 60)
    for mode, values in zip(M.MODES, data):
        ax.hist(
            values,
            bins=bins,
            alpha=0.6,
            label=f"{mode} ({'Predict' if mode == 'online' else 'lookup'})",
            color=COLORS[mode],
        )
        for q, style in ((50, "-"), (99, ":")):
            ax.axvline(np.percentile(values, q), color=COLORS[mode], linestyle=style)
    ax.set_xscale("log")
    ax.set_xlabel("latency of one call (ms, log scale); solid p50, dotted p99")
    ax.set_ylabel("calls")
    ax.legend()
    ax.set_title("What the inventory app waits for")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_freshness(ledger: Ledger, fresh, path: Path) -> None:
    fig, axes = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True)
    for mode in M.MODES:
        axes[0].step(fresh["day"], fresh[f"{mode}_feature_age_h"] / 24, where="post", label=mode, color=COLORS[mode])
        axes[1].step(fresh["day"], fresh[f"{mode}_model_age_d"], where="post", label=mode, color=COLORS[mode])
    axes[0].set_ylabel("feature age (days)")
    axes[1].set_ylabel("model age (days)")
    axes[0].set_title("Age of the data behind each forecast (simulated time)")
    for ax in axes:
        _mark_events(ax, ledger)
        _dates(ax)
    axes[0].legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_drift(ledger: Ledger, path: Path) -> None:
    # Windows are coloured by the model line they scored, not by version: a daily
    # line serves a hundred versions, and both lines score the same days side by side.
    fig, ax = plt.subplots(figsize=(11, 4))
    offsets = {"online": -0.2, "batch": 0.2, OTHER_LINE: 0.0}
    for line, picked in windows_by_line(ledger).items():
        versions = sorted({r["model_version"] for r in picked})
        name = f"{line} line's windows" if line in M.MODES else f"windows of {line}"
        ax.bar(
            [_window_end(r) + dt.timedelta(days=offsets[line]) for r in picked],
            [len(r["drifted_features"]) for r in picked],
            width=0.4,
            color=COLORS.get(line, "grey"),
            label=f"{name} (v{versions[0]}..v{versions[-1]}, {len(versions)} versions)",
        )
    top = max([len(r["drifted_features"]) for r in ledger.reports] + [1])
    for incident in ledger.incidents:
        color = INCIDENT_COLORS.get(incident.kind, "grey")
        ax.scatter([incident.day], [top + 1], marker="v", s=60, color=color, zorder=3)
    for kind, color in INCIDENT_COLORS.items():
        if any(i.kind == kind for i in ledger.incidents):
            ax.scatter([], [], marker="v", color=color, label=f"incident opened: {kind}")
    ax.set_ylabel("features drifted in the window")
    ax.set_title("Drift timeline: every scored window and every incident")
    _mark_events(ax, ledger)
    _dates(ax)
    ax.set_ylim(0, top + 2)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: The line of a version no training job of the ledger names (a ledger saved
#: before jobs carried their alias): its windows are drawn apart, not dropped.
OTHER_LINE = "other versions"


def windows_by_line(ledger: Ledger) -> dict[str, list[dict]]:
    """The scored windows per model line ("online", "batch", OTHER_LINE), oldest
    first; lines without a window are left out."""
    line_of = {t.version: t.alias for t in ledger.trainings if t.alias in M.MODES}
    lines: dict[str, list[dict]] = {line: [] for line in (*M.MODES, OTHER_LINE)}
    for r in ledger.reports:
        lines[line_of.get(r["model_version"], OTHER_LINE)].append(r)
    return {line: picked for line, picked in lines.items() if picked}


def _window_end(report: dict) -> dt.datetime:
    return dt.datetime.fromtimestamp(report["window_end_ms"] / 1000, dt.UTC).replace(tzinfo=None)


def _plot_versions(ledger: Ledger, fresh, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 3.5))
    for mode in M.MODES:
        ax.step(fresh["day"], fresh[f"{mode}_version"], where="post", label=mode, color=COLORS[mode], linewidth=2)
    for t in ledger.trainings:
        ax.scatter(
            [t.day],
            [t.version],
            marker="o" if t.promoted else "x",
            s=50,
            color="green" if t.promoted else "red",
            zorder=3,
        )
    ax.scatter([], [], marker="o", color="green", label="trained, promoted")
    ax.scatter([], [], marker="x", color="red", label="trained, refused by the gate")
    ax.set_ylabel("model version")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Model version serving each mode")
    _mark_events(ax, ledger)
    _dates(ax)
    # Versions only grow: the lower right stays empty, the upper left holds the first event's label.
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(ledger: Ledger, out: Path) -> Path:
    """Write report.md and its plots into `out`; returns the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    daily = M.daily_accuracy(ledger)
    periods = M.accuracy_by_period(ledger)
    lat = M.latency(ledger)
    fresh_daily = M.freshness_daily(ledger)
    fresh = M.freshness(ledger)
    adapt = M.adaptation(ledger)
    cpu = M.cost(ledger)
    training = M.training_cost(ledger)
    recovery = M.recovery_days(ledger)

    if not daily.empty:
        _plot_accuracy(ledger, daily, out / "accuracy.png")
    _plot_latency(ledger, out / "latency.png")
    _plot_freshness(ledger, fresh_daily, out / "freshness.png")
    _plot_drift(ledger, out / "drift.png")
    _plot_versions(ledger, fresh_daily, out / "versions.png")

    first, last = ledger.days[0].day, ledger.days[-1].day
    overall_online, overall_batch, compared_days = M.pooled_mae(ledger, first, None)
    wape = {mode: np.nan for mode in M.MODES}
    if not daily.empty:
        weights = daily["rows"].to_numpy()
        for mode in M.MODES:
            wape[mode] = float(np.average(daily[f"{mode}_wape"], weights=weights))

    def mean_days(which: str, mode: str):
        known = [a.days_after(getattr(getattr(a, which), f"{mode}_day")) for a in adapt if getattr(a, which)]
        known = [k for k in known if k is not None]
        return float(np.mean(known)) if known else None

    summary = [
        ["MAE, all played days (units over 7 days)", overall_online, overall_batch],
        ["WAPE, all played days (row-weighted)", wape["online"], wape["batch"]],
        ["latency of one call of ~100 keys, p50 (ms)", lat["online"]["p50_ms"], lat["batch"]["p50_ms"]],
        ["latency of one call of ~100 keys, p99 (ms)", lat["online"]["p99_ms"], lat["batch"]["p99_ms"]],
        ["feature age, median (hours)", fresh["online"]["feature_age_h_p50"], fresh["batch"]["feature_age_h_p50"]],
        ["feature age, p99 (hours)", fresh["online"]["feature_age_h_p99"], fresh["batch"]["feature_age_h_p99"]],
        [
            "model age, median (days since its training data ends)",
            fresh["online"]["model_age_d_p50"],
            fresh["batch"]["model_age_d_p50"],
        ],
        [
            "time to adapt: days from an event to serving the next champion (mean over events)",
            mean_days("promoted", "online"),
            mean_days("promoted", "batch"),
        ],
        [
            "... to serving a champion fitted on rows from after the event (mean)",
            mean_days("fitted", "online"),
            mean_days("fitted", "batch"),
        ],
        [
            "... until the daily MAE is back within 10% of its pre-event level (mean)",
            _mean([r["online"] for r in recovery]) if recovery else None,
            _mean([r["batch"] for r in recovery]) if recovery else None,
        ],
        [
            "training jobs of the mode's alias (promoted)",
            f"{training['online']['jobs']} ({training['online']['promoted']})",
            f"{training['batch']['jobs']} ({training['batch']['promoted']})",
        ],
        ["CPU seconds training (the trainer's, per job)", training["online"]["cpu_s"], training["batch"]["cpu_s"]],
        ["CPU seconds per 1,000 forecasts served", cpu["online"]["per_1000"], cpu["batch"]["per_1000"]],
        ["CPU seconds per played day", cpu["online"]["per_day"], cpu["batch"]["per_day"]],
    ]

    lines = [
        f"# rxcast demo report: plan `{ledger.plan_name}`",
        "",
        (
            f"{len(ledger.days)} simulated days played, {first} to {last}; "
            f"{ledger.seed_records:,} history records seeded in {ledger.seed_seconds:.0f} s; "
            f"the whole run took {ledger.wall_seconds / 60:.1f} minutes of wall time. "
            f"Every forecast below went through the services over gRPC on loopback; actuals are the "
            f"feature service's own (`GetActuals`: units dispensed over the 7 days after the forecast), "
            f"and both modes are judged on the same rows ({compared_days} days whose horizon had elapsed)."
        ),
        "",
        (
            "Online: the inventory app calls `Predict` the morning after each business day (fresh "
            "features, the newest champion). Batch: the batch predictor scores every entity every "
            f"{_batch_every(ledger)} days from point-in-time features with the champion of that moment; "
            "the app reads the newest run by `GetBatchPredictions`."
        ),
        "",
        "Drift events injected: "
        + (", ".join(f"**{kind}** on {day}" for day, kind in M.event_days(ledger)) or "none (a world without drift)")
        + ".",
        "",
        "## Online against batch",
        "",
        _table(["measure", "online", "batch"], summary),
        "",
        "## Accuracy over time",
        "",
        "![accuracy](accuracy.png)",
        "",
        _table(
            ["period", "days", "online MAE", "batch MAE", "online WAPE", "batch WAPE"],
            [
                [r["period"], r["days"], r["online_mae"], r["batch_mae"], r["online_wape"], r["batch_wape"]]
                for _, r in periods.iterrows()
            ],
        )
        if not periods.empty
        else "(no day with known actuals)",
        "",
        "## Time to adapt",
        "",
        (
            "Days after each event (simulated time): the first incident for a cause that began after it "
            "(the data day of the window that opened it); then, for "
            "the first model promoted to each mode's alias after it and for the first fitted on rows "
            "from after it (labels arrive a horizon after a row): the day it was trained (the online "
            "alias's) and the first day each mode served its own, and both modes' MAE in between. "
            "The second table: days until each mode's daily MAE is back within 10% of its level over "
            "the 14 days before the event (and stays there two more days)."
        ),
        "",
        _table(
            [
                "event",
                "day",
                "first incident",
                "kind (features)",
                "next champion: trained / online / batch",
                "fitted after it: trained / online / batch",
                "MAE online / batch in between",
            ],
            [
                [
                    a.event,
                    a.day,
                    a.days_after(a.first_incident_day),
                    a.first_incident,
                    _served_cell(a, a.promoted),
                    _served_cell(a, a.fitted),
                    _between(ledger, a.promoted),
                ]
                for a in adapt
            ],
        ),
        "",
        _table(
            ["event", "day", "online MAE before", "days until online is back", "batch MAE before", "days (batch)"],
            [
                [r["event"], r["day"], r.get("online_level"), r["online"], r.get("batch_level"), r["batch"]]
                for r in recovery
            ],
        )
        if recovery
        else "",
        "",
        "## Latency",
        "",
        "![latency](latency.png)",
        "",
        _table(
            ["mode", "calls", "keys per call", "p50 (ms)", "p99 (ms)"],
            [
                [mode, lat[mode]["calls"], lat[mode]["keys_per_call"], lat[mode]["p50_ms"], lat[mode]["p99_ms"]]
                for mode in M.MODES
            ],
        ),
        "",
        "## Freshness",
        "",
        "![freshness](freshness.png)",
        "",
        _table(
            ["mode", "feature age p50 (h)", "feature age p99 (h)", "model age p50 (d)", "model age p99 (d)"],
            [
                [
                    mode,
                    fresh[mode]["feature_age_h_p50"],
                    fresh[mode]["feature_age_h_p99"],
                    fresh[mode]["model_age_d_p50"],
                    fresh[mode]["model_age_d_p99"],
                ]
                for mode in M.MODES
            ],
        ),
        "",
        "## Compute cost",
        "",
        (
            "CPU seconds (user + system) of the processes doing the work, read from the OS around each "
            "phase: online counts the online predictor and the feature service while forecasts are "
            "asked for; batch counts the batch predictor and the feature service during runs, and the "
            "batch predictor during lookups."
        ),
        "",
        _table(
            ["mode", "CPU s", "per 1,000 forecasts served", "per day", "detail"],
            [
                ["online", cpu["online"]["cpu_s"], cpu["online"]["per_1000"], cpu["online"]["per_day"], ""],
                [
                    "batch",
                    cpu["batch"]["cpu_s"],
                    cpu["batch"]["per_1000"],
                    cpu["batch"]["per_day"],
                    (
                        f"runs {cpu['batch']['run_cpu_s']:.2f} s for {cpu['batch']['rows_scored']:,} rows "
                        f"({cpu['batch']['run_per_1000_scored']:.3f} s per 1,000 scored); "
                        f"lookups {cpu['batch']['lookup_cpu_s']:.2f} s"
                    ),
                ],
            ],
        ),
        "",
        "## Drift timeline",
        "",
        "![drift](drift.png)",
        "",
        _table(
            ["incident", "kind", "severity", "model", "features", "cause began", "opened", "status", "reason"],
            [
                [
                    i.incident_id,
                    i.kind,
                    i.severity,
                    f"v{i.model_version}",
                    ", ".join(i.features[:5]) + (" …" if len(i.features) > 5 else ""),
                    i.changed_day or "",
                    i.day,
                    i.status + (f": {i.resolution}" if i.resolution else ""),
                    i.reason[:160].replace("|", "/"),
                ]
                for i in ledger.incidents
            ],
        )
        if ledger.incidents
        else "No incidents.",
        "",
        (
            f"Incidents are what pages and what the trainer's policies follow; the drift service's "
            f"deprecated alert API (`ListAlerts`), which pages nobody and retrains nothing, raised "
            f"{len(ledger.alerts)} alerts in the run."
        ),
        "",
        "## Model versions",
        "",
        "![versions](versions.png)",
        "",
        _table(
            [
                "day",
                "alias",
                "version",
                "window",
                "fitted through",
                "outcome",
                "WAPE model",
                "WAPE champion",
                "WAPE naive",
                "reason",
            ],
            [
                [
                    t.day,
                    t.alias,
                    f"v{t.version}",
                    f"{t.window[0]}..{t.window[1]}",
                    t.trained_through,
                    "promoted" if t.promoted else (t.error[:90] or t.state),
                    t.metrics.get("model", {}).get("wape"),
                    t.metrics.get("champion", {}).get("wape"),
                    t.metrics.get("baseline", {}).get("wape"),
                    t.reason[:120].replace("|", "/"),
                ]
                for t in ledger.trainings
            ],
        ),
        "",
        "Batch runs: " + ", ".join(f"{r.day} v{r.model_version} ({r.state})" for r in ledger.batch_runs) + ".",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _batch_every(ledger: Ledger) -> str:
    days = [r.day for r in ledger.batch_runs]
    gaps = {(b - a).days for a, b in itertools.pairwise(days)}
    return str(min(gaps)) if gaps else "n"


def _served_cell(a: M.Adaptation, served: M.Served | None) -> str:
    if served is None:
        return "none"
    return (
        f"v{served.version}: {_fmt(a.days_after(served.trained_day))} / {_fmt(a.days_after(served.online_day))}"
        f" / {_fmt(a.days_after(served.batch_day))}"
    )


def _between(ledger: Ledger, served: M.Served | None) -> str:
    if served is None or served.online_day is None or served.batch_day is None:
        return "–"
    if served.batch_day <= served.online_day:
        return "–"
    online, batch, days = M.pooled_mae(ledger, served.online_day, served.batch_day)
    return f"{_fmt(online)} / {_fmt(batch)} ({days} d)" if days else "–"
