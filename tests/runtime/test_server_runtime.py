"""The shared runtime on a real gRPC server on loopback: status mapping, request
ids, deadline propagation, retries for idempotent methods only, metrics, access
logs and graceful shutdown. The server serves TLS with client certificates and
checks roles, as every service does; the probe presents the trainer's certificate."""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import Field

from rxcast.runtime import auth, tls
from rxcast.runtime import context as call_context
from rxcast.runtime.channels import connect, idempotent_methods
from rxcast.runtime.config import MinFreeMb, ServerSettings
from rxcast.runtime.disk import DiskGuard, guard_for
from rxcast.runtime.errors import InvalidArgument, NotFound, Unavailable
from rxcast.runtime.logs import configure_logging
from rxcast.runtime.server import start
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc
from tests.scrape import scrape

TRAINER = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"]


class ProbeTrainer(trainer_pb2_grpc.TrainerServiceServicer):
    """A TrainerService whose answers are chosen by the request's alias."""

    def __init__(self, upstream: str | None = None):
        self.calls: Counter[str] = Counter()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.upstream = upstream

    def GetLatestVersion(self, request, context):
        self.calls[request.alias] += 1
        alias = request.alias
        if alias == "flaky" and self.calls[alias] <= 2:
            raise Unavailable("registry briefly unreachable")
        if alias == "bad":
            raise InvalidArgument("alias: 'bad' is not a valid alias name")
        if alias.startswith("echo:"):
            raise InvalidArgument(f"alias: {alias!r} is not a valid alias name")
        if alias == "disk-full":
            raise OSError(errno.ENOSPC, "No space left on device")
        if alias == "boom":
            raise RuntimeError("a bug")
        if alias == "denied":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")
        if alias == "slow":
            self.entered.set()
            self.release.wait(10)
        if alias == "remaining":
            return trainer_pb2.GetLatestVersionResponse(alias=f"{call_context.time_remaining():.6f}")
        if alias == "request-id":
            return trainer_pb2.GetLatestVersionResponse(alias=call_context.request_id())
        if alias.startswith("chain:"):
            with connect(self.upstream, [TRAINER], default_timeout=30.0) as channel:
                inner = trainer_pb2.GetLatestVersionRequest(alias=alias.removeprefix("chain:"))
                return trainer_pb2_grpc.TrainerServiceStub(channel).GetLatestVersion(inner)
        return trainer_pb2.GetLatestVersionResponse(alias=alias, version=7)

    def StartTraining(self, request, context):
        self.calls["start"] += 1
        raise Unavailable("trainer busy")

    def WatchTrainingJob(self, request, context):
        yield trainer_pb2.WatchTrainingJobResponse(job=trainer_pb2.TrainingJob(job_id=request.job_id))
        raise NotFound(f"job_id: {request.job_id!r} vanished")


class ProbeApp:
    name = "probe"
    roles = (auth.RoleTable(TRAINER.full_name, dict.fromkeys(TRAINER.methods_by_name, auth.READ)),)
    disk: DiskGuard | None = None

    def __init__(self, servicer: ProbeTrainer):
        self.servicer = servicer
        self.stopped = False

    def add_to_server(self, server, health):
        trainer_pb2_grpc.add_TrainerServiceServicer_to_server(self.servicer, server)
        return [TRAINER.full_name]

    def start(self):
        pass

    def stop(self):
        self.stopped = True


def _start(servicer: ProbeTrainer, disk: DiskGuard | None = None, **overrides):
    folder = Path(tls.ClientSettings().tls_dir)
    trainer = {
        "tls_dir": str(folder),
        "tls_cert_file": str(folder / tls.cert_name("trainer")),
        "tls_key_file": str(folder / tls.key_name("trainer")),
        "token_file": str(folder / tls.token_name("trainer")),
    }
    config = ServerSettings(**{"grace_seconds": 5.0, **trainer, **overrides})
    app = ProbeApp(servicer)
    app.disk = disk
    return start(app, config)


