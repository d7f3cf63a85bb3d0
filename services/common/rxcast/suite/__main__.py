"""Start the rxcast suite on loopback and show its health.

python -m rxcast.suite [--keep-running] [--run-dir DIR] [--data-dir DIR] [--only NAME,...]

SIGTERM and SIGINT (Ctrl-C) stop the suite the same way, while it starts or
while it serves: every service gets SIGTERM and its grace to finish in-flight
calls, stragglers are killed, stale ready files go, and so does the scratch
run directory if the suite made it and every service stopped cleanly (it is
kept, with the services' logs, otherwise). A second signal kills the services
at once. The suite then ends by the signal it got, as a shell reports it
(exit status 143 for SIGTERM, 130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from rxcast.suite.launcher import ServiceFailed, live_processes
from rxcast.suite.topology import NODES, Suite, select, start_suite

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Turns SIGTERM/SIGINT into a request to stop; a second one kills the services.

    The handler only sets an event (and, the second time, sends SIGKILL), so
    no exception lands in the middle of starting or stopping a process. The
    main thread polls `requested` rather than waiting on it: a handler setting
    an Event that its own thread is inside wait() on can deadlock.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.signum: int | None = None

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame) -> None:
        if self.signum is None:
            self.signum = signum
            self.requested.set()
            return
        for process in live_processes():
            process.kill(wait=False)


def _print_health(suite: Suite, started: float) -> None:
    print(f"{'process':<18} {'address':<18} {'metrics':<8} health")
    for p in suite.processes.values():
        print(f"{p.name:<18} {p.address:<18} {p.metrics_port:<8} {p.health()}")
    print(f"suite up in {time.monotonic() - started:.1f}s", flush=True)


def _die_by(signum: int) -> None:
    """End the process by `signum` with its default action, so callers (and
    shells, which show 128 + signum) see how it ended."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(1.0)  # the signal is delivered before this returns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-running", action="store_true", help="serve until SIGTERM or Ctrl-C instead of exiting")
    parser.add_argument("--run-dir", type=Path, default=None, help="where logs and ready files go")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where the services keep their state")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated processes to start, with what they depend on (default: all of {[n.name for n in NODES]})",
    )
    args = parser.parse_args()
    try:
        nodes = select([name for name in args.only.split(",") if name]) if args.only else NODES
    except ValueError as exc:
        parser.error(str(exc))

    stop = StopSignals()
    stop.install()
    scratch_run_dir = args.run_dir is None
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="rxcast-suite-"))

    started = time.monotonic()
    print(f"starting the suite (logs in {run_dir}) ...", flush=True)
    suite: Suite | None = None
    codes: dict[str, int | None] = {}
    try:
        suite = start_suite(run_dir, args.data_dir, nodes, cancel=stop.requested)
        _print_health(suite, started)
        if args.keep_running:
            print(f"serving (pid {os.getpid()}); Ctrl-C or SIGTERM stops", flush=True)
            while not stop.requested.is_set():
                time.sleep(0.2)
    except ServiceFailed:
        # start_suite stopped what it had started. Cancelled, or a service that
        # got the same Ctrl-C from the terminal exited before it was ready.
        if stop.signum is None:
            raise
    finally:
        if suite is not None:
            if stop.signum is not None:
                print(f"{signal.Signals(stop.signum).name}: stopping the suite ...", flush=True)
            codes = suite.stop()
    unclean = {name: code for name, code in codes.items() if code != 0}
    if unclean or live_processes():
        print(f"services that did not stop cleanly (exit codes): {unclean}; logs in {run_dir}", file=sys.stderr)
    elif scratch_run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    if stop.signum is not None:
        print("suite stopped", flush=True)
        _die_by(stop.signum)
        return 128 + stop.signum
    return 1 if unclean else 0


if __name__ == "__main__":
    raise SystemExit(main())
