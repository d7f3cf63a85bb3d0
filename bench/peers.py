"""rxcast next to its peers, in one command, measured in one run on this machine.

    .venv/bin/python bench/peers.py [--quick] [--tls] [--only rxcast,echo,mlserver,mlserver-best,features]

Transport: MLServer, `feast serve`/`feast listen` and the echo serve without
TLS, so by default rxcast's services run with `--plaintext true` too, and
every call to them goes plaintext (like for like). bench/trust.py measures
what TLS and role checks cost a call. `--tls` measures rxcast as deployed
instead: mTLS with a scratch CA (rxcast.runtime.certs), a bearer token checked
against the RPC's role on every call, the callers as the `reader` identity;
the echo then serves TLS too (it takes its launcher's transport), MLServer
and Feast's servers stay plaintext. Each table's heading says which was run.

Model serving (KServe v2 ModelInfer over gRPC), one LightGBM model file served by:
- rxcast: the predictor (online mode, its defaults);
- echo: a bare grpcio server of the same ModelInfer (no interceptor, zeros
  for an answer): the floor of a Python gRPC v2 server;
- mlserver: MLServer with mlserver-lightgbm in its defaults (one parallel
  worker process, debug on, metrics on);
- mlserver-best: MLServer tuned (parallel_workers 0, debug off, metrics off,
  OMP_NUM_THREADS=1); both run uvloop, MLServer's default when installed.
All are driven by one tritonclient gRPC client process, in alternating rounds
bounded in count and time, at 1 and 100 rows: calls/s from --threads
threads, p50/p99 of sequential calls, server CPU seconds per 1,000 calls and
RSS from /proc of each server's process tree, with ratios against rxcast.

Feature lookups (bench/peers_features.py) on one store at 1 and 100 keys:
rxcast's GetOnlineFeatures, Feast's in-process get_online_features, `feast
serve` (HTTP) and `feast listen` (gRPC).

MLServer and tritonclient need a protobuf older than rxcast's, so they live
in their own virtualenvs under build/ (built on first use, reused after);
nothing is installed into .venv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # tests.predictor.triton_venv builds every outside virtualenv

import grpc
import numpy as np
from inference import grpc_predict_v2_pb2 as oip
from inference import grpc_predict_v2_pb2_grpc as oip_grpc
from peers_measure import Measured, table
from predictor import CATEGORICAL, MODEL, NUMERIC, Helper, population, train_model

from rxcast.runtime import certs, tls
from rxcast.runtime.channels import with_options
from rxcast.suite.launcher import ServiceProcess
from tests.binaries import free_port
from tests.predictor.triton_venv import ensure as ensure_triton
from tests.predictor.triton_venv import ensure_venv

#: uvloop 0.22 and later raise from get_event_loop() in a thread with no loop,
#: where MLServer 1.7.1's parallel workers call it at start: they die at once.
MLSERVER_REQUIREMENTS = ("mlserver==1.7.1", "mlserver-lightgbm==1.7.1", "lightgbm==4.7.0", "uvloop==0.21.0")
#: settings.json overrides and extra environment of each MLServer configuration.
MLSERVER_CONFIGS: dict[str, tuple[dict, dict]] = {
    "mlserver": ({}, {}),
    "mlserver-best": (
        {"parallel_workers": 0, "debug": False, "metrics_endpoint": None},
        {"OMP_NUM_THREADS": "1"},
    ),
}
SERVING = ("rxcast", "echo", *MLSERVER_CONFIGS)
EVERYTHING = (*SERVING, "features")
SIZES = (1, 100)


@dataclass(frozen=True)
class Load:
    """Bounds of one run: rounds, and per round and target the sequential
    latency calls and the concurrent throughput calls (each bounded in time)."""

    rounds: int
    latency_calls: int
    latency_seconds: float
    throughput_calls: int
    throughput_seconds: float
    threads: int
    warmup: int


FULL = Load(rounds=5, latency_calls=1000, latency_seconds=1.5, throughput_calls=8000, throughput_seconds=3.0, threads=8, warmup=50)  # fmt: skip
QUICK = Load(rounds=3, latency_calls=300, latency_seconds=0.4, throughput_calls=2000, throughput_seconds=0.8, threads=8, warmup=20)  # fmt: skip


#: The identity rxcast's callers use under --tls: an outside caller holding `read` only.
CALLER = "reader"


@dataclass(frozen=True)
class Transport:
    """How rxcast's services serve and are called in one run: plaintext (`tls_dir`
    None) or mTLS + roles with the credentials in `tls_dir`."""

    tls_dir: Path | None = None

    @classmethod
    def make(cls, use_tls: bool, work: Path) -> Transport:
        """A run's transport; under TLS, a scratch CA with every identity `make certs` issues."""
        return cls(certs.make(work / "certs")) if use_tls else cls()

    @property
    def plaintext(self) -> bool:
        return self.tls_dir is None

    @property
    def label(self) -> str:
        if self.plaintext:
            return "rxcast plaintext (--plaintext true)"
        return f"rxcast mTLS + roles, called as {CALLER}"

    def environment(self) -> dict[str, str]:
        """RXCAST_CLIENT_* of this process and the helpers it starts (rxcast.runtime.tls.ClientSettings):
        the stand-ins serve, and the launcher's clients call, with this transport."""
        if self.plaintext:
            return {"RXCAST_CLIENT_PLAINTEXT": "true"}
        # admin: the stand-ins' certificate and the seeding of the feature store (ingest).
        return {
            "RXCAST_CLIENT_PLAINTEXT": "false",
            "RXCAST_CLIENT_TLS_DIR": str(self.tls_dir),
            "RXCAST_CLIENT_IDENTITY": "admin",
        }

    def server_args(self) -> list[str]:
        """Flags for an rxcast service: the transport said outright, never left to the environment."""
        if self.plaintext:
            return ["--plaintext", "true"]
        return ["--plaintext", "false", "--tls-dir", str(self.tls_dir)]

    def caller(self) -> tls.Trust:
        """The credentials the benchmark's calls to rxcast carry."""
        return tls.PLAINTEXT if self.plaintext else tls.load(CALLER, tls_dir=str(self.tls_dir))

    def client_files(self) -> dict | None:
        """The caller's files for tritonclient (in another virtualenv): None for plaintext."""
        if self.plaintext:
            return None
        folder = self.tls_dir
        return {
            "ca": str(folder / tls.CA_FILE),
            "cert": str(folder / tls.cert_name(CALLER)),
            "key": str(folder / tls.key_name(CALLER)),
            "token": (folder / tls.token_name(CALLER)).read_text().strip(),
        }


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def wait_model_ready(
    address: str, process: subprocess.Popen, log: Path, trust: tls.Trust, timeout: float = 180.0
) -> None:
    """Until the v2 server at `address` (called with `trust`) says MODEL is ready; a
    clear error, with the end of its log, if it exits or stays unready."""
    deadline = time.monotonic() + timeout
    with with_options(address, [], default_timeout=2, trust=trust) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server at {address} exited with {process.returncode}:\n{_tail(log)}")
            try:
                if stub.ModelReady(oip.ModelReadyRequest(name=MODEL), timeout=2).ready:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server at {address} not ready after {timeout:.0f} s:\n{_tail(log)}")
            time.sleep(0.2)


