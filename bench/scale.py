"""The suite's scale curve: how its costs grow with the number of entities.

    .venv/bin/python bench/scale.py [--sizes 3000,30000,300000] [--days 21] [--max-records 630000] [--redis]

For each size (stores x 100 medications) it starts the real services on a
scratch directory, in this order, and measures on this machine (calls over
TLS with RXCAST_CLIENT_*'s credentials, as deployed: `make certs` first):
- ingest: records/s through IngestRecords (client to acknowledgement);
- training: one trainer job over the world (100 rounds, 7 holdout days), when
  the world has enough days for it; otherwise the last size's model is reused;
- online: GetOnlineFeatures (through the shared client, as the predictor reads
  them), Predict and (for the ratio) ModelInfer of the same rows, at 1 and 100
  keys, p50/p99 in alternating rounds;
- batch: one predictor batch run over every entity (time and rows/s);
- memory: each service's resident set size at the end.
Worlds are capped at --max-records records (fewer days at the larger sizes:
by default 21 days up to 30k entities, 2 days at 300k). Records arrive day
by day, so each ingest batch rewrites the online row of every entity it
touches: ingest cost follows entities x batches.
With --redis the largest size uses a redis-server started here (on a free
loopback port) as the online store. Drift scoring is not part of this run:
bench/drift.py measures it against the number of rows scored.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.binaries starts redis-server

from feature import alternate, default_features, generate
from inference import grpc_predict_v2_pb2 as oip

from rxcast.clients import FeatureClient
from rxcast.clients.predictor import PredictorClient
from rxcast.clients.records import normalize
from rxcast.clients.trainer import TrainerClient
from rxcast.model import ModelBundle, timebase
from rxcast.predictor.v1 import predictor_pb2 as ppb
from rxcast.runtime import channels
from rxcast.suite.launcher import ServiceProcess
from rxcast.trainer.v1 import trainer_pb2 as tpb
from tests import binaries

MEDICATIONS = 100
HOLDOUT_DAYS = 7
#: Fewest days a world needs for a training job: the rolling features' warm-up,
#: the holdout and the horizon after it.
TRAIN_MIN_DAYS = 21
MODEL_NAME = "rxcast-demand"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    try:
        return binaries.redis_server(workdir)
    except binaries.BinaryError as exc:
        raise SystemExit(f"--redis: {exc}") from None


def train(root: Path, feature: ServiceProcess, first_day: str, last_day: str, model_dir: Path) -> float:
    """Seconds for one training job (start to SUCCEEDED); the model lands in `model_dir`."""
    trainer = ServiceProcess(
        "trainer",
        root / "run",
        ["--feature-address", feature.address, "--registry-dir", str(root / "registry"),
         "--job-dir", str(root / "jobs"), "--access-log", "false"],
    ).start().wait_ready(120)  # fmt: skip
    try:
        client = TrainerClient(trainer.address, timeout=600)
        params = tpb.TrainingParams(num_boost_round=100, holdout_days=HOLDOUT_DAYS)
        started = time.perf_counter()
        started_job = client.start_training(
            tpb.StartTrainingRequest(
                window=tpb.DayWindow(start_day=first_day, end_day=last_day), params=params, reason="bench/scale.py"
            )
        )
        for job in client.watch(started_job.job_id):
            if job.state in (tpb.JOB_STATE_SUCCEEDED, tpb.JOB_STATE_FAILED):
                break
        seconds = time.perf_counter() - started
        if job.state != tpb.JOB_STATE_SUCCEEDED:
            raise SystemExit(f"training failed: {job.error}")
        model_dir.mkdir(parents=True, exist_ok=True)
        client.download_to(model_dir, version=job.version)
        client.close()
        return seconds
    finally:
        trainer.stop()


def infer_request(matrix: np.ndarray) -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name=MODEL_NAME)
    request.inputs.add(name="features", datatype="FP64", shape=list(matrix.shape))
    request.raw_input_contents.append(np.ascontiguousarray(matrix, dtype="<f8").tobytes())
    return request


def measure_size(args, entities: int, root: Path, model_dir: Path, redis_url: str) -> dict[str, object]:
    stores = max(1, entities // MEDICATIONS)
    days = max(1, min(args.days, args.max_records // (stores * MEDICATIONS)))
    world = normalize(generate(stores, MEDICATIONS, days))
    first_day, last_day = world["business_day"].min(), world["business_day"].max()
    as_of_ms = int(timebase.day_end_ms(timebase.day_number(last_day, "last_day")))
    out: dict[str, object] = {"entities": stores * MEDICATIONS, "days": days, "records": len(world)}
    online = ["--online-store", "redis", "--redis-url", redis_url] if redis_url else []
    out["online store"] = "Redis" if redis_url else "SQLite"
    services: dict[str, ServiceProcess] = {}
    try:
        services["feature"] = feature = ServiceProcess(
            "feature", root / "run", ["--data-dir", str(root / "feature"), "--access-log", "false", *online]
        ).start().wait_ready(300)  # fmt: skip
        client = FeatureClient(feature.address, timeout=600)
        started = time.perf_counter()
        outcome = client.ingest_frame(world, batch_records=args.batch_records)
        seconds = time.perf_counter() - started
        assert outcome.accepted == len(world) and not outcome.errors, outcome.errors[:3]
        out["ingest records/s"] = len(world) / seconds

        if days >= TRAIN_MIN_DAYS:
            out["training s"] = train(root / "trainer", feature, first_day, last_day, model_dir)
        elif not (model_dir / "manifest.json").exists():
            raise SystemExit(f"--days {args.days}: the first size needs {TRAIN_MIN_DAYS} days to train a model")
        bundle = ModelBundle.load(model_dir)

        services["predictor"] = predictor = ServiceProcess(
            "predictor",
            root / "run",
            ["--mode", "online", "--model-dir", str(model_dir), "--feature-address", feature.address,
             "--access-log", "false", "--model-name", MODEL_NAME],
        ).start().wait_ready(120)  # fmt: skip
        rng = np.random.default_rng(3)
        store_ids, medication_ids = world["store_id"].unique(), world["medication_id"].unique()
        # Keys the model has seen, so every Predict row goes through the model (a model
        # reused from a smaller size would answer unseen stores by their prior).
        seen = (bundle.manifest.entities_seen or {}).get("store_ids")
        if seen:
            store_ids = np.intersect1d(store_ids, np.asarray(seen, dtype=object))
        cases = {}
        channel = channels.with_options(predictor.address, (), default_timeout=30.0)
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=oip.ModelInferRequest.SerializeToString,
            response_deserializer=oip.ModelInferResponse.FromString,
        )
        predictor_client = PredictorClient(predictor.address, timeout=30)
        names = default_features(client)
        for k in (1, 100):
            picks = [(list(rng.choice(store_ids, k)), list(rng.choice(medication_ids, k))) for _ in range(args.calls)]
            predicts = [ppb.PredictRequest(keys=ppb.EntityKeys(store_ids=s, medication_ids=m)) for s, m in picks]
            cases[f"online lookup, {k} key(s)"] = (lambda r: client.online(*r, names, timeout=30), picks)
            cases[f"Predict, {k} key(s)"] = (lambda r: predictor_client.stub.Predict(r, timeout=30), predicts)
            features = client.online(picks[0][0], picks[0][1], bundle.manifest.feature_names)
            matrix = bundle.encode(features.values).matrix
            cases[f"ModelInfer, {k} row(s)"] = (lambda r: infer(r, timeout=30), [infer_request(matrix)] * args.calls)
        for name, (p50, p99) in alternate(cases, args.rounds, warmup=10).items():
            out[f"{name} p50 ms"], out[f"{name} p99 ms"] = p50, p99
        channel.close()
        predictor_client.close()

        services["batch predictor"] = batch = ServiceProcess(
            "predictor",
            root / "run",
            ["--mode", "batch", "--model-dir", str(model_dir), "--feature-address", feature.address,
             "--data-dir", str(root / "batch"), "--batch-interval-seconds", "0", "--access-log", "false"],
            name="predictor-batch",
        ).start().wait_ready(120)  # fmt: skip
        batch_client = PredictorClient(batch.address, timeout=3600)
        started = time.perf_counter()
        for run in batch_client.run_batch(as_of_ms, reason="bench/scale.py"):
            last = run
        out["batch s"] = time.perf_counter() - started
        out["batch rows/s"] = last.rows_total / out["batch s"]
        batch_client.close()
        client.close()
        for name, process in services.items():
            out[f"{name} RSS MB"] = rss_mb(process.process.pid)
    finally:
        for process in services.values():
            process.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,30000,300000", help="entities per size, comma-separated")
    parser.add_argument("--days", type=int, default=21, help="business days per world (fewer past --max-records)")
    parser.add_argument("--max-records", type=int, default=630_000, help="most records a world may have")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per online case")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds the online calls are split into")
    parser.add_argument("--batch-records", type=int, default=200_000, help="records per IngestRecords call")
    parser.add_argument("--redis", action="store_true", help="Redis as the online store at the largest size")
    parser.add_argument(
        "--model-dir", default="", help="a model version directory to serve where no size trains one (default: train)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="rxcast-bench-scale-"))
    model_dir = Path(args.model_dir) if args.model_dir else work / "model"
    results = []
    redis = None
    try:
        for i, entities in enumerate(sizes):
            redis_url = ""
            if args.redis and i == len(sizes) - 1:
                redis, port = start_redis(work)
                redis_url = f"redis://127.0.0.1:{port}/0"
            print(f"size {entities:,} entities ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            results.append(measure_size(args, entities, work / f"size-{entities}", model_dir, redis_url))
            print(f"  done in {time.monotonic() - started:.0f} s: {results[-1]}", file=sys.stderr, flush=True)
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(10)
    print_table(results)
    return 0


def cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def print_table(results: list[dict]) -> None:
    names = []
    for result in results:
        names.extend(n for n in result if n not in names)
    width = max(len(n) for n in names)
    print(f"{'measure':<{width}}  " + "  ".join(f"{cell(r['entities']):>12}" for r in results))
    for name in names:
        print(f"{name:<{width}}  " + "  ".join(f"{cell(r.get(name)):>12}" for r in results))
    first, last = results[0], results[-1]
    print()
    for k in ("1 key(s)", "100 key(s)"):
        lookup = f"online lookup, {k} p50 ms"
        print(f"online lookup p50, {k}: largest / smallest = {last[lookup] / first[lookup]:.2f}x")
    print(f"batch rows/s: largest / smallest = {last['batch rows/s'] / first['batch rows/s']:.2f}x")
    for result in results:
        ratio = result["Predict, 100 key(s) p50 ms"] / result["ModelInfer, 100 row(s) p50 ms"]
        print(f"{cell(result['entities'])} entities: Predict 100 keys p50 / ModelInfer 100 rows p50 = {ratio:.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
