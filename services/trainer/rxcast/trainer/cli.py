"""Command-line client of the trainer service.

    python -m rxcast.trainer.cli train --window 2025-01-01:2025-12-31 --promote --follow
    python -m rxcast.trainer.cli versions
    python -m rxcast.trainer.cli alias 7 --reason "hand-checked"
    python -m rxcast.trainer.cli rollback --reason "bad forecasts in the north"
    python -m rxcast.trainer.cli download --out model-dir
    python -m rxcast.trainer.cli policies
    python -m rxcast.trainer.cli policy online --every-data-days 1 --window-days 90 --gate-margin 0
    python -m rxcast.trainer.cli trigger incident-17 --kind data_drift --changed 2026-01-15 --reason "new region"

The trainer's address comes from --address or RXCAST_TRAINER_ADDRESS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

import grpc
from tqdm import tqdm

from rxcast.clients.trainer import DEFAULT_ADDRESS, TrainerClient
from rxcast.runtime import timestamps
from rxcast.runtime.errors import RxcastError
from rxcast.trainer.v1 import trainer_pb2

#: Fields of TrainingParams settable with --param NAME=VALUE, and their types;
#: any other NAME goes to `extra` for LightGBM.
PARAM_TYPES = {
    "num_boost_round": int, "learning_rate": float, "num_leaves": int, "min_data_in_leaf": int,
    "feature_fraction": float, "objective": str, "seed": int, "holdout_days": int,
}  # fmt: skip


def _state(job: trainer_pb2.TrainingJob) -> str:
    return trainer_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()


def _window(text: str) -> trainer_pb2.DayWindow:
    start, sep, end = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"--window must be START:END (YYYY-MM-DD:YYYY-MM-DD), got {text!r}")
    return trainer_pb2.DayWindow(start_day=start, end_day=end)


def _params(pairs: list[str]) -> trainer_pb2.TrainingParams:
    params = trainer_pb2.TrainingParams()
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--param must be NAME=VALUE, got {pair!r}")
        kind = PARAM_TYPES.get(name)
        if kind is None:
            params.extra[name] = value
            continue
        try:
            setattr(params, name, kind(value))
        except ValueError:
            raise SystemExit(f"--param {name}: not a {kind.__name__}: {value!r}") from None
    return params


def _metrics_table(evaluation: trainer_pb2.Evaluation) -> str:
    rows = [("model", evaluation.model), ("naive baseline", evaluation.baseline)]
    if evaluation.HasField("champion"):
        rows.append((f"champion v{evaluation.champion_version}", evaluation.champion))
    lines = [f"holdout {evaluation.holdout.start_day}..{evaluation.holdout.end_day}",
             f"{'':<16}{'MAE':>10}{'RMSE':>10}{'WAPE':>8}{'rows':>9}"]  # fmt: skip
    lines += [f"{name:<16}{m.mae:>10.3f}{m.rmse:>10.3f}{m.wape:>8.3f}{m.rows:>9}" for name, m in rows]
    return "\n".join(lines)


def follow(client: TrainerClient, job_id: str, quiet: bool = False) -> trainer_pb2.TrainingJob:
    """Show a job's progress as a bar until it ends; returns its final state."""
    bar = tqdm(total=0, unit="round", disable=quiet, file=sys.stderr, dynamic_ncols=True)
    job = None
    try:
        for job in client.watch(job_id):
            if job.rounds_total and bar.total != job.rounds_total:
                bar.total = job.rounds_total
            bar.set_description(_state(job), refresh=False)
            bar.set_postfix_str(f"rows={job.rows_loaded:,} {job.message}"[:80], refresh=False)
            bar.n = job.rounds_done
            bar.refresh()
    finally:
        bar.close()
    return job


