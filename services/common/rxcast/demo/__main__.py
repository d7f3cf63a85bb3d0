"""python -m rxcast.demo [--plan default|short|calm] [--out DIR] [--work-dir DIR]

Plays the plan through the whole suite on loopback and writes the report
(markdown and PNG plots) to --out.

SIGTERM stops a demo as Ctrl-C does: the suite it started stops with it, and
the demo exits with 143 (130 for Ctrl-C) without a report."""

from __future__ import annotations

import argparse
import os
import pickle
import signal
import sys
import time
from pathlib import Path

from rxcast.demo.plan import PLANS


def _interrupt_on_sigterm() -> None:
    """SIGTERM unwinds the demo like Ctrl-C, through the code that stops the suite."""

    def interrupt(signum: int, _frame) -> None:
        signal.signal(signum, signal.SIG_IGN)  # once: the unwinding is under way
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rxcast.demo", description=__doc__.splitlines()[2])
    parser.add_argument("--plan", choices=sorted(PLANS), default="default", help="what to play (default: default)")
    parser.add_argument("--out", type=Path, default=Path("reports/demo"), help="where the report goes")
    parser.add_argument(
        "--work-dir", type=Path, default=Path("data/demo"), help="the services' state and logs (emptied first)"
    )
    parser.add_argument(
        "--from-ledger",
        type=Path,
        default=None,
        help="write the report from a ledger saved by an earlier run instead of playing",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("FEAST_USAGE", "False")

    from rxcast.demo.report import write_report

    started = time.monotonic()
    if args.from_ledger:
        with open(args.from_ledger, "rb") as f:
            ledger = pickle.load(f)
    else:
        import grpc

        from rxcast.demo.player import DemoFailed
        from rxcast.demo.run import run_demo
        from rxcast.suite.launcher import ServiceFailed

        _interrupt_on_sigterm()
        try:
            ledger = run_demo(PLANS[args.plan](), args.work_dir, say=lambda line: print(line, flush=True))
        except KeyboardInterrupt:
            stopped_by = signal.SIGTERM if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN else signal.SIGINT
            print(f"demo stopped by {stopped_by.name}\nservice logs: {args.work_dir / 'logs'}", file=sys.stderr)
            return 128 + stopped_by
        except (DemoFailed, ServiceFailed) as exc:
            print(f"demo failed: {exc}\nservice logs: {args.work_dir / 'logs'}", file=sys.stderr)
            return 1
        except grpc.RpcError as exc:
            print(
                f"demo failed: a service answered {exc.code().name}: {exc.details()}\n"
                f"service logs: {args.work_dir / 'logs'}",
                file=sys.stderr,
            )
            return 1
        args.work_dir.mkdir(parents=True, exist_ok=True)
        with open(args.work_dir / "ledger.pickle", "wb") as f:
            pickle.dump(ledger, f)
    path = write_report(ledger, args.out)
    took = "written" if args.from_ledger else "demo took"
    print(f"report: {path} ({took} {time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