class MLServer:
    """An `mlserver start` process serving `model_file` under MODEL, from its own virtualenv."""

    def __init__(self, python: Path, work: Path, name: str, model_file: Path):
        overrides, environment = MLSERVER_CONFIGS[name]
        self.directory = work / name
        model_dir = self.directory / MODEL
        model_dir.mkdir(parents=True)
        grpc_port = free_port()
        settings = {"host": "127.0.0.1", "http_port": free_port(), "grpc_port": grpc_port, "metrics_port": free_port()}
        (self.directory / "settings.json").write_text(json.dumps({**settings, **overrides}))
        model_settings = {
            "name": MODEL,
            "implementation": "mlserver_lightgbm.LightGBMModel",
            "parameters": {"uri": str(model_file), "version": "1"},
        }
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
        self.address = f"127.0.0.1:{grpc_port}"
        self.log = self.directory / "mlserver.log"
        # MLServer reads MLSERVER_* variables too; only the files above configure it here.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER")} | environment
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(python.parent / "mlserver"), "start", str(self.directory)],
                cwd=self.directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self) -> MLServer:
        wait_model_ready(self.address, self.process, self.log, tls.PLAINTEXT)  # MLServer serves plaintext
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)  # its parallel workers too
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def versions(mlserver_python: Path | None, triton_python: Path) -> str:
    """Versions of what was measured, for the table's heading."""

    def of(python: Path, packages: str) -> str:
        code = f"from importlib.metadata import version; print(' '.join(p + ' ' + version(p) for p in {packages.split()!r}))"
        return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    parts = [f"Python {platform.python_version()}", of(Path(sys.executable), "grpcio protobuf lightgbm feast")]
    parts.append(of(triton_python, "tritonclient"))
    if mlserver_python is not None:
        parts.append(of(mlserver_python, "mlserver mlserver-lightgbm uvloop"))
    return "; ".join(parts)