def _channel(port: int) -> grpc.Channel:
    """The test's own channel: TLS, its certificate and token, no retries."""
    return connect(f"127.0.0.1:{port}", default_timeout=30.0)


@pytest.fixture
def probe():
    servicer = ProbeTrainer()
    running = _start(servicer)
    channel = _channel(running.port)
    yield servicer, running, trainer_pb2_grpc.TrainerServiceStub(channel)
    servicer.release.set()
    channel.close()
    running.stop()


def _latest(stub, alias, **kwargs):
    return stub.GetLatestVersion(
        trainer_pb2.GetLatestVersionRequest(alias=alias), timeout=kwargs.pop("timeout", 5), **kwargs
    )


def test_domain_errors_map_to_their_status(probe):
    _, _, stub = probe
    with pytest.raises(grpc.RpcError) as info:
        _latest(stub, "bad")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "alias: 'bad' is not a valid alias name"


def test_unexpected_exception_is_internal_with_request_id(probe):
    _, _, stub = probe
    with pytest.raises(grpc.RpcError) as info:
        _latest(stub, "boom", metadata=[("x-request-id", "req-boom")])
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "req-boom" in info.value.details()
    assert "a bug" not in info.value.details()


def test_servicer_abort_keeps_its_status(probe):
    _, _, stub = probe
    with pytest.raises(grpc.RpcError) as info:
        _latest(stub, "denied")
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_streaming_errors_map_after_messages(probe):
    _, _, stub = probe
    stream = stub.WatchTrainingJob(trainer_pb2.WatchTrainingJobRequest(job_id="j1"), timeout=5)
    assert next(stream).job.job_id == "j1"
    with pytest.raises(grpc.RpcError) as info:
        next(stream)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "j1" in info.value.details()


