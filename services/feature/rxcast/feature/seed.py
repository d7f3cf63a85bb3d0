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
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from rxcast.feature.records import FLAGS, NUMBERS
from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.feature.v1 import feature_pb2_grpc
from rxcast.runtime.channels import connect

TEXT_FIELDS = ("store_id", "medication_id", "business_day", "medication_category", "store_region")


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Records with InventoryRecord's field names → the columns and types the protos need, in day order."""
    missing = [c for c in ("store_id", "medication_id", "business_day") if c not in frame.columns]
    if missing:
        raise ValueError(f"records lack required columns {missing}")
    out = pd.DataFrame(index=frame.index)
    for name in TEXT_FIELDS:
        if name == "business_day" and not pd.api.types.is_string_dtype(frame[name]):
            out[name] = pd.to_datetime(frame[name]).dt.strftime("%Y-%m-%d")
        elif name in frame.columns:
            text = frame[name].astype(object)
            out[name] = text.where(text.notna(), "").astype(str)
        else:
            out[name] = ""
    for name in NUMBERS:
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype(float) if name in frame.columns else math.nan
    for name in FLAGS:
        out[name] = frame[name].fillna(False).astype(bool) if name in frame.columns else False
    return out.sort_values("business_day", kind="stable").reset_index(drop=True)


def to_protos(frame: pd.DataFrame) -> list[pb.InventoryRecord]:
    """Normalized records → InventoryRecord messages; NaN numbers stay unset (missing)."""
    records = []
    columns = list(frame.columns)
    for row in frame.itertuples(index=False, name=None):
        fields = {k: v for k, v in zip(columns, row) if not (isinstance(v, float) and v != v)}
        records.append(pb.InventoryRecord(**fields))
    return records


def batches(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def seed(stub, frame: pd.DataFrame, batch_records: int = 50_000, timeout: float = 600.0, progress: bool = True):
    """Send `frame` (normalized) in batches; returns (accepted, replaced, errors)."""
    from tqdm import tqdm

    accepted = replaced = 0
    errors: list[pb.RecordError] = []
    with tqdm(total=len(frame), unit="rec", unit_scale=True, disable=not progress, file=sys.stderr) as bar:
        for offset, part in zip(range(0, len(frame), batch_records), batches(frame, batch_records)):
            answer = stub.IngestRecords(pb.IngestRecordsRequest(records=to_protos(part)), timeout=timeout)
            accepted += answer.accepted_count
            replaced += answer.replaced_count
            for error in answer.errors:
                errors.append(pb.RecordError(index=error.index + offset, field=error.field, message=error.message))
            bar.update(len(part))
    return accepted, replaced, errors


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
    parser.add_argument("--days", type=int, default=None, help="with --scenario: load only the first DAYS days "
                        "(default: the scenario's history)")
    parser.add_argument("--batch-records", type=int, default=200_000, help="records per IngestRecords call")
    parser.add_argument("--timeout", type=float, default=600.0, help="deadline of each call, seconds")
    args = parser.parse_args(argv)

    if args.records is not None:
        raw = pd.read_csv(args.records) if args.records.suffix == ".csv" else pd.read_parquet(args.records)
    else:
        raw = scenario_records(args.scenario, args.days)
    frame = normalize(raw)
    descriptor = pb.DESCRIPTOR.services_by_name["FeatureService"]
    started = time.monotonic()
    with connect(args.target, [descriptor], default_timeout=args.timeout) as channel:
        stub = feature_pb2_grpc.FeatureServiceStub(channel)
        accepted, replaced, errors = seed(stub, frame, args.batch_records, args.timeout)
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
