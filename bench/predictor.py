"""Benchmark of the predictor, next to the limits it runs against.

python bench/predictor.py [--calls N] [--seconds S] [--threads T]

Prints one table, measured in one run on this machine:
- online Predict (1 and 100 keys), through a real predictor process whose
  feature service is a stand-in process answering fixed values;
- ModelInfer (1 row, raw FP64 contents, as tritonclient sends);
- a bare grpcio echo server's round trip, with the same ModelInfer request
  bytes, measured the same way (the transport's limit);
- Booster.predict in-process on the same rows (the model's limit);
- batch scoring rows/s (policy + Dask partitions) next to Booster.predict on
  the same matrix.
Calls go over TLS with client certificates and a token, as deployed (the
credentials of RXCAST_CLIENT_*, `make certs`); bench/trust.py measures what
that costs against plaintext. Latency is sequential calls from one thread (p50/p99); throughput is calls
per second from --threads client threads (median over rounds). The server
measurements alternate in rounds so that load from elsewhere on a shared
machine falls on each alike. Load is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import lightgbm as lgb
import numpy as np
from inference import grpc_predict_v2_pb2 as oip

from rxcast.model import ModelBundle, ModelManifest
from rxcast.model.bundle import sha256_bytes
from rxcast.predictor.batch.scoring import DaskScorer
from rxcast.predictor.frame import EntityBatch, FeatureFrame, split_frame
from rxcast.predictor.serving import ServingModel
from rxcast.predictor.v1 import predictor_pb2 as pb
from rxcast.runtime.channels import connect
from rxcast.suite.launcher import ServiceProcess

HERE = Path(__file__).resolve().parent
NUMERIC = [f"f{i:02d}" for i in range(18)]
CATEGORICAL = {"medication_category": ("analgesic", "antiviral", "statin"), "store_region": ("north", "south")}
FEATURES = (*NUMERIC, *CATEGORICAL)
MODEL = "rxcast-demand"


def train_model(directory: Path, rounds: int = 100, threads: int = 2) -> ModelBundle:
    """A 100-tree model over 20 features, written as a version directory."""
    rng = np.random.default_rng(0)
    rows = 20_000
    matrix = np.column_stack(
        [rng.gamma(2.0, 5.0, (rows, len(NUMERIC)))]
        + [rng.integers(0, len(levels), rows).astype(float) for levels in CATEGORICAL.values()]
    )
    target = matrix[:, 0] * 0.7 + matrix[:, 1] * 0.2 + matrix[:, -1] * 3 + rng.normal(0, 1, rows)
    booster = lgb.train(
        {"objective": "regression", "num_leaves": 31, "verbose": -1, "num_threads": threads},
        lgb.Dataset(matrix, target, feature_name=list(FEATURES), categorical_feature=[18, 19]),
        num_boost_round=rounds,
    )
    text = booster.model_to_string().encode()
    manifest = ModelManifest(
        version=1,
        feature_names=FEATURES,
        categorical_levels=dict(CATEGORICAL),
        horizon_days=7,
        sha256=sha256_bytes(text),
        priors={"global": float(target.mean())},
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.txt").write_bytes(text)
    (directory / "manifest.json").write_text(manifest.to_json())
    return ModelBundle.from_bytes(text, manifest)


#: CPUs the servers run on with --pin (empty: wherever the OS puts them).
SERVER_CPUS: set[int] = set()


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of process `pid` (affinity is per thread, and a started
    server already has its pollers and workers)."""
    if cpus:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), cpus)


class Helper:
    """A server of predictor_standin.py as a child process."""

    def __init__(self, work: Path, kind: str, spec: str = "-", env: dict[str, str] | None = None, name: str = ""):
        self.ready = work / f"{name or kind}.ready.json"
        # A helper of the same name run before in this work dir left its port here.
        self.ready.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "predictor_standin.py"), kind, spec, str(self.ready)],
            env={**os.environ, **(env or {})},
        )

    def address(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"{self.ready.stem} did not start")
            time.sleep(0.05)
        pin(self.process.pid, SERVER_CPUS)
        return f"127.0.0.1:{json.loads(self.ready.read_text())['port']}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def raw_callable(channel: grpc.Channel, method: str):
    """A unary callable sending and receiving bytes, so client-side parsing is the same for every target."""
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


