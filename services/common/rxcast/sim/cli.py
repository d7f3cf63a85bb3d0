"""Simulate a pharmacy world and write or summarize its records.

Examples:
  python -m rxcast.sim --out records.parquet
  python -m rxcast.sim --event demand_shock@400:multiplier=2.5,categories=[antiviral] --summary event
  python -m rxcast.sim --scenario scenario.yaml --summary day --out records.csv
  python -m rxcast.sim --stores 5 --medications 10 --days 60 --dump-scenario yaml
  python -m rxcast.sim --kinds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

from rxcast.runtime.errors import InvalidArgument
from rxcast.sim.scenario import DRIFT_KINDS, DriftEvent, Scenario, default_scenario, drift_kind_defaults
from rxcast.sim.summary import daily_summary, event_summary
from rxcast.sim.world import World, simulate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rxcast.sim",
        description=__doc__.splitlines()[0],
        epilog="\n".join(__doc__.splitlines()[2:]) + f"\n\nDrift kinds: {', '.join(DRIFT_KINDS)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    world = parser.add_argument_group("the scenario (default: the 30-store, 100-medication, 485-day demo world)")
    world.add_argument("--scenario", type=Path, help="a scenario as JSON or YAML (Scenario.to_dict); flags override it")
    world.add_argument("--seed", type=int)
    world.add_argument("--stores", type=int, dest="n_stores")
    world.add_argument("--medications", type=int, dest="n_medications")
    world.add_argument("--days", type=int, dest="n_days")
    world.add_argument("--start-day", dest="start_day", help="YYYY-MM-DD")
    world.add_argument("--history-days", type=int, dest="history_days")
    world.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="KIND@DAY[:NAME=VALUE,...]",
        help="inject a drift event on a day (index or YYYY-MM-DD); repeatable",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, help="write the records to .parquet or .csv")
    out.add_argument("--events-out", type=Path, help="write the ground-truth event log as JSON")
    out.add_argument(
        "--summary",
        choices=("none", "overview", "day", "event"),
        default="overview",
        help="what to print (default: overview)",
    )
    out.add_argument("--dump-scenario", choices=("json", "yaml"), help="print the scenario and exit")
    out.add_argument("--kinds", action="store_true", help="print each drift kind's parameters and defaults, and exit")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    if args.scenario is not None:
        try:
            text = args.scenario.read_text()
        except OSError as exc:
            raise InvalidArgument(f"--scenario: cannot read {args.scenario}: {exc.strerror}") from None
        scenario = Scenario.from_yaml(text)
    else:
        scenario = default_scenario()
    overrides = {
        name: getattr(args, name)
        for name in ("seed", "n_stores", "n_medications", "n_days", "start_day", "history_days")
        if getattr(args, name) is not None
    }
    if "n_days" in overrides and "history_days" not in overrides and scenario.history_days is not None:
        overrides["history_days"] = min(scenario.history_days, overrides["n_days"])
    events = tuple(DriftEvent.parse(text) for text in args.event)
    return dataclasses.replace(scenario, **overrides, events=(*scenario.events, *events))


def write_records(world: World, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename: a reader never
    sees half a file, and a failed write leaves any earlier file intact."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InvalidArgument(f"--out: must end in .parquet or .csv, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if suffix == ".parquet":
            world.records.to_parquet(tmp, index=False)
        else:
            records = world.records.copy()
            records["business_day"] = records["business_day"].dt.strftime("%Y-%m-%d")
            records.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _progress_bar(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=None, unit="pairs", desc="simulating", file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.kinds:
        print(yaml.safe_dump(drift_kind_defaults(), sort_keys=False), end="")
        return 0
    try:
        scenario = scenario_from_args(args)
        if args.dump_scenario:
            print(scenario.to_json() if args.dump_scenario == "json" else scenario.to_yaml(), end="\n")
            return 0
        update, bar = _progress_bar(args.quiet)
        try:
            world = simulate(scenario, progress=update)
        finally:
            if bar is not None:
                bar.close()
        if args.out:
            write_records(world, args.out)
        if args.events_out:
            args.events_out.write_text(json.dumps([e.to_dict() for e in world.events], indent=2) + "\n")
    except InvalidArgument as exc:
        parser.error(exc.message)
    _print_summary(world, args)
    return 0


def _print_summary(world: World, args: argparse.Namespace) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 1000):
        if args.summary == "overview":
            r = world.records
            print(world)
            print(
                f"days {world.days[0]:%Y-%m-%d}..{world.days[-1]:%Y-%m-%d}, history {world.scenario.history_days or len(world.days)} days, "
                f"units dispensed {r['units_dispensed'].sum():,.0f}, stock-out rate {r['stock_out'].mean():.2%}, "
                f"promotion rate {r['on_promotion'].mean():.2%}"
            )
            if world.events:
                print(event_summary(world).to_string(index=False))
        elif args.summary == "day":
            print(daily_summary(world).to_string(float_format=lambda v: f"{v:.3f}"))
        elif args.summary == "event":
            print(event_summary(world).to_string(index=False))
        if args.out:
            print(f"wrote {len(world.records):,} records to {args.out}")
