"""Benchmark: what a LogPredictions call of 100 rows costs the drift service,
with its state under a data directory.

    .venv/bin/python bench/drift_state.py [--calls 2000] [--rows 100] [--features 20] [--grpc-calls 1000]

In process: `DriftEngine.log_predictions` on one model version (20 numeric
and 2 categorical features, windows closing every 5,000 rows as by default),
so the figures include the window closes and their scoring. Through gRPC:
the same batches sent to a real drift process, one LogPredictions stream of
one request per call, as a predictor sends them. Medians and p99 of each
call; the first 50 calls of each run are not counted (warm-up). "4 threads"
runs the in-process case from four threads at once (several predictors
logging together) and gives the calls per second besides.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from rxcast.drift.engine import DriftEngine, EngineSettings
from rxcast.model.profile import build_reference_profile
from rxcast.runtime.logs import configure_logging

WARMUP = 50
REGIONS = np.array(["north", "south", "east", "west"], dtype=object)


def _columns(rng: np.random.Generator, rows: int, features: int) -> dict[str, np.ndarray]:
    columns = {f"f{i:02d}": rng.normal(float(i), 1.0, rows) for i in range(features)}
    columns["region"] = rng.choice(REGIONS, rows)
    columns["category"] = rng.choice(REGIONS, rows)
    return columns


def _profile(features: int) -> dict:
    rng = np.random.default_rng(1)
    columns = _columns(rng, 5000, features)
    return build_reference_profile(
        columns, ["region", "category"], rng.normal(5.0, 1.0, 5000), rng.normal(size=2000)
    ).to_dict()


def _batches(calls: int, rows: int, features: int):
    rng = np.random.default_rng(2)
    for call in range(calls):
        columns = _columns(rng, rows, features)
        stores = np.array([f"s{call}-{i}" for i in range(rows)], dtype=object)
        medications = np.array([f"m{i}" for i in range(rows)], dtype=object)
        times = np.full(rows, 1_700_000_000_000 + call, dtype=np.int64)
        yield stores, medications, times, columns, rng.normal(5.0, 1.0, rows)


def _summary(name: str, seconds: list[float]) -> str:
    counted = sorted(seconds[WARMUP:])
    p99 = counted[int(0.99 * (len(counted) - 1))]
    return (
        f"| {name} | {len(counted)} | {statistics.median(counted) * 1000:.3f} | "
        f"{statistics.fmean(counted) * 1000:.3f} | {p99 * 1000:.3f} |"
    )


def in_process(calls: int, rows: int, features: int, data_dir: Path | None) -> list[float]:
    engine = DriftEngine(EngineSettings(), data_dir)
    engine.register_reference(1, _profile(features))
    seconds = []
    for stores, medications, times, columns, predictions in _batches(calls, rows, features):
        start = time.perf_counter()
        engine.log_predictions(1, stores, medications, times, columns, predictions)
        seconds.append(time.perf_counter() - start)
    engine.close()
    return seconds


def in_threads(calls: int, rows: int, features: int, data_dir: Path, threads: int = 4) -> tuple[list[float], float]:
    engine = DriftEngine(EngineSettings(), data_dir)
    engine.register_reference(1, _profile(features))
    batches = list(_batches(calls, rows, features))
    seconds: list[float] = []

    def run(part: list) -> None:
        for stores, medications, times, columns, predictions in part:
            start = time.perf_counter()
            engine.log_predictions(1, stores, medications, times, columns, predictions)
            seconds.append(time.perf_counter() - start)

    workers = [threading.Thread(target=run, args=(batches[i::threads],)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    engine.close()
    return seconds, calls / elapsed


def through_grpc(calls: int, rows: int, features: int, root: Path) -> list[float]:
    import json

    from rxcast.drift.v1 import drift_pb2, drift_pb2_grpc
    from rxcast.runtime.channels import connect
    from rxcast.runtime.tls import ClientSettings
    from rxcast.suite.launcher import ServiceProcess

    process = (
        ServiceProcess(
            "drift", root, ["--data-dir", str(root / "data"), "--access-log", "false", "--ignore-features", ""]
        )
        .start()
        .wait_ready()
    )
    try:
        channel = connect(
            process.address, [drift_pb2.DESCRIPTOR.services_by_name["DriftService"]], default_timeout=30.0
        )
        stub = drift_pb2_grpc.DriftServiceStub(channel)
        # A reference is the trainer's to register: this stands in for it.
        with connect(
            process.address, default_timeout=30.0, trust=ClientSettings(identity="trainer").trust()
        ) as trainer:
            drift_pb2_grpc.DriftServiceStub(trainer).RegisterReference(
                drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=json.dumps(_profile(features)))
            )
        requests = []
        for stores, medications, times, columns, predictions in _batches(calls, rows, features):
            values = [
                drift_pb2.FeatureValues(name=n, categorical=drift_pb2.StringList(values=c.tolist()))
                if c.dtype == object
                else drift_pb2.FeatureValues(name=n, numeric=drift_pb2.DoubleList(values=c.tolist()))
                for n, c in columns.items()
            ]
            requests.append(
                drift_pb2.LogPredictionsRequest(
                    model_version=1,
                    keys=drift_pb2.EntityKeys(store_ids=stores.tolist(), medication_ids=medications.tolist()),
                    event_times_unix_ms=times.tolist(),
                    features=values,
                    predictions=predictions.tolist(),
                    source="bench",
                )
            )
        seconds = []
        for request in requests:
            start = time.perf_counter()
            stub.LogPredictions(iter([request]))
            seconds.append(time.perf_counter() - start)
        channel.close()
        return seconds
    finally:
        process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--grpc-calls", type=int, default=1000, help="0 skips the gRPC run")
    args = parser.parse_args()
    configure_logging("bench", "warning")
    print(
        f"{args.rows} rows per LogPredictions call, {args.features} numeric + 2 categorical features; "
        f"windows of 5,000 rows; times in ms\n"
    )
    print("| what | calls | median | mean | p99 |")
    print("|---|---|---|---|---|")
    print(_summary("engine, in memory (no data dir)", in_process(args.calls, args.rows, args.features, None)))
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as root:
        print(_summary("engine, with a data dir", in_process(args.calls, args.rows, args.features, Path(root) / "d")))
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as root:
        seconds, rate = in_threads(args.calls, args.rows, args.features, Path(root) / "d")
        print(_summary(f"engine, with a data dir, 4 threads ({rate:.0f} calls/s)", seconds))
    if args.grpc_calls:
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as root:
            print(
                _summary(
                    "gRPC LogPredictions, real drift process",
                    through_grpc(args.grpc_calls, args.rows, args.features, Path(root)),
                )
            )


if __name__ == "__main__":
    main()
