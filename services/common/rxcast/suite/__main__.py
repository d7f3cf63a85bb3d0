"""Start the rxcast suite on loopback and show its health.

python -m rxcast.suite [--keep-running] [--run-dir DIR] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from rxcast.suite.topology import start_suite


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-running", action="store_true", help="serve until Ctrl-C instead of exiting")
    parser.add_argument("--run-dir", type=Path, default=None, help="where logs and ready files go")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where the services keep their state")
    args = parser.parse_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="rxcast-suite-"))

    started = time.monotonic()
    print(f"starting the suite (logs in {run_dir}) ...", flush=True)
    suite = start_suite(run_dir, args.data_dir)
    try:
        print(f"{'process':<18} {'address':<18} {'metrics':<8} health")
        for p in suite.processes.values():
            print(f"{p.name:<18} {p.address:<18} {p.metrics_port:<8} {p.health()}")
        print(f"suite up in {time.monotonic() - started:.1f}s")
        if args.keep_running:
            print("serving; Ctrl-C stops", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        suite.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
