"""Benchmark of the trainer: training through the service vs. in-process
LightGBM on the same matrix, and publish -> download -> load of a version.

    .venv/bin/python bench/trainer.py                 # the default scenario (~1.1M training rows)
    .venv/bin/python bench/trainer.py --days 120      # a smaller window, for a quick look

Starts a feature service seeded with the simulator's default scenario and a
trainer reading from it (real processes on loopback), then:

- end to end: StartTraining -> SUCCEEDED as the client sees it (loading rows
  from the feature service, training, evaluating, publishing), against
  in-process `lightgbm.train` on the same matrix;
- training only: the job's TRAINING stage (LightGBM Dataset construction
  and boosting inside the service, from the job's own state timestamps)
  against the same in-process `lightgbm.Dataset` + `lightgbm.train`;
- GetLatestVersion: latency and throughput of the call predictors poll;
- publish -> download -> load: a publish of the trained model into the
  trainer's registry (the registry code the service runs, in this process),
  a DownloadModel of that version over gRPC with its checksum checked, and
  ModelBundle.load of the download, as a predictor picks up a new version.

Medians over --repeats runs; ratios are of medians measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the trainer process runs

import lightgbm as lgb
import numpy as np

from rxcast.clients import TrainerClient
from rxcast.model import FeatureEncoder, ModelBundle
from rxcast.model.timebase import day_number, day_text
from rxcast.sim import default_scenario, simulate
from rxcast.suite.launcher import ServiceProcess
from rxcast.trainer.dataset import LoadRequest, split_by_time
from rxcast.trainer.evaluation import BASELINE_FEATURE
from rxcast.trainer.feature_source import FeatureServiceSource
from rxcast.trainer.fit import encoding_manifest, threads_for
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.registry import ModelRegistry
from rxcast.trainer.v1 import trainer_pb2 as pb
from tests.trainer.feature_world import ingest, start_feature_service


def stage_seconds(updates: list[pb.TrainingJob]) -> dict[str, float]:
    """Seconds each state lasted, from the job's server-side timestamps."""
    entered: dict[int, float] = {}
    for job in updates:
        entered.setdefault(job.state, job.updated_time.ToNanoseconds() / 1e9)
    ordered = sorted(entered.items())
    return {
        pb.JobState.Name(state).removeprefix("JOB_STATE_").lower(): ordered[i + 1][1] - start
        for i, (state, start) in enumerate(ordered[:-1])
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="training window length in days (from the first day)")
    parser.add_argument("--rounds", type=int, default=300, help="boosting rounds (the trainer's default)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads, in the service and in-process")
    args = parser.parse_args()

    scenario = default_scenario()
    start_day = day_number(scenario.start_day, "start")
    window = pb.DayWindow(start_day=day_text(start_day), end_day=day_text(start_day + args.days - 1))
    params = TrainingParams(num_boost_round=args.rounds)
    root = Path(tempfile.mkdtemp(prefix="rxcast-bench-trainer-"))

    started = time.perf_counter()
    world = simulate(scenario)
    print(f"simulated {len(world.records):,} records in {time.perf_counter() - started:.1f}s", flush=True)
    feature = start_feature_service(root / "run", root / "feature")
    trainer = None
    try:
        started = time.perf_counter()
        # The window and the horizon after it are all a training job reads.
        last = np.datetime64(day_text(start_day + args.days - 1 + 7 + 1))
        records = world.records[world.records["business_day"].to_numpy() <= last]
        ingest(feature.address, records)
        print(
            f"ingested {len(records):,} records into the feature service in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        trainer = ServiceProcess(
            "trainer",
            root / "run",
            [
                "--feature-address", feature.address, "--registry-dir", str(root / "registry"),
                "--job-dir", str(root / "jobs"), "--num-threads", str(args.threads),
            ],
        ).start().wait_ready(60)  # fmt: skip

        with TrainerClient(trainer.address, timeout=60) as client:
            # The same rows, loaded in this process, for in-process training.
            source = FeatureServiceSource(feature.address)
            began = time.perf_counter()
            request = LoadRequest(
                day_number(window.start_day, "s"), day_number(window.end_day, "e"), (BASELINE_FEATURE,), 7
            )
            data = source.load(request, lambda done, total: None)
            load_seconds = time.perf_counter() - began
            source.close()
            split = split_by_time(data, params.holdout_days, 1, 1)
            manifest = encoding_manifest(split.train)
            encoder = FeatureEncoder(manifest)
            matrix = encoder.encode(split.train.columns).matrix
            threads = threads_for(split.train.rows, args.threads)
            lgb_params = params.lightgbm_params(threads)

            # Service and in-process runs alternate, so that a change in the
            # machine's load hits both alike.
            service_total, service_stages, versions, direct = [], [], [], []
            for run in range(args.repeats):
                request = pb.StartTrainingRequest(
                    window=window, params=pb.TrainingParams(num_boost_round=args.rounds), reason="benchmark"
                )
                began = time.perf_counter()
                job = client.stub.StartTraining(request).job
                updates = list(client.watch(job.job_id, timeout=3600))
                service_total.append(time.perf_counter() - began)
                final = updates[-1]
                if final.state != pb.JOB_STATE_SUCCEEDED:
                    raise SystemExit(f"training failed: {final.error}")
                service_stages.append(stage_seconds(updates))
                versions.append(final.version)
                stages = ", ".join(f"{k} {v:.1f}s" for k, v in service_stages[-1].items())
                print(f"run {run + 1}: service {service_total[-1]:.1f}s ({stages})", flush=True)

                began = time.perf_counter()
                dataset = lgb.Dataset(
                    matrix, split.train.labels, feature_name=list(manifest.feature_names),
                    categorical_feature=encoder.categorical_indices, params=lgb_params, free_raw_data=False,
                )  # fmt: skip
                lgb.train(lgb_params, dataset, num_boost_round=args.rounds)
                direct.append(time.perf_counter() - began)
                print(f"run {run + 1}: in-process {direct[-1]:.1f}s", flush=True)
            evaluation = final.evaluation

            # Publish -> download -> load.
            registry = ModelRegistry(root / "registry")
            trained = registry.get(versions[-1])
            model_text = trained.model_path.read_bytes()
            publishes, downloads, loads = [], [], []
            for run in range(args.repeats):
                began = time.perf_counter()
                published = registry.publish(model_text, trained.manifest.with_updates(reason="benchmark publish"))
                publishes.append(time.perf_counter() - began)
                target = root / f"download-{run}"
                began = time.perf_counter()
                client.download(target, version=published.version)
                downloads.append(time.perf_counter() - began)
                began = time.perf_counter()
                ModelBundle.load(target)
                loads.append(time.perf_counter() - began)
            size = trained.size_bytes

            # Polling the champion, as predictors do.
            client.stub.SetAlias(pb.SetAliasRequest(version=versions[-1], force=True, reason="benchmark"))
            latest_request = pb.GetLatestVersionRequest()
            polls = []
            for _ in range(2000):
                began = time.perf_counter()
                client.stub.GetLatestVersion(latest_request)
                polls.append(time.perf_counter() - began)
            polls.sort()

            def poll_for(seconds: float) -> int:
                calls, end = 0, time.perf_counter() + seconds
                while time.perf_counter() < end:
                    client.stub.GetLatestVersion(latest_request)
                    calls += 1
                return calls

            with ThreadPoolExecutor(4) as pool:
                polls_per_second = sum(pool.map(poll_for, [2.0] * 4)) / 2.0
    finally:
        if trainer is not None:
            trainer.stop()
        feature.stop()

    train_stage = median([s.get("training", 0.0) for s in service_stages])
    load_stage = median([s.get("loading", 0.0) for s in service_stages])
    evaluate_stage = median([s.get("evaluating", 0.0) for s in service_stages])
    publish_stage = median([s.get("publishing", 0.0) for s in service_stages])
    publish = median(publishes)
    in_process = median(direct)
    paired = [s.get("training", 0.0) / d for s, d in zip(service_stages, direct, strict=True)]
    total = median(service_total)
    print()
    print(f"window {window.start_day}..{window.end_day}: {data.rows:,} labelled rows loaded, "
          f"{split.train.rows:,} training rows x {matrix.shape[1]} features, {args.rounds} rounds, "
          f"{threads} LightGBM threads; medians of {args.repeats} runs")  # fmt: skip
    rows = [
        ("service, end to end (StartTraining -> SUCCEEDED)", f"{total:8.2f} s"),
        ("  of which loading rows from the feature service", f"{load_stage:8.2f} s"),
        ("  of which training (Dataset + boosting)", f"{train_stage:8.2f} s"),
        ("  of which evaluating (holdout, champion, profile)", f"{evaluate_stage:8.2f} s"),
        ("  of which publishing", f"{publish_stage:8.2f} s"),
        ("in-process lightgbm.Dataset + lightgbm.train, same matrix", f"{in_process:8.2f} s"),
        ("in-process load of the same rows (FeatureServiceSource)", f"{load_seconds:8.2f} s"),
        ("overhead, training only (service TRAINING / in-process)", f"{train_stage / in_process:8.2f} x"),
        ("  the same, median of the per-run ratios", f"{median(paired):8.2f} x"),
        ("overhead, end to end (service total / in-process train)", f"{total / in_process:8.2f} x"),
        ("end to end without the feature service's load", f"{(total - load_stage) / in_process:8.2f} x"),
        (f"publish to the registry ({size / 1e6:.1f} MB model file)", f"{publish * 1000:8.1f} ms"),
        ("download over gRPC with sha256 check", f"{median(downloads) * 1000:8.1f} ms"),
        ("load (ModelBundle.load, verified)", f"{median(loads) * 1000:8.1f} ms"),
        ("publish -> download -> load", f"{(publish + median(downloads) + median(loads)) * 1000:8.1f} ms"),
        ("GetLatestVersion, one client, p50", f"{polls[len(polls) // 2] * 1000:8.2f} ms"),
        ("GetLatestVersion, one client, p99", f"{polls[int(len(polls) * 0.99)] * 1000:8.2f} ms"),
        ("GetLatestVersion, 4 client threads, calls per second", f"{polls_per_second:8.0f}  "),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  {'median':>10}")
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10}")
    print()
    print(f"holdout {evaluation.holdout.start_day}..{evaluation.holdout.end_day} ({evaluation.model.rows:,} rows)")
    print(f"{'':<16}{'MAE':>9}{'RMSE':>9}{'WAPE':>8}")
    for name, m in (("model", evaluation.model), ("naive baseline", evaluation.baseline)):
        print(f"{name:<16}{m.mae:>9.3f}{m.rmse:>9.3f}{m.wape:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