def _print_job(job: trainer_pb2.TrainingJob) -> None:
    print(f"job {job.job_id}: {_state(job)}; {job.message}")
    if job.HasField("evaluation"):
        print(_metrics_table(job.evaluation))
    if job.error:
        print(("not promoted: " if job.state == trainer_pb2.JOB_STATE_SUCCEEDED else "error: ") + job.error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rxcast.trainer.cli", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--address", default="", help=f"trainer address (env RXCAST_TRAINER_ADDRESS; default {DEFAULT_ADDRESS})"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline of each call, in seconds")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="start a training job")
    train.add_argument("--window", type=_window, required=True, help="START:END business days, inclusive")
    train.add_argument("--reason", default="manual", help="why the job runs (kept in the version)")
    train.add_argument("--promote", action="store_true", help="promote the version if it passes the gate")
    train.add_argument("--alias", default="", help="alias to promote (default champion)")
    train.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a training parameter")
    train.add_argument("--follow", action="store_true", help="show progress until the job ends")

    watch = commands.add_parser("watch", help="follow a job until it ends")
    watch.add_argument("job_id")

    job = commands.add_parser("job", help="show a job")
    job.add_argument("job_id")

    versions = commands.add_parser("versions", help="list model versions, newest first")
    versions.add_argument("--limit", type=int, default=20)

    show = commands.add_parser("show", help="show one version (0 or omitted: the alias's)")
    show.add_argument("version", type=int, nargs="?", default=0)
    show.add_argument("--alias", default="")
    show.add_argument("--manifest", action="store_true", help="print the whole manifest")

    latest = commands.add_parser("latest", help="where an alias points")
    latest.add_argument("--alias", default="")

    alias = commands.add_parser("alias", help="point an alias at a version (through the gate unless --force)")
    alias.add_argument("version", type=int)
    alias.add_argument("--alias", default="")
    alias.add_argument("--force", action="store_true")
    alias.add_argument("--reason", default="manual")

    rollback = commands.add_parser("rollback", help="move an alias back")
    rollback.add_argument("--to", type=int, default=0, help="version to go back to (default: the previous one)")
    rollback.add_argument("--alias", default="")
    rollback.add_argument("--reason", default="manual rollback")

    history = commands.add_parser("history", help="an alias's moves, newest first")
    history.add_argument("--alias", default="")

    download = commands.add_parser("download", help="fetch a version's model file and manifest")
    download.add_argument("version", type=int, nargs="?", default=0)
    download.add_argument("--alias", default="")
    download.add_argument("--out", required=True, help="directory to write model file and manifest.json to")

    commands.add_parser("policies", help="every alias's training policy: last job, why, next run, triggers")

    policy = commands.add_parser("policy", help="set an alias's training policy (replaces its old one)")
    policy.add_argument("alias")
    policy.add_argument("--every-data-days", type=int, default=0, help="train every N newest business days (0: off)")
    policy.add_argument("--every-wall-seconds", type=int, default=0, help="train every N wall seconds (0: off)")
    policy.add_argument("--window-days", type=int, default=90, help="days of rows a job uses")
    policy.add_argument("--holdout-days", type=int, default=0, help="holdout days (0: the trainer's default)")
    policy.add_argument("--ignore-triggers", action="store_true", help="drift triggers do not start its jobs")
    policy.add_argument("--gate-margin", type=float, default=None, help="the gate's margin (default: the trainer's)")

    trigger = commands.add_parser("trigger", help="hand the trainer a retraining trigger (idempotent by id)")
    trigger.add_argument("trigger_id")
    trigger.add_argument("--kind", default="data_drift", help="data_drift, concept_drift or performance")
    trigger.add_argument("--changed", required=True, help="business day the change was first seen, YYYY-MM-DD")
    trigger.add_argument("--reason", default="manual")
    trigger.add_argument("--alias", action="append", default=[], help="an alias to retrain (default: all)")

    args = parser.parse_args(argv)
    try:
        with TrainerClient(args.address, timeout=args.timeout) as client:
            return _run(client, args)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except RxcastError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


def _run(client: TrainerClient, args: argparse.Namespace) -> int:
    stub = client.stub
    if args.command == "train":
        request = trainer_pb2.StartTrainingRequest(
            window=args.window, params=_params(args.param), reason=args.reason, promote=args.promote, alias=args.alias
        )
        job = stub.StartTraining(request).job
        print(f"started job {job.job_id}")
        if not args.follow:
            return 0
        job = follow(client, job.job_id)
        _print_job(job)
        return 0 if job.state == trainer_pb2.JOB_STATE_SUCCEEDED else 1
    if args.command == "watch":
        job = follow(client, args.job_id)
        _print_job(job)
        return 0 if job.state == trainer_pb2.JOB_STATE_SUCCEEDED else 1
    if args.command == "job":
        _print_job(stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=args.job_id)).job)
        return 0
    if args.command == "versions":
        page = stub.ListModelVersions(trainer_pb2.ListModelVersionsRequest(page_size=args.limit))
        print(f"{'version':>7}  {'created':<20} {'window':<23} {'WAPE':>7} {'base':>7}  aliases / reason")
        for v in page.versions:
            created = timestamps.to_datetime(v.created_time, "created_time").strftime("%Y-%m-%d %H:%M:%S")
            window = f"{v.training_window.start_day}..{v.training_window.end_day}"
            wape, base = v.evaluation.model.wape, v.evaluation.baseline.wape
            print(
                f"{v.version:>7}  {created:<20} {window:<23} {wape:>7.3f} {base:>7.3f}  {','.join(v.aliases)} {v.reason}"
            )
        return 0
    if args.command == "show":
        request = trainer_pb2.GetModelVersionRequest(
            version=args.version, alias=args.alias, include_manifest=args.manifest
        )
        v = stub.GetModelVersion(request).version
        print(f"v{v.version} sha256 {v.sha256} ({v.size_bytes} bytes) aliases {list(v.aliases)} reason {v.reason!r}")
        print(f"features: {', '.join(v.feature_names)}")
        if v.HasField("evaluation"):
            print(_metrics_table(v.evaluation))
        if args.manifest:
            print(json.dumps(json.loads(v.manifest_json), indent=2, sort_keys=True))
        return 0
    if args.command == "latest":
        answer = stub.GetLatestVersion(trainer_pb2.GetLatestVersionRequest(alias=args.alias))
        print(f"{answer.alias} -> v{answer.version} {answer.sha256}" if answer.version else f"{answer.alias} -> none")
        return 0
    if args.command == "alias":
        request = trainer_pb2.SetAliasRequest(
            alias=args.alias, version=args.version, force=args.force, reason=args.reason
        )
        _print_change(stub.SetAlias(request).change)
        return 0
    if args.command == "rollback":
        request = trainer_pb2.RollbackRequest(alias=args.alias, to_version=args.to, reason=args.reason)
        _print_change(stub.Rollback(request).change)
        return 0
    if args.command == "history":
        for change in stub.ListAliasHistory(trainer_pb2.ListAliasHistoryRequest(alias=args.alias)).changes:
            _print_change(change)
        return 0
    if args.command == "download":
        manifest = client.download_to(args.out, args.version, args.alias)
        print(f"v{manifest.version} ({manifest.sha256}) written to {args.out}")
        return 0
    if args.command == "policies":
        for status in client.policies():
            _print_policy(status)
        return 0
    if args.command == "policy":
        policy = trainer_pb2.TrainingPolicy(
            alias=args.alias, every_data_days=args.every_data_days, every_wall_seconds=args.every_wall_seconds,
            window_days=args.window_days, holdout_days=args.holdout_days, follow_triggers=not args.ignore_triggers,
        )  # fmt: skip
        if args.gate_margin is not None:
            policy.gate_margin = args.gate_margin
        print(client.set_policy(policy))
        return 0
    if args.command == "trigger":
        changed = dt.datetime.combine(dt.date.fromisoformat(args.changed), dt.time(), dt.UTC) + dt.timedelta(days=1)
        answer = client.submit_trigger(
            args.trigger_id, args.kind, int(changed.timestamp() * 1000), args.reason, args.alias
        )
        print(f"trigger {answer.trigger.trigger_id}: {'accepted' if answer.accepted else 'already known'}")
        for target in answer.trigger.targets:
            print(f"  {target.alias}: {target.state}, runs on newest business day {target.runnable_day}")
        return 0
    raise AssertionError(args.command)


