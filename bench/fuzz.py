"""Probe: the whole suite against junk and faults, at a larger scale than the tests.

    .venv/bin/python bench/fuzz.py [--calls-per-method 150] [--seed 1] [--kills 2]

Starts the suite as processes on loopback, then
1. fuzzes every RPC each process lists through reflection (rxcast.suite.fuzz):
   random and malformed requests, undecodable bytes among them, and counts
   INTERNAL/UNKNOWN answers and the worst peak memory one request cost;
2. SIGKILLs each process under load `--kills` times and restarts it on its
   port and data (rxcast.suite.faults), counting acknowledged records and
   predictions lost and whether callers saw UNAVAILABLE then OK;
3. SIGTERMs every process and times its exit.
Prints one table per step and the totals.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rxcast.suite import faults, fuzz
from rxcast.suite.topology import start_suite

GRACE_SECONDS = 5.0
READS = {
    "trainer": "/rxcast.trainer.v1.TrainerService/ListModelVersions",
    "predictor-online": "/rxcast.predictor.v1.PredictorService/GetModelStatus",
    "predictor-batch": "/rxcast.predictor.v1.PredictorService/ListBatchRuns",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-per-method", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs per process")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="rxcast-fuzz-"))
    names = ("feature", "trainer", "drift", "predictor-online", "predictor-batch")
    grace = ["--grace-seconds", str(GRACE_SECONDS), "--access-log", "false"]
    suite = start_suite(root / "run", root / "data", extra_args=dict.fromkeys(names, grace))
    try:
        print(f"{'process':18} {'calls':>7} {'INTERNAL/UNKNOWN':>17} {'worst peak MiB':>15}  worst method")
        reports = {}
        for name in names:
            process = suite[name]
            started = time.monotonic()
            report = fuzz.fuzz_process(process.address, process.process.pid, args.calls_per_method, seed=args.seed)
            reports[name] = report
            print(
                f"{name:18} {report.calls:7d} {report.defects:17d} {report.worst_peak_kib / 1024:15.1f}  "
                f"{report.worst_method}  ({time.monotonic() - started:.0f}s)"
            )
            for finding in report.findings[:5]:
                print(f"    {finding.method}: {finding.code} {finding.details[:160]}")

        print(
            f"\n{'fault':18} {'acked':>7} {'lost':>5} {'UNAVAILABLE':>12} {'other':>6} {'back after s':>13}  survived"
        )
        fault_reports = []
        for _ in range(args.kills):
            for name in names:
                if name == "feature":
                    suite.processes[name], report = faults.feature_probe(suite[name])
                elif name == "drift":
                    suite.processes[name], report = faults.drift_probe(suite[name])
                else:
                    suite.processes[name], report = faults.read_probe(suite[name], READS[name])
                fault_reports.append(report)
                print(
                    f"{name:18} {report.acknowledged:7d} {report.lost:5d} {report.calls['UNAVAILABLE']:12d} "
                    f"{report.unexpected:6d} {report.down_seconds:13.1f}  {'yes' if report.survived else 'NO'}"
                )

        print(f"\n{'SIGTERM':18} {'exit':>5} {'seconds':>8}   (grace {GRACE_SECONDS:g}s)")
        for name in reversed(names):
            code, seconds = fuzz.sigterm_seconds(suite[name], timeout=GRACE_SECONDS + 10)
            print(f"{name:18} {code!s:>5} {seconds:8.1f}")
    finally:
        suite.stop()

    worst = max(reports.values(), key=lambda r: r.worst_peak_kib)
    records = sum(r.lost for r in fault_reports if r.name == "feature")
    predictions = sum(r.lost for r in fault_reports if r.name == "drift")
    print(
        f"\ncalls fuzzed {sum(r.calls for r in reports.values())}, "
        f"INTERNAL/UNKNOWN {sum(r.defects for r in reports.values())}, "
        f"worst memory per request {worst.worst_peak_kib / 1024:.1f} MiB ({worst.worst_method}), "
        f"faults survived {sum(r.survived for r in fault_reports)}/{len(fault_reports)}, "
        f"records lost {records}, predictions lost {predictions}"
    )


if __name__ == "__main__":
    main()
