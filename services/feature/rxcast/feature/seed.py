"""Load inventory history into a running feature service in large batches.

    python -m rxcast.feature.seed --target 127.0.0.1:50051 --scenario default [--days N]
    python -m rxcast.feature.seed --target 127.0.0.1:50051 --records history.parquet

Records go in business-day order (so each batch touches a narrow window of
days) through IngestRecords, the same validated, durable path as any other
client; a progress bar shows records/s. Rejected records are counted and the
first few printed; the exit status is 1 if any were rejected.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from rxcast.clients import FeatureClient
from rxcast.clients.records import normalize


def scenario_records(name: str, days: int | None = None) -> pd.DataFrame:
    """Records of a simulated world: `name` is "default" or a scenario file
    (YAML or JSON); only the first `days` days, or by default the scenario's
    history (the days before those it keeps "to play")."""
    from rxcast import sim

    if name == "default":
        scenario = sim.default_scenario()
    else:
        path = Path(name)
        if not path.exists():
            raise SystemExit(f"--scenario: expected 'default' or a scenario file, got {name!r}")
        scenario = sim.Scenario.from_yaml(path.read_text())
    world = sim.simulate(scenario)
    keep = days if days is not None else (scenario.history_days or scenario.n_days)
    last = world.days[min(keep, len(world.days)) - 1]
    return world.records[world.records["business_day"] <= last]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rxcast.feature.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="the feature service's address")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenario", help="simulate a scenario ('default' or a YAML/JSON file) and load its records")
    source.add_argument("--records", type=Path, help="a parquet or CSV file of records (InventoryRecord columns)")
    parser.add_argument(
        "--days",
        type=int,
        default=None,
        help="with --scenario: load only the first DAYS days (default: the scenario's history)",
    )
    parser.add_argument("--batch-records", type=int, default=200_000, help="records per IngestRecords call")
    parser.add_argument("--timeout", type=float, default=600.0, help="deadline of each call, seconds")
    args = parser.parse_args(argv)

    if args.records is not None:
        raw = pd.read_csv(args.records) if args.records.suffix == ".csv" else pd.read_parquet(args.records)
    else:
        raw = scenario_records(args.scenario, args.days)
    frame = normalize(raw)
    started = time.monotonic()
    with FeatureClient(args.target, timeout=args.timeout) as client:
        outcome = client.ingest_frame(frame, batch_records=args.batch_records, timeout=args.timeout, progress=True)
    accepted, replaced, errors = outcome.accepted, outcome.replaced, outcome.errors
    seconds = time.monotonic() - started
    print(
        f"seeded {accepted} records ({replaced} replaced, {len(errors)} rejected) in {seconds:.1f}s "
        f"({accepted / max(seconds, 1e-9):,.0f} records/s)"
    )
    for error in errors[:10]:
        print(f"  record {error.index}: {error.field}: {error.message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