def serve_and_drive(
    targets: list[str], load: Load, work: Path, transport: Transport
) -> tuple[list[Measured], str, dict]:
    """Start the selected servers on one model file (rxcast's and the echo with
    `transport`, MLServer plaintext), drive them with one tritonclient process,
    stop them; the measurements, versions and first answers."""
    triton_python = ensure_triton(ROOT)
    mlserver_python = None
    if any(t in MLSERVER_CONFIGS for t in targets):
        mlserver_python = ensure_venv(ROOT / "build" / "peers" / "venv-mlserver", MLSERVER_REQUIREMENTS)
    # One thread: OpenMP threads waiting on each other at every split take minutes on a busy machine.
    bundle = train_model(work / "model-1", threads=1)
    matrices = {size: bundle.encode(population(size).columns).matrix for size in SIZES}

    caller_files = transport.client_files()
    started: list = []
    plan_targets = []
    try:
        if "rxcast" in targets:
            spec = {"numeric": NUMERIC, "categorical": {name: levels[0] for name, levels in CATEGORICAL.items()}}
            features = Helper(work, "features", json.dumps(spec), env=transport.environment())
            started.append(features)
            predictor = ServiceProcess(
                "predictor",
                work,
                [
                    "--mode", "online", "--model-dir", str(work / "model-1"),
                    "--feature-address", features.address(), *transport.server_args(),
                ],
            )  # fmt: skip
            started.append(predictor)
            predictor.start().wait_ready(60)
            wait_model_ready(predictor.address, predictor.process, predictor.log_path, transport.caller(), timeout=60)
            plan_targets.append(
                {"name": "rxcast", "address": predictor.address, "pid": predictor.process.pid, "tls": caller_files}
            )
        if "echo" in targets:
            echo = Helper(work, "infer-echo", env=transport.environment())
            started.append(echo)
            plan_targets.append(
                {"name": "echo", "address": echo.address(), "pid": echo.process.pid, "tls": caller_files}
            )
        for name in MLSERVER_CONFIGS:
            if name in targets:
                server = MLServer(mlserver_python, work, name, work / "model-1" / "model.txt")
                started.append(server)
                server.wait_ready()
                plan_targets.append({"name": name, "address": server.address, "pid": server.pid, "tls": None})
        plan = {
            "targets": [{**t, "model": MODEL} for t in plan_targets],
            "matrices": {str(size): matrix.tolist() for size, matrix in matrices.items()},
            **load.__dict__,
        }
        (work / "plan.json").write_text(json.dumps(plan))
        answer = subprocess.run(
            [str(triton_python), str(HERE / "peers_client.py"), str(work / "plan.json")],
            capture_output=True,
            check=False,
            text=True,
            timeout=60
            + len(plan_targets) * len(SIZES) * load.rounds * (load.latency_seconds + load.throughput_seconds) * 3,
        )
        if answer.returncode != 0:
            raise RuntimeError(f"the tritonclient process failed:\n{answer.stderr[-3000:]}")
    finally:
        for process in reversed(started):
            process.stop()
    results = json.loads(answer.stdout)
    measured = [Measured(**{k: r[k] for k in Measured.__dataclass_fields__}) for r in results]
    first = {(r["target"], r["size"]): np.asarray(r["first"]) for r in results}
    return measured, versions(mlserver_python, triton_python), first


