"""The feature side of bench/peers.py: online lookups on one store at 1 and 100 keys.

rxcast's GetOnlineFeatures (the feature service process) next to Feast on
the same store: in-process `get_online_features`, `feast serve` (HTTP,
its defaults without the access log) and `feast listen` (gRPC), each as its
own process started by Feast's CLI from a feature_store.yaml written for
the store the feature service keeps. Below them, the floor of a lookup over
Python gRPC: a bare grpcio FeatureService (bench/predictor_standin.py: no
interceptor, no store, an answer of the same features built once) read
through the same client as rxcast's. Calls are sequential, in alternating
rounds bounded in count and time. The feature service runs with the run's
transport (bench/peers.py: --plaintext, or mTLS + roles under --tls, its
lookups then called as `reader`); Feast's servers are plaintext.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import yaml
from feast.protos.feast.serving.GrpcServer_pb2_grpc import GrpcFeatureServerStub
from feast.protos.feast.serving.ServingService_pb2 import GetOnlineFeaturesRequest
from feast.protos.feast.types.Value_pb2 import RepeatedValue, Value
from feature import default_features, generate
from peers_measure import Measured, percentile, tree_cpu_seconds
from predictor import Helper

from rxcast.clients import FeatureClient
from rxcast.clients.records import normalize
from rxcast.feature.definitions import DEFAULT_FEATURE_SERVICE
from rxcast.feature.feast_repo import open_store, repo_config
from rxcast.feature.v1 import feature_pb2
from rxcast.runtime import tls
from rxcast.suite.launcher import ServiceProcess
from tests.binaries import free_port

SIZES = (1, 100)
FLOOR = "bare grpcio floor"
WORLD = {"stores": 20, "medications": 50, "days": 21}
#: Feast's CLI, run as its console script does (a worktree's venv may lack the script itself).
FEAST = [sys.executable, "-c", "import sys; from feast.cli.cli import cli; sys.exit(cli(prog_name='feast'))"]


def write_feast_repo(data_dir: Path, repo: Path) -> Path:
    """A feature_store.yaml for Feast's CLI naming the registry and online store of `data_dir`."""
    config = repo_config(data_dir)
    repo.mkdir(parents=True, exist_ok=True)
    text = {
        "project": config.project,
        "provider": "local",
        "registry": {"path": config.registry.path, "cache_ttl_seconds": 0},
        "online_store": {"type": "sqlite", "path": config.online_store.path},
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(text))
    return repo