def latency_samples(call, payload: bytes, calls: int) -> list[float]:
    for _ in range(min(100, calls)):
        call(payload, timeout=10)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        call(payload, timeout=10)
        samples.append(time.perf_counter() - started)
    return samples


def percentile_ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3


def throughput(call, payload: bytes, threads: int, calls: int, seconds: float) -> float:
    done = [0] * threads
    stop_at = time.perf_counter() + seconds

    def drive(index: int) -> None:
        for _ in range(calls // threads):
            call(payload, timeout=10)
            done[index] += 1
            if time.perf_counter() > stop_at:
                break

    started = time.perf_counter()
    workers = [threading.Thread(target=drive, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - started)


def compare(targets, rounds: int, calls: int, threads: int, seconds: float) -> list[tuple[float, float, float]]:
    """(p50 ms, p99 ms, calls/s) per target, measured in alternating rounds so
    that load from elsewhere on the machine falls on every target alike."""
    samples: list[list[float]] = [[] for _ in targets]
    rates: list[list[float]] = [[] for _ in targets]
    for _ in range(rounds):
        for i, (call, payload) in enumerate(targets):
            samples[i].extend(latency_samples(call, payload, max(1, calls // rounds)))
        for i, (call, payload) in enumerate(targets):
            rates[i].append(throughput(call, payload, threads, calls * 4 // rounds, seconds / rounds))
    return [(percentile_ms(s, 0.5), percentile_ms(s, 0.99), statistics.median(r)) for s, r in zip(samples, rates)]


def booster_latency(bundle: ModelBundle, matrix: np.ndarray, calls: int) -> tuple[float, float, float]:
    for _ in range(50):
        bundle.booster.predict(matrix, num_threads=1)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        bundle.booster.predict(matrix, num_threads=1)
        samples.append(time.perf_counter() - started)
    return percentile_ms(samples, 0.5), percentile_ms(samples, 0.99), 1.0 / statistics.mean(samples)


def infer_request(matrix: np.ndarray) -> bytes:
    request = oip.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="features", datatype="FP64", shape=list(matrix.shape))
    request.raw_input_contents.append(np.ascontiguousarray(matrix, dtype="<f8").tobytes())
    return request.SerializeToString()


def predict_request(keys: int) -> bytes:
    return pb.PredictRequest(
        keys=pb.EntityKeys(store_ids=[f"S{i}" for i in range(keys)], medication_ids=["M0"] * keys)
    ).SerializeToString()


def population(rows: int) -> FeatureFrame:
    rng = np.random.default_rng(1)
    columns: dict[str, np.ndarray] = {name: rng.gamma(2.0, 5.0, rows) for name in NUMERIC}
    for name, levels in CATEGORICAL.items():
        columns[name] = np.asarray(levels, dtype=str)[rng.integers(0, len(levels), rows)]
    keys = EntityBatch(
        np.char.add("S", (np.arange(rows) % 500).astype(str)), np.char.add("M", (np.arange(rows) // 500).astype(str))
    )
    return FeatureFrame(keys, columns, np.full(rows, 1, dtype=np.int64))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per latency measurement (over all rounds)")
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="time bound of each throughput measurement (over all rounds)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds the measurements are split into")
    parser.add_argument("--threads", type=int, default=8, help="client threads for throughput")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run the servers on one half of the CPUs and this client on the other, so a server's caches "
        "are not evicted by the client between calls (on 2 cores: one each)",
    )
    parser.add_argument("--access-log", action="store_true", help="run the predictor with per-call access logs")
    parser.add_argument("--batch-rows", type=int, default=200_000, help="entities in the batch scoring measurement")
    args = parser.parse_args()
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs at least two CPUs")
        SERVER_CPUS.update(cpus[len(cpus) // 2 :])
        os.sched_setaffinity(0, cpus[: len(cpus) // 2])

    work = Path(tempfile.mkdtemp(prefix="rxcast-bench-predictor-"))
    bundle = train_model(work / "model-1")
    spec = {"numeric": NUMERIC, "categorical": {name: levels[0] for name, levels in CATEGORICAL.items()}}
    features = Helper(work, "features", json.dumps(spec))
    echo_server = Helper(work, "echo")
    predictor = None
    rows: list[tuple[str, str, str, str, str]] = []
    try:
        predictor = ServiceProcess(
            "predictor",
            work,
            ["--mode", "online", "--model-dir", str(work / "model-1"), "--feature-address", features.address(),
             *(["--access-log", "true"] if args.access_log else [])],
        )  # fmt: skip
        predictor.start().wait_ready(60)
        pin(predictor.process.pid, SERVER_CPUS)
        echo_address = echo_server.address()

        one = population(1)
        hundred = population(100)
        one_matrix = bundle.encode(one.columns).matrix
        hundred_matrix = bundle.encode(hundred.columns).matrix

        with connect(predictor.address) as channel, connect(echo_address) as echo_channel:
            echo = raw_callable(echo_channel, "/bench.Echo/Echo")
            infer = raw_callable(channel, "/inference.GRPCInferenceService/ModelInfer")
            predict = raw_callable(channel, "/rxcast.predictor.v1.PredictorService/Predict")

            infer_payload = infer_request(one_matrix)
            predict_one = predict_request(1)
            targets = [
                ("grpcio echo (ModelInfer bytes)", echo, infer_payload),
                ("ModelInfer, 1 row (raw FP64)", infer, infer_payload),
                ("ModelInfer, 100 rows (raw FP64)", infer, infer_request(hundred_matrix)),
                ("grpcio echo (Predict bytes)", echo, predict_one),
                ("Predict, 1 key", predict, predict_one),
                ("Predict, 100 keys", predict, predict_request(100)),
            ]
            measured = compare([(c, p) for _, c, p in targets], args.rounds, args.calls, args.threads, args.seconds)
            for (label, _, _), (p50, p99, rate) in zip(targets, measured):
                rows.append((label, f"{p50:.3f}", f"{p99:.3f}", f"{rate:,.0f}", ""))
            (echo_p50, _, echo_rate), (infer_p50, _, infer_rate) = measured[0], measured[1]
            rows[1] = (*rows[1][:4], f"p50 {infer_p50 / echo_p50:.2f}x echo, rate {infer_rate / echo_rate:.2f}x echo")
            (echo_p50, _, echo_rate), (one_p50, _, _) = measured[3], measured[4]
            rows[4] = (*rows[4][:4], f"p50 {one_p50 / echo_p50:.2f}x echo (includes a feature service call)")

        for label, matrix in (
            ("Booster.predict in-process, 1 row", one_matrix),
            ("Booster.predict in-process, 100 rows", hundred_matrix),
        ):
            p50, p99, rate = booster_latency(bundle, matrix, args.calls)
            rows.append((label, f"{p50:.3f}", f"{p99:.3f}", f"{rate:,.0f}", "1 thread, calls/s"))

        serving = ServingModel.build(bundle)
        frame = population(args.batch_rows)
        matrix = bundle.encode(frame.columns).matrix
        bare = []
        for _ in range(3):
            started = time.perf_counter()
            bundle.booster.predict(matrix)
            bare.append(time.perf_counter() - started)
        scorer = DaskScorer(workers=os.cpu_count() or 2)
        scored = []
        for _ in range(3):
            started = time.perf_counter()
            scorer.score(serving, split_frame(frame, 50_000), 2)
            scored.append(time.perf_counter() - started)
        bare_rate = args.batch_rows / statistics.median(bare)
        scored_rate = args.batch_rows / statistics.median(scored)
        rows.append(
            (f"Booster.predict, {args.batch_rows:,} rows", "", "", f"{bare_rate:,.0f}", "rows/s, default threads")
        )
        rows.append(
            (
                f"batch scoring, {args.batch_rows:,} rows",
                "",
                "",
                f"{scored_rate:,.0f}",
                f"rows/s, {scored_rate / bare_rate:.2f}x Booster.predict",
            )
        )
    finally:
        if predictor is not None:
            predictor.stop()
        features.stop()
        echo_server.stop()

    header = ("measurement", "p50 ms", "p99 ms", "per s", "note")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    pinned = f", servers pinned to CPUs {sorted(SERVER_CPUS)}" if SERVER_CPUS else ""
    print(
        f"predictor benchmark ({os.cpu_count()} cores, {args.threads} client threads, {args.calls} calls per latency{pinned})"
    )
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
