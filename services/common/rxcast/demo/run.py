"""One demo run: simulate the world, start the suite on loopback with the
demo's settings, seed, train, play, stop, and hand back the ledger."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from rxcast.demo.ledger import Ledger
from rxcast.demo.plan import DemoPlan
from rxcast.demo.player import Player
from rxcast.sim import simulate
from rxcast.suite.topology import Suite, start_suite

#: Settings the played clock needs on top of the suite's wiring: predictors
#: poll every second; the trainer's policies look for a new business day
#: five times a second; the batch predictor runs when the played calendar says
#: so (RunBatch), not on wall-clock hours; the drift service asks the feature
#: service for actuals every second and re-asks two seconds later while a
#: horizon has not elapsed yet (a played day takes about that long).
DEMO_ARGS: dict[str, list[str]] = {
    "predictor-online": ["--poll-interval-seconds", "1"],
    "predictor-batch": ["--poll-interval-seconds", "1", "--batch-interval-seconds", "0"],
    "drift": ["--collect-seconds", "1", "--actuals-retry-seconds", "2"],
    "trainer": ["--policy-poll-seconds", "0.2"],
    # Simulated days pass in about a second: sample every one of them.
    "dashboard": ["--refresh-seconds", "1"],
}


def run_demo(
    plan: DemoPlan,
    work_dir: Path,
    say: Callable[[str], None] = print,
    after_play: Callable[[Suite, Ledger], None] | None = None,
) -> Ledger:
    """Play `plan` on a fresh suite whose state and logs live under `work_dir`.
    `after_play`, if given, runs once the chain has played and before the
    suite stops (to keep the dashboard up, for instance)."""
    started = time.monotonic()
    state_dir, log_dir = work_dir / "state", work_dir / "logs"
    if state_dir.exists():
        shutil.rmtree(state_dir)
    say(
        f"simulating {plan.scenario.n_stores} stores x {plan.scenario.n_medications} medications, "
        f"{plan.scenario.n_days} days ..."
    )
    world = simulate(plan.scenario)
    extra = {
        name: [*DEMO_ARGS.get(name, []), *plan.service_args.get(name, [])] for name in {*DEMO_ARGS, *plan.service_args}
    }
    say(f"starting the suite (logs in {log_dir}) ...")
    suite = start_suite(log_dir, state_dir, extra_args=extra)
    say("suite up: " + ", ".join(f"{name} {p.address}" for name, p in suite.processes.items()))
    say(f"dashboard: http://{suite['dashboard'].address}/ (live while the chain plays)")
    player = Player(plan, world, suite, say)
    try:
        player.seed_history()
        ledger = player.play()
        if after_play is not None:
            after_play(suite, ledger)
    finally:
        player.close()
        suite.stop()
    ledger.wall_seconds = time.monotonic() - started
    return ledger