def test_unimplemented_rpc_names_itself(probe):
    _, _, stub = probe
    with pytest.raises(grpc.RpcError) as info:
        stub.ListModelVersions(trainer_pb2.ListModelVersionsRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "rxcast.trainer.v1.TrainerService/ListModelVersions" in info.value.details()


def test_request_id_is_used_and_returned(probe):
    _, _, stub = probe
    response, call = stub.GetLatestVersion.with_call(
        trainer_pb2.GetLatestVersionRequest(alias="request-id"), timeout=5, metadata=[("x-request-id", "req-42")]
    )
    assert response.alias == "req-42"
    assert ("x-request-id", "req-42") in call.trailing_metadata()
    # Without one, the server makes one up and returns it.
    response, call = stub.GetLatestVersion.with_call(trainer_pb2.GetLatestVersionRequest(alias="request-id"), timeout=5)
    assert len(response.alias) == 32 and ("x-request-id", response.alias) in call.trailing_metadata()


def test_deadline_and_request_id_propagate_to_outgoing_calls():
    backend = ProbeTrainer()
    backend_running = _start(backend)
    front = ProbeTrainer(upstream=f"127.0.0.1:{backend_running.port}")
    front_running = _start(front)
    try:
        with _channel(front_running.port) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            # The front's own channel default is 30 s, but the backend sees at
            # most what is left of the 1 s the client gave the front.
            seen = float(_latest(stub, "chain:remaining", timeout=1.0).alias)
            # grpc core stamps an incoming deadline against a cached clock that
            # can lag by some milliseconds, so the remainder may read a bit over 1 s.
            assert 0 < seen <= 1.05
            answer = _latest(stub, "chain:request-id", metadata=[("x-request-id", "req-chain")])
            assert answer.alias == "req-chain"
    finally:
        front_running.stop()
        backend_running.stop()


def test_proto_idempotency_decides_retries():
    marked = {m["method"] for m in idempotent_methods([TRAINER])}
    assert {"GetLatestVersion", "DownloadModel", "ListModelVersions"} <= marked
    assert not marked & {"StartTraining", "SetAlias", "Rollback"}


def test_idempotent_calls_retry_and_others_do_not(probe):
    servicer, running, _ = probe
    with connect(f"127.0.0.1:{running.port}", [TRAINER]) as channel:
        stub = trainer_pb2_grpc.TrainerServiceStub(channel)
        assert _latest(stub, "flaky").version == 7
        assert servicer.calls["flaky"] == 3
        with pytest.raises(grpc.RpcError) as info:
            stub.StartTraining(trainer_pb2.StartTrainingRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert servicer.calls["start"] == 1


def test_client_default_deadline_applies():
    servicer = ProbeTrainer()
    running = _start(servicer)
    try:
        with connect(f"127.0.0.1:{running.port}", [TRAINER], default_timeout=0.3) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                stub.GetLatestVersion(trainer_pb2.GetLatestVersionRequest(alias="slow"))
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - started < 3.0
    finally:
        servicer.release.set()
        running.stop()


def test_metrics_count_calls_by_code(probe):
    _, running, stub = probe
    with pytest.raises(grpc.RpcError):
        _latest(stub, "bad")
    _latest(stub, "ok")
    status, text = scrape(running.metrics_port)
    assert status == 200
    method = "/rxcast.trainer.v1.TrainerService/GetLatestVersion"
    assert f'rxcast_rpc_handled_total{{code="INVALID_ARGUMENT",method="{method}",service="probe"}}' in text
    assert f'rxcast_rpc_handled_total{{code="OK",method="{method}",service="probe"}}' in text
    assert "process_cpu_seconds_total" in text


def test_metrics_follow_every_call_of_a_method(probe):
    from prometheus_client import REGISTRY

    _, _, stub = probe
    method = "/rxcast.trainer.v1.TrainerService/GetLatestVersion"

    def sample(name: str, **labels) -> float:
        return REGISTRY.get_sample_value(name, {"service": "probe", **labels}) or 0.0

    before = (
        sample("rxcast_rpc_started_total", method=method),
        sample("rxcast_rpc_duration_seconds_count", method=method),
    )
    for alias in ("ok", "bad", "ok"):
        try:
            _latest(stub, alias)
        except grpc.RpcError:
            pass
    assert sample("rxcast_rpc_started_total", method=method) - before[0] == 3
    assert sample("rxcast_rpc_duration_seconds_count", method=method) - before[1] == 3
    assert sample("rxcast_rpc_in_flight") == 0


@pytest.fixture
def json_logs(capfd):
    """JSON logging for the test's duration, read back from stderr."""
    configure_logging("probe", "info")
    yield lambda: [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    # The captured stream closes after the test: stop writing to it.
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_access_log_is_json_with_request_id(probe, json_logs):
    _, _, stub = probe
    _latest(stub, "ok", metadata=[("x-request-id", "req-log")])
    lines = json_logs()
    access = [e for e in lines if e.get("event") == "rpc" and e.get("request_id") == "req-log"]
    assert access, lines
    assert access[0]["code"] == "OK" and access[0]["service"] == "probe"
    assert access[0]["method"].endswith("/GetLatestVersion") and access[0]["ms"] >= 0
    # Who called, by identity: the token itself is never written.
    assert access[0]["caller"] == tls.client_trust().identity
    assert tls.client_trust().token not in json.dumps(lines)


def test_graceful_shutdown_drains_in_flight_calls():
    servicer = ProbeTrainer()
    running = _start(servicer)
    channel = _channel(running.port)
    stub = trainer_pb2_grpc.TrainerServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    outcome = {}

    def slow_call():
        try:
            outcome["response"] = _latest(stub, "slow", timeout=10)
        except grpc.RpcError as exc:
            outcome["error"] = exc.code()

    caller = threading.Thread(target=slow_call)
    caller.start()
    assert servicer.entered.wait(5)
    stopper = threading.Thread(target=running.stop)
    stopper.start()
    time.sleep(0.3)
    # Stopping: new calls are refused while the in-flight call runs on.
    with pytest.raises(grpc.RpcError) as info:
        health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert stopper.is_alive()
    servicer.release.set()
    caller.join(10)
    stopper.join(10)
    assert outcome.get("response") is not None and outcome["response"].alias == "slow", outcome
    assert running.app.stopped
    channel.close()


def test_health_reports_not_serving_while_draining():
    servicer = ProbeTrainer()
    running = _start(servicer, drain_seconds=1.0)
    with _channel(running.port) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(service=TRAINER.full_name), timeout=2).status == 1
        stopper = threading.Thread(target=running.stop)
        stopper.start()
        time.sleep(0.3)
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        stopper.join(10)


def test_calls_past_the_concurrency_limit_are_refused_not_queued():
    servicer = ProbeTrainer()
    running = _start(servicer, max_concurrent_rpcs=1)
    try:
        with _channel(running.port) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            slow = stub.GetLatestVersion.future(trainer_pb2.GetLatestVersionRequest(alias="slow"), timeout=10)
            assert servicer.entered.wait(5)
            with pytest.raises(grpc.RpcError) as info:
                _latest(stub, "other")
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            servicer.release.set()
            assert slow.result().alias == "slow"
            assert _latest(stub, "other").version == 7
    finally:
        servicer.release.set()
        running.stop()


def test_status_messages_are_bounded(probe):
    _, _, stub = probe
    with pytest.raises(grpc.RpcError) as info:
        _latest(stub, "echo:" + "x" * 60_000)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(info.value.details()) <= 1_000
    assert info.value.details().endswith("… (60040 characters)")


def test_a_write_that_failed_for_space_is_resource_exhausted(probe):
    _, _, stub = probe
    with pytest.raises(grpc.RpcError) as info:
        _latest(stub, "disk-full")
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "disk is full" in info.value.details()


class ScriptedDisk(DiskGuard):
    """A guard whose free space the test sets."""

    def __init__(self):
        super().__init__(".", min_free_bytes=100)
        self.room = 1_000

    def free_bytes(self) -> int:
        return self.room


def _statuses(channel) -> list[int]:
    health = health_pb2_grpc.HealthStub(channel)
    return [
        health.Check(health_pb2.HealthCheckRequest(service=name), timeout=2).status for name in ("", TRAINER.full_name)
    ]


def test_a_write_that_failed_for_space_turns_health_not_serving_until_there_is_room():
    disk = ScriptedDisk()
    running = _start(ProbeTrainer(), disk=disk)
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    try:
        with _channel(running.port) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            assert _statuses(channel) == [serving, serving]
            disk.room = 0
            with pytest.raises(grpc.RpcError) as info:
                _latest(stub, "disk-full")
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert _statuses(channel) == [not_serving, not_serving]
            disk.room = 1_000
            deadline = time.monotonic() + 10
            while _statuses(channel) != [serving, serving] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _statuses(channel) == [serving, serving]
    finally:
        running.stop()


def test_settings_with_a_data_directory_get_a_guard(tmp_path):
    class Stateful(ServerSettings):
        data_dir: str = Field(str(tmp_path), description="state")
        min_free_mb: MinFreeMb = 64

    guard = guard_for(Stateful())
    assert (guard.path, guard.min_free_bytes) == (tmp_path, 64 * 1024 * 1024)
    assert guard_for(ServerSettings()) is None


def test_the_trainer_guards_its_registry_directory(tmp_path):
    from rxcast.trainer.config import TrainerConfig

    config = TrainerConfig(registry_dir=str(tmp_path / "registry"), job_dir=str(tmp_path / "jobs"), min_free_mb=5)
    guard = guard_for(config)
    assert (guard.path, guard.min_free_bytes) == (tmp_path / "registry", 5 * 1024 * 1024)


def test_the_watch_stops_serving_when_space_runs_low_between_calls(tmp_path):
    changes = []
    guard = DiskGuard(tmp_path, min_free_bytes=0, on_change=changes.append)
    stop = threading.Event()
    watcher = threading.Thread(target=guard.watch, args=(stop, 0.05))
    watcher.start()
    try:
        guard.min_free_bytes = guard.free_bytes() * 4  # space now counts as short, with no write failing
        deadline = time.monotonic() + 10
        while not changes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert changes[:1] == [True]
        guard.min_free_bytes = 0
        while len(changes) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert changes == [True, False]
    finally:
        stop.set()
        watcher.join(5)