def _until(ready: Callable[[], bool], process: subprocess.Popen, what: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if ready():
                return
        except (OSError, grpc.RpcError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s: {log.read_text()[-2000:]}")
        time.sleep(0.3)


def _spawn(args: list[str], repo: Path, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([*FEAST, "-c", str(repo), *args], stdout=out, stderr=subprocess.STDOUT)


class FeastServe:
    """`feast serve` over HTTP on a free loopback port; one kept-alive connection."""

    def __init__(self, repo: Path, port: int):
        self.log = repo / "serve.log"
        self.process = _spawn(["serve", "-h", "127.0.0.1", "-p", str(port), "--no-access-log"], repo, self.log)
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def _health(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        connection.request("GET", "/health")
        return connection.getresponse().status == 200

    def start(self) -> FeastServe:
        _until(self._health, self.process, "feast serve", self.log)
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return self

    def call(self, stores: list[str], medications: list[str]) -> dict:
        body = json.dumps(
            {"feature_service": DEFAULT_FEATURE_SERVICE, "entities": {"store_id": stores, "medication_id": medications}}
        )
        try:
            response = self._post(body)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closes a connection idle past its keep-alive timeout (a few
            # seconds: the other targets' turn in a round); any HTTP client reconnects.
            self.connection.close()
            response = self._post(body)
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"feast serve answered {response.status}: {payload[:300]!r}")
        return json.loads(payload)

    def _post(self, body: str) -> http.client.HTTPResponse:
        self.connection.request("POST", "/get-online-features", body, {"Content-Type": "application/json"})
        return self.connection.getresponse()


class FeastListen:
    """`feast listen`: Feast's gRPC feature server, on a free loopback port."""

    def __init__(self, repo: Path, port: int):
        self.log = repo / "listen.log"
        self.process = _spawn(["listen", "-a", f"127.0.0.1:{port}"], repo, self.log)
        # Feast's gRPC server has no TLS: a raw plaintext channel (no interceptor), whatever rxcast's transport.
        self.channel = tls.channel(f"127.0.0.1:{port}", tls.PLAINTEXT)
        self.stub = GrpcFeatureServerStub(self.channel)

    def start(self, probe: tuple[list[str], list[str]]) -> FeastListen:
        _until(lambda: bool(self.call(*probe).results), self.process, "feast listen", self.log)
        return self

    def call(self, stores: list[str], medications: list[str]):
        def column(values: list[str]) -> RepeatedValue:
            return RepeatedValue(val=[Value(string_val=v) for v in values])

        request = GetOnlineFeaturesRequest(
            feature_service=DEFAULT_FEATURE_SERVICE,
            entities={"store_id": column(stores), "medication_id": column(medications)},
        )
        return self.stub.GetOnlineFeatures(request, timeout=30)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def compare_lookups(load, work: Path, transport) -> tuple[list[Measured], list[str]]:
    """Seed one store through the feature service (bench/peers.py's Transport says how
    it serves; this process's RXCAST_CLIENT_* credentials seed it), then time every
    lookup path on it, rxcast's with the transport's caller."""
    data = work / "feature-data"
    service = ServiceProcess(
        "feature",
        work / "feature-run",
        ["--data-dir", str(data), "--access-log", "false", *transport.server_args()],
    )
    service.start().wait_ready(120)
    started: list[subprocess.Popen] = []
    notes = []
    client = reader = floor_reader = None
    try:
        client = FeatureClient(service.address, timeout=600)
        reader = FeatureClient(service.address, timeout=30, trust=transport.caller())
        world = normalize(generate(**WORLD))
        outcome = client.ingest_frame(world)
        if outcome.errors or outcome.accepted != len(world):
            raise RuntimeError(f"seeding the store failed: {outcome.errors[:3]}")
        stores, medications = world["store_id"].unique(), world["medication_id"].unique()
        rng = np.random.default_rng(7)
        keys = {
            size: [(list(rng.choice(stores, size)), list(rng.choice(medications, size))) for _ in range(64)]
            for size in SIZES
        }

        store = open_store(data, apply=False)
        demand = store.get_feature_service(DEFAULT_FEATURE_SERVICE)
        repo = write_feast_repo(data, work / "feast-repo")
        serve = FeastServe(repo, free_port())
        started.append(serve.process)
        listen = FeastListen(repo, free_port())
        started.append(listen.process)
        serve.start()
        listen.start(keys[1][0])

        names = default_features(reader)
        floor = Helper(
            work, "features", json.dumps(standin_spec(reader, names)), env=transport.environment(), name="floor"
        )
        started.append(floor.process)
        floor_reader = FeatureClient(floor.address(), timeout=30, trust=transport.caller())

        def rxcast(s: list[str], m: list[str]):
            return reader.online(s, m, names)  # packed on the wire, decoded into arrays

        def bare(s: list[str], m: list[str]):
            return floor_reader.online(s, m, names)

        def in_process(s: list[str], m: list[str]):
            rows = [{"store_id": a, "medication_id": b} for a, b in zip(s, m)]
            return store.get_online_features(features=demand, entity_rows=rows).to_dict()

        targets = [
            ("rxcast", rxcast, service.process.pid),
            ("Feast in-process", in_process, None),
            ("feast serve (HTTP)", serve.call, serve.process.pid),
            ("feast listen (gRPC)", listen.call, listen.process.pid),
            (FLOOR, bare, floor.process.pid),
        ]
        measured = _alternate(targets, keys, load)
        notes.extend(against_aims(measured))
        notes.append(
            f"store: {WORLD['stores']} stores x {WORLD['medications']} medications x {WORLD['days']} days "
            f"({len(world):,} records), SQLite online store; Feast in-process CPU is this client process's"
        )
    finally:
        for opened in (client, reader, floor_reader):
            if opened is not None:
                opened.close()
        for process in started:
            _stop(process)
        service.stop()
    return measured, notes


def standin_spec(client: FeatureClient, names: list[str]) -> dict:
    """The stand-in's features: `names`, the store's strings as fixed text."""
    strings = {f.name for f in client.list_features().features if f.value_type == feature_pb2.VALUE_TYPE_STRING}
    return {
        "numeric": [n for n in names if n not in strings],
        "categorical": {n: "x" for n in names if n in strings},
    }


def against_aims(measured: list[Measured]) -> list[str]:
    """The lookup aims (p50 against Feast in-process), beside the bare floor's ratio:
    how much of the 1-key ratio is the transport's before rxcast does any work."""
    p50 = {(m.target, m.size): m.p50_ms for m in measured}
    lines = []
    for size, aim in ((1, 1.0), (100, 0.3)):
        feast = p50.get(("Feast in-process", size))
        if not feast or ("rxcast", size) not in p50:
            continue
        line = f"aim: rxcast {size}-key p50 <= {aim}x Feast in-process's: {p50['rxcast', size] / feast:.2f}x"
        if (FLOOR, size) in p50:
            line += f" (the {FLOOR}: {p50[FLOOR, size] / feast:.2f}x)"
        lines.append(line)
    return lines


def _alternate(targets, keys: dict, load) -> list[Measured]:
    state = {(name, size): {"samples": [], "cpu": 0.0, "elapsed": 0.0} for name, _, _ in targets for size in keys}
    for name, call, _ in targets:
        for size, picks in keys.items():
            for stores, medications in picks[: load.warmup]:
                call(stores, medications)
    for _ in range(load.rounds):
        for size, picks in keys.items():
            for name, call, pid in targets:
                entry = state[name, size]
                cpu_before = tree_cpu_seconds(pid) if pid else time.process_time()
                round_started = time.perf_counter()
                stop_at = round_started + load.latency_seconds * 2
                calls = 0
                while calls < load.latency_calls and time.perf_counter() < stop_at:
                    stores, medications = picks[calls % len(picks)]
                    began = time.perf_counter()
                    call(stores, medications)
                    entry["samples"].append(time.perf_counter() - began)
                    calls += 1
                entry["elapsed"] += time.perf_counter() - round_started
                entry["cpu"] += (tree_cpu_seconds(pid) if pid else time.process_time()) - cpu_before
    out = []
    for name, _, pid in targets:
        for size in keys:
            entry = state[name, size]
            calls = len(entry["samples"])
            out.append(
                Measured(
                    target=name,
                    size=size,
                    rate=calls / entry["elapsed"],
                    p50_ms=percentile(entry["samples"], 0.5) * 1e3,
                    p99_ms=percentile(entry["samples"], 0.99) * 1e3,
                    cpu_per_1000=entry["cpu"] / calls * 1000,
                    rss_mb=None,
                )
            )
    return out
