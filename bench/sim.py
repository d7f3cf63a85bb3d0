"""Simulator throughput: records generated per second and peak memory.

    .venv/bin/python bench/sim.py            # the demo world, 7.3M records, all drift kinds
    .venv/bin/python bench/sim.py --large    # plus 200 stores × 500 medications × 365 days (36.5M, ~6 GB)

Each case runs in its own process so its peak memory is its own; the table
quotes the median of the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CASES = {
    "demo 30×100×485": {"n_stores": 30, "n_medications": 100, "n_days": 485, "runs": 3},
    "demo + all drift kinds": {"n_stores": 30, "n_medications": 100, "n_days": 485, "runs": 3, "drift": True},
    "200×100×365": {"n_stores": 200, "n_medications": 100, "n_days": 365, "runs": 3},
}
LARGE = {"200×500×365": {"n_stores": 200, "n_medications": 500, "n_days": 365, "runs": 1}}


def run_case(spec: dict) -> dict:
    """In the child process: simulate `runs` times, report timings and peak RSS."""
    import resource

    from rxcast.sim import DRIFT_KINDS, DriftEvent, Scenario, simulate

    events = ()
    if spec.get("drift"):
        events = tuple(DriftEvent(kind, spec["n_days"] - 100 + 10 * i) for i, kind in enumerate(DRIFT_KINDS))
    scenario = Scenario(
        n_stores=spec["n_stores"], n_medications=spec["n_medications"], n_days=spec["n_days"], seed=1, events=events
    )
    seconds = []
    for _ in range(spec["runs"]):
        started = time.perf_counter()
        world = simulate(scenario)
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    world.actuals()
    actuals_seconds = time.perf_counter() - started
    day_seconds = []
    for day in range(0, len(world.days), max(1, len(world.days) // 20)):
        started = time.perf_counter()
        world.records_for_day(day)
        day_seconds.append(time.perf_counter() - started)
    return {
        "records": len(world.records),
        "seconds": statistics.median(seconds),
        "actuals_seconds": actuals_seconds,
        "day_ms": 1000 * statistics.median(day_seconds),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="add the 36.5M-record case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child))))
        return 0
    cases = CASES | (LARGE if args.large else {})
    header = f"{'case':<24} {'records':>12} {'runs':>4} {'median s':>9} {'records/s':>12} {'actuals s':>9} {'day ms':>7} {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    for name, spec in cases.items():
        done = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(f"{name:<24} failed: {done.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(done.stdout)
        print(
            f"{name:<24} {r['records']:>12,} {spec['runs']:>4} {r['seconds']:>9.2f} {r['records'] / r['seconds']:>12,.0f} "
            f"{r['actuals_seconds']:>9.2f} {r['day_ms']:>7.2f} {r['peak_mb']:>8,.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
