"""Benchmark of the feature service: online lookup overhead, ingest, historical.

    .venv/bin/python bench/feature.py [--stores 30 --medications 100 --days 90]

Starts one feature service process (SQLite online store, or Redis with
--redis-url) on a scratch data directory, seeds it with a generated world
through IngestRecords, starts a second one on a copy of the data directory
with its in-memory online view off (every read goes to Feast's online store,
as before the view), then measures, in one run on this machine:
- gRPC GetOnlineFeatures (default feature service) for 1 and 100 entities
  from both, through the shared client as the predictor calls it (packed,
  decoded into arrays), and from the first answered in columns (decoded
  alike), against Feast's in-process `get_online_features` (`.to_dict()`)
  on the same store, in alternating rounds;
- ingest throughput (records/s through IngestRecords, client to ack);
- historical retrieval rows/s for ~100k entity rows (streamed chunks).
Latencies are medians and 99th percentiles over a bounded number of calls.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("FEAST_USAGE", "False")

from rxcast.clients import FeatureClient
from rxcast.clients.columns import decode_columns
from rxcast.clients.records import normalize
from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.suite.launcher import ServiceProcess

START = pd.Timestamp("2025-01-01")


def generate(stores: int, medications: int, days: int, seed_value: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed_value)
    s, m, d = (
        a.ravel() for a in np.meshgrid(np.arange(stores), np.arange(medications), np.arange(days), indexing="ij")
    )
    n = len(s)
    weekly = 1 + 0.3 * ((d % 7) < 2)
    return pd.DataFrame(
        {
            "store_id": np.char.add("s", s.astype(str)),
            "medication_id": np.char.add("m", m.astype(str)),
            "business_day": (START + pd.to_timedelta(d, unit="D")).strftime("%Y-%m-%d"),
            "units_dispensed": rng.poisson(4 * weekly + (m % 7)).astype(float),
            "units_received": rng.choice([0.0, 0.0, 0.0, 25.0], n),
            "units_on_hand": rng.integers(0, 100, n).astype(float),
            "prescriptions_written": rng.poisson(3, n).astype(float),
            "unit_price": np.round(1 + (m % 50) * 0.7, 2),
            "on_promotion": rng.random(n) < 0.08,
            "stock_out": rng.random(n) < 0.03,
            "medication_category": np.char.add("cat", (m % 12).astype(str)),
            "store_region": np.char.add("region", (s % 5).astype(str)),
        }
    )


def default_features(client: FeatureClient) -> list[str]:
    """The features of the feature service's default feature service (the model's)."""
    listing = client.list_features()
    return next(list(s.features) for s in listing.feature_services if s.name == listing.default_feature_service)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def alternate(cases: dict[str, tuple], rounds: int, warmup: int = 20) -> dict[str, tuple[float, float]]:
    """(p50, p99) ms per case; each case is (call, requests), the requests split
    over `rounds` rounds that take turns, so load from elsewhere falls on all alike."""
    for call, requests in cases.values():
        for request in requests[:warmup]:
            call(request)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(rounds):
        for name, (call, requests) in cases.items():
            for request in requests[r::rounds]:
                started = time.perf_counter()
                call(request)
                samples[name].append(time.perf_counter() - started)
    return {name: percentiles(times) for name, times in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=30)
    parser.add_argument("--medications", type=int, default=100)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--calls", type=int, default=400, help="timed online calls per case")
    parser.add_argument("--historical-rows", type=int, default=100_000)
    parser.add_argument("--batch-records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds the online calls are split into")
    parser.add_argument("--redis-url", default="", help="use this Redis as the online store instead of SQLite")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="rxcast-bench-feature-"))
    online = ["--online-store", "redis", "--redis-url", args.redis_url] if args.redis_url else []
    process = ServiceProcess(
        "feature", root / "run", ["--data-dir", str(root / "data"), "--access-log", "false", *online]
    )
    print(f"starting the feature service (data in {root}) ...", file=sys.stderr)
    process.start().wait_ready(120)
    without_view = None
    rows = []
    try:
        client = FeatureClient(process.address, timeout=600)
        stub = client.stub

        world = normalize(generate(args.stores, args.medications, args.days))
        started = time.perf_counter()
        outcome = client.ingest_frame(world, batch_records=args.batch_records, progress=True)
        accepted, errors = outcome.accepted, outcome.errors
        ingest_seconds = time.perf_counter() - started
        assert accepted == len(world) and not errors, errors[:3]

        shutil.copytree(root / "data", root / "data-feast-reads", ignore=shutil.ignore_patterns(".lock"))
        without_view = ServiceProcess(
            "feature",
            root / "run-feast-reads",
            ["--data-dir", str(root / "data-feast-reads"), "--access-log", "false", "--online-view", "false", *online],
            name="feature-feast-reads",
        )
        without_view.start().wait_ready(120)
        plain = FeatureClient(without_view.address, timeout=600)

        from rxcast.feature.feast_repo import open_store

        feast = open_store(root / "data", "redis" if args.redis_url else "sqlite", args.redis_url, apply=False)
        service = feast.get_feature_service("demand_forecast")
        rng = np.random.default_rng(5)
        stores = world["store_id"].unique()
        medications = world["medication_id"].unique()
        names = default_features(client)

        def as_columns(keys):
            """The same lookup answered in columns (the wire form before `packed`), decoded alike."""
            store_ids, medication_ids = keys
            request = pb.GetOnlineFeaturesRequest(
                keys=pb.EntityKeys(store_ids=list(store_ids), medication_ids=list(medication_ids)), features=names
            )
            return decode_columns(stub.GetOnlineFeatures(request, timeout=10).columns, len(store_ids), names)

        for k in (1, 100):
            picks = [(rng.choice(stores, k), rng.choice(medications, k)) for _ in range(args.calls)]
            feast_requests = [[{"store_id": a, "medication_id": b} for a, b in zip(s, m)] for s, m in picks]
            timed = alternate(
                {
                    "view": (lambda r: client.online(*r, names, timeout=10), picks),
                    "view, columns": (as_columns, picks),
                    "feast reads": (lambda r: plain.online(*r, names, timeout=10), picks),
                    "feast": (
                        lambda r: feast.get_online_features(features=service, entity_rows=r).to_dict(),
                        feast_requests,
                    ),
                },
                args.rounds,
            )
            f50 = timed["feast"][0]
            label = f"online, {k} entit{'y' if k == 1 else 'ies'}:"
            rows.append(
                (
                    f"{label} gRPC GetOnlineFeatures (in-memory view)",
                    *timed["view"],
                    f"{timed['view'][0] / f50:.2f}x Feast p50",
                )
            )
            rows.append(
                (
                    f"{label} gRPC GetOnlineFeatures (in-memory view, answered in columns)",
                    *timed["view, columns"],
                    f"{timed['view, columns'][0] / f50:.2f}x Feast p50",
                )
            )
            rows.append(
                (
                    f"{label} gRPC GetOnlineFeatures (reads Feast's store)",
                    *timed["feast reads"],
                    f"{timed['feast reads'][0] / f50:.2f}x Feast p50",
                )
            )
            rows.append((f"{label} Feast get_online_features in-process", *timed["feast"], ""))
        plain.close()

        n = args.historical_rows
        instants = (
            (START.value // 10**6) + rng.integers(7, args.days, n) * 86_400_000 + rng.integers(0, 86_400_000, n)
        ).tolist()
        request = pb.GetHistoricalFeaturesRequest(
            rows=pb.EntityRows(
                keys=pb.EntityKeys(
                    store_ids=list(rng.choice(stores, n)), medication_ids=list(rng.choice(medications, n))
                ),
                event_times_unix_ms=instants,
            )
        )
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            got = sum(len(c.rows.event_times_unix_ms) for c in stub.GetHistoricalFeatures(request, timeout=600))
            timings.append(time.perf_counter() - started)
            assert got == n
        client.close()
    finally:
        process.stop()
        if without_view is not None:
            without_view.stop()

    print()
    print(f"online store: {'Redis' if args.redis_url else 'SQLite'}")
    print(f"world: {args.stores} stores x {args.medications} medications x {args.days} days = {len(world):,} records")
    print(f"{'measure':<62} {'p50 ms':>9} {'p99 ms':>9}  note")
    for name, p50, p99, note in rows:
        print(f"{name:<62} {p50:>9.3f} {p99:>9.3f}  {note}")
    print(
        f"{'ingest through IngestRecords (batches of ' + str(args.batch_records) + ')':<62} {len(world) / ingest_seconds:>14,.0f} records/s ({ingest_seconds:.1f} s)"
    )
    print(
        f"{'historical, ' + f'{n:,}' + ' entity rows, first call (reads offline files)':<62} {n / timings[0]:>14,.0f} rows/s ({timings[0]:.2f} s)"
    )
    print(
        f"{'historical, ' + f'{n:,}' + ' entity rows, median of next calls':<62} {n / statistics.median(timings[1:]):>14,.0f} rows/s ({statistics.median(timings[1:]):.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