def agreement(first: dict) -> list[str]:
    """How far each model server's first answer at 100 rows is from rxcast's (same model file)."""
    base = first.get(("rxcast", 100))
    if base is None:
        return []
    lines = []
    for (target, size), values in sorted(first.items()):
        if size == 100 and target in MLSERVER_CONFIGS:
            lines.append(
                f"{target} answers within {np.max(np.abs(values - base)):.2e} of rxcast's forecasts (100 rows)"
            )
    return lines


def against_aims(measured: list[Measured]) -> list[str]:
    """Issue 14's ModelInfer aims, read off this run's rows at 1 row."""
    one = {m.target: m for m in measured if m.size == 1}
    rx, best, echo = one.get("rxcast"), one.get("mlserver-best"), one.get("echo")
    lines = []
    if rx and best:
        lines.append(f"aim: rxcast 1-row calls/s >= 1.5x mlserver-best's: {rx.rate / best.rate:.2f}x")
    if rx and echo and rx.cpu_per_1000 and echo.cpu_per_1000:
        lines.append(f"aim: rxcast server CPU per call <= 1.5x the echo's: {rx.cpu_per_1000 / echo.cpu_per_1000:.2f}x")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 shorter rounds (about half a minute of calls with every target, plus start-up): "
        "a smoke run, too few rounds to quote on a busy machine",
    )
    parser.add_argument(
        "--only", default=",".join(EVERYTHING), help=f"comma-separated subset of {','.join(EVERYTHING)}"
    )
    parser.add_argument("--threads", type=int, help="client threads for throughput (default 8)")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="run rxcast as deployed (mTLS, a token's role checked on every call; the echo serves TLS too) "
        "instead of --plaintext like its peers",
    )
    args = parser.parse_args()
    targets = [t for t in args.only.split(",") if t]
    unknown = sorted(set(targets) - set(EVERYTHING))
    if unknown or not targets:
        parser.error(f"--only: unknown {unknown}; choose from {','.join(EVERYTHING)}")
    load = QUICK if args.quick else FULL
    if args.threads:
        load = Load(**{**load.__dict__, "threads": args.threads})

    work = Path(tempfile.mkdtemp(prefix="rxcast-bench-peers-"))
    started = time.monotonic()
    transport = Transport.make(args.tls, work)
    # This process's own clients (the feature service's seeding) and the services
    # the launcher starts take their transport from RXCAST_CLIENT_*.
    os.environ.update(transport.environment())
    print(
        f"peers benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start, "
        f"{load.rounds} alternating rounds{' (--quick)' if args.quick else ''}",
        flush=True,
    )
    if transport.plaintext:
        print("transport: rxcast's services run --plaintext, like its peers; bench/trust.py measures TLS's cost")
    else:
        print(
            f"transport: --tls: rxcast's services serve mTLS and check a bearer token's role on every call "
            f"(called as {CALLER}), the echo serves TLS; its peers serve plaintext"
        )
    try:
        serving = [t for t in targets if t in SERVING]
        if serving:
            measured, used, first = serve_and_drive(serving, load, work, transport)
            print(f"versions: {used}")
            echo_mode = ", echo TLS" if not transport.plaintext and "echo" in serving else ""
            print(
                f"\nModelInfer [{transport.label}{echo_mode}] (KServe v2 gRPC, tritonclient, {load.threads} threads "
                "for calls/s, sequential calls for p50/p99)"
            )
            print(table(measured, baseline="rxcast" if "rxcast" in serving else serving[0], unit="rows"))
            for line in [*agreement(first), *against_aims(measured)]:
                print(line)
        if "features" in targets:
            from peers_features import compare_lookups

            measured, notes = compare_lookups(load, work, transport)
            print(
                f"\nOnline feature lookups [{transport.label}], one store (sequential calls; CPU of the server processes)"
            )
            print(table(measured, baseline="rxcast", unit="keys"))
            for line in notes:
                print(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