def _print_policy(status: trainer_pb2.PolicyStatus) -> None:
    p = status.policy
    cadence = [f"every {p.every_data_days} data day(s)"] if p.every_data_days else []
    cadence += [f"every {p.every_wall_seconds} s"] if p.every_wall_seconds else []
    print(
        f"{p.alias}: {', '.join(cadence) or 'no cadence'}; window {p.window_days} d; "
        f"{'follows' if p.follow_triggers else 'ignores'} triggers; data day {status.data_day or '-'}; "
        f"fitted through {status.fitted_through or '-'}; {status.jobs_started} job(s)"
        + ("; busy" if status.busy else "")
    )
    print(f"  why trained:      {status.why_trained or '-'}")
    print(f"  last job:         {status.last_job_id or '-'}")
    print(f"  why not promoted: {status.why_not_promoted or '-'}")
    print(f"  next run at:      {status.next_run_at}")
    for trigger in status.pending_triggers:
        targets = ", ".join(f"{t.alias} {t.state} from {t.runnable_day}" for t in trigger.targets)
        print(f"  trigger {trigger.trigger_id} ({trigger.kind}): {targets}: {trigger.reason[:100]}")


def _print_change(change: trainer_pb2.AliasChange) -> None:
    when = timestamps.to_datetime(change.time, "time").strftime("%Y-%m-%d %H:%M:%S")
    print(f"{when} {change.alias}: v{change.from_version} -> v{change.to_version} ({change.kind}) {change.reason}")


if __name__ == "__main__":
    raise SystemExit(main())
