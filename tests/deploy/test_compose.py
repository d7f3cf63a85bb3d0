"""docker-compose.yml agrees with the code, and its configuration really runs.

The static tests read the file against the services' config classes, the
suite's topology and the Dockerfile. The last test starts the same commands
with the same environment as local processes (container ports → free
loopback ports, Redis → a real redis-server) and runs each health check.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from rxcast.clients import FeatureClient
from rxcast.runtime import tls
from rxcast.runtime.config import load_config
from rxcast.runtime.healthcheck import check, check_http
from rxcast.suite.topology import NODES
from tests import binaries
from tests.deploy.compose import (
    ADDRESS,
    CONFIG_CLASSES,
    HEALTHCHECK_MODULE,
    REPO,
    Container,
    LocalPlan,
    containers,
    load,
    startup_waves,
)
from tests.feature.records import to_protos, world
from tests.feature.test_redis import redis_port  # noqa: F401  (a real redis-server on a free port)
from tests.scrape import metrics_text

DOC = load()
CONTAINERS = containers(DOC)
REDIS = "redis"
REDIS_PORT = 6379
#: The one-shot service that makes the CA, certificates and tokens every service mounts.
CERTS = "certs"
CERTS_MODULE = "rxcast.runtime.certs"


def _field_names(cls) -> set[str]:
    return set(cls.model_fields)


def test_the_suite_and_redis_are_there():
    assert set(DOC["services"]) == {REDIS, CERTS, *(node.name for node in NODES)}
    assert set(CONTAINERS) == {node.name for node in NODES}
    certs = DOC["services"][CERTS]
    assert certs["command"][:3] == ["python", "-m", CERTS_MODULE] and certs["restart"] == "no"
    assert {c.spec["image"] for c in CONTAINERS.values()} == {certs["image"]}, "certs runs from the services' image"
    redis = DOC["services"][REDIS]
    assert re.fullmatch(r"redis(:[\w.-]+)?", redis["image"]), "the official redis image"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert redis["volumes"] and all(v.split(":")[0] in DOC["volumes"] for v in redis["volumes"])
    for container in CONTAINERS.values():
        assert container.spec["build"] == ".", f"{container.name}: built from the project's Dockerfile"
    assert len({c.spec["image"] for c in CONTAINERS.values()}) == 1, "one image for every service"


def test_every_command_is_an_entry_point_of_the_project():
    modules = sorted({c.module for c in CONTAINERS.values()} | {HEALTHCHECK_MODULE, CERTS_MODULE})
    for module in modules:
        assert module.startswith("rxcast."), module
        assert importlib.util.find_spec(module) is not None, f"no module {module}"
    for container in CONTAINERS.values():
        assert container.healthcheck[:3] == ["python", "-m", HEALTHCHECK_MODULE], container.name
    # In parallel: each is an interpreter start with heavy imports.
    helps = {
        m: subprocess.Popen(
            [sys.executable, "-m", m, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for m in modules
    }
    for module, process in helps.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"python -m {module} --help failed:\n{err}"
        assert "usage:" in out


def test_every_setting_names_a_real_config_field():
    for container in CONTAINERS.values():
        prefix = f"RXCAST_{container.service.upper()}_"
        fields = _field_names(CONFIG_CLASSES[container.service])
        for name in container.environment:
            assert name.startswith(prefix), f"{container.name}: {name} is not a {container.service} setting"
            assert name[len(prefix) :].lower() in fields, f"{container.name}: {name} names no field of {fields}"
        # The service's own loader takes every value (types, modes, ranges).
        config = container.config()
        assert config.host == "0.0.0.0", f"{container.name}: must bind all interfaces inside its container"
        assert not config.ready_file


def test_ports_agree_and_are_published_on_loopback_only():
    host_ports = []
    for container in CONTAINERS.values():
        config = container.config()
        published = container.published
        assert published, f"{container.name} publishes no port"
        for ip, host, inside in published:
            assert ip == "127.0.0.1", f"{container.name}: {host} published beyond loopback"
            assert host == inside, f"{container.name}: host port {host} differs from container port {inside}"
        assert {inside for _, _, inside in published} == {config.port, config.metrics_port}, container.name
        # Over TLS, with the service's own certificate from the certs volume; the
        # dashboard's pages over HTTP at /healthz.
        how = (
            ["--http"]
            if container.service == "dashboard"
            else ["--tls-dir", config.tls_dir, "--identity", container.service]
        )
        assert container.healthcheck[3:] == [f"127.0.0.1:{config.port}", *how], (
            f"{container.name}: health check port and credentials"
        )
        assert container.mounts.get(CERTS) == config.tls_dir, f"{container.name}: certs volume at its tls_dir"
        assert not config.plaintext, f"{container.name}: plaintext"
        host_ports += [host for _, host, _ in published]
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"
    assert "ports" not in DOC["services"][REDIS], "Redis stays private to the compose network"


def test_the_default_ports_are_kept():
    for container in CONTAINERS.values():
        if container.name == "predictor-batch":
            continue  # the second predictor on one host: 50054/9154, as the README lists
        defaults = CONFIG_CLASSES[container.service]()
        config = container.config()
        assert (config.port, config.metrics_port) == (defaults.port, defaults.metrics_port), container.name
    batch = CONTAINERS["predictor-batch"].config()
    assert (batch.mode, batch.port, batch.metrics_port) == ("batch", 50054, 9154)


def _grpc_port(name: str) -> int:
    return REDIS_PORT if name == REDIS else CONTAINERS[name].config().port


def test_dependencies_point_at_compose_services_and_wait_for_their_health():
    for container in CONTAINERS.values():
        config = container.config()
        targets = set()
        for name in type(config).model_fields:
            value = getattr(config, name)
            if not (name.endswith(("_address", "_url"))) or not value:
                continue
            match = ADDRESS.search(value)
            assert match, f"{container.name}: {name}={value!r} is no host:port"
            host, port = match.group(1), int(match.group(2))
            assert host in DOC["services"], f"{container.name}: {name} points at {host}, not a compose service"
            serves = CONTAINERS[host].config().metrics_port if name.endswith("_metrics_url") else _grpc_port(host)
            assert port == serves, f"{container.name}: {name} uses port {port}, {host} serves on {serves}"
            targets.add(host)
        assert set(container.depends_on) == targets | {CERTS}, (
            f"{container.name}: depends_on differs from the addresses it uses (and certs)"
        )
        for dependency, condition in container.depends_on.items():
            if dependency == CERTS:
                assert condition == {"condition": "service_completed_successfully"}, container.name
                continue
            assert condition == {"condition": "service_healthy"}, f"{container.name} → {dependency}"
            assert "healthcheck" in DOC["services"][dependency]
    assert CONTAINERS["feature"].config().online_store == "redis"


class _Named:
    """A started process as the topology sees it, standing for a compose service."""

    def __init__(self, name: str):
        self.address = f"{name}:{_grpc_port(name)}"
        self.metrics_port = CONTAINERS[name].config().metrics_port if name != REDIS else -1


def test_same_wiring_as_the_suite_topology():
    """The demo's processes and the containers get the same settings (paths under /data)."""
    started = {node.name: _Named(node.name) for node in NODES}
    for node in NODES:
        container = CONTAINERS[node.name]
        assert container.service == node.service
        assert set(container.depends_on) - {REDIS, CERTS} == set(node.depends_on), node.name
        flags = node.args(started, Path("/data"))
        wired = {flag[2:].replace("-", "_") for flag in flags if flag.startswith("--")}
        expected = load_config(CONFIG_CLASSES[node.service], node.service, flags, {})
        actual = container.config()
        for name in sorted(wired):
            assert getattr(actual, name) == getattr(expected, name), f"{node.name}: {name}"


DOCKERFILE_MKDIR = re.compile(r"mkdir -p ([^&\n\\]+)")


def test_volumes_are_declared_used_and_hold_every_data_directory():
    used = {v.split(":")[0] for spec in DOC["services"].values() for v in spec.get("volumes", [])}
    assert used == set(DOC["volumes"]), "a declared volume is unused, or a used one undeclared"
    created = {p for line in DOCKERFILE_MKDIR.findall((REPO / "Dockerfile").read_text()) for p in line.split()}
    for container in CONTAINERS.values():
        mounts = container.mounts
        # A fresh named volume takes the owner of the image's directory; one the image
        # lacks would be root's and the service (user rxcast) could not write to it.
        for target in mounts.values():
            assert target in created, f"{container.name}: {target} is not created in the Dockerfile"
        config = container.config()
        for name in type(config).model_fields:
            if name.endswith("_dir") and name != "model_dir" and _applies(container, name):
                path = getattr(config, name)
                assert any(path == t or path.startswith(t + "/") for t in mounts.values()), (
                    f"{container.name}: {name}={path!r} is on no volume; it would be lost with the container"
                )


def _applies(container: Container, field: str) -> bool:
    """The online predictor keeps no batch runs: its data_dir is unused."""
    return not (container.service == "predictor" and field == "data_dir" and container.config().mode == "online")


# --- the same configuration, run ---------------------------------------------------


def _redis_dbsize(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"DBSIZE\r\n")
        reply = conn.recv(64)
    assert reply.startswith(b":"), reply
    return int(reply[1:].strip())


class _Running:
    def __init__(self, container: Container, plan: LocalPlan, log_dir: Path, trust: tls.Trust):
        self.trust = trust
        self.container = container
        self.env = plan.environment(container)
        self.health_command = plan.healthcheck(container)
        self.port = plan.ports[(container.name, container.config().port)]
        self.log_path = log_dir / f"{container.name}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("RXCAST_")}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                plan.command(container),
                env={**base, "FEAST_USAGE": "False", **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def wait_serving(self, timeout: float = 120.0) -> None:
        """Poll the gRPC health service as Docker's health check would, in process."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"{self.container.name} exited ({self.process.returncode}):\n{self.log_tail()}")
            if self.container.service == "dashboard":
                if _http_serving(self.port):
                    return
            else:
                try:
                    if check(f"127.0.0.1:{self.port}", timeout=1.0, trust=self.trust) == "SERVING":
                        return
                except grpc.RpcError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"{self.container.name} not SERVING after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _http_serving(port: int) -> bool:
    try:
        return check_http(f"127.0.0.1:{port}", timeout=1.0) == "SERVING"
    except (OSError, ValueError):
        return False


def test_the_compose_configuration_runs_and_every_health_check_passes(tmp_path, redis_port):  # noqa: F811
    ports: dict[tuple[str, int], int] = {(REDIS, REDIS_PORT): redis_port}
    for container in CONTAINERS.values():
        for _, _, inside in container.published:
            ports[(container.name, inside)] = binaries.free_port()
    volumes = {name: tmp_path / "volumes" / name for name in DOC["volumes"]}
    plan = LocalPlan(ports, volumes)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    # The one-shot certs service, run first: its command with its volume.
    certs = DOC["services"][CERTS]
    ((certs_volume, mount),) = [v.split(":")[:2] for v in certs["volumes"]]
    command = [str(volumes[certs_volume]) if part == mount else part for part in certs["command"][1:]]
    made = subprocess.run([sys.executable, *command], capture_output=True, check=False, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    trust = tls.ClientSettings(tls_dir=str(volumes[certs_volume]), identity="admin").trust()

    running: list[_Running] = []
    try:
        # Like compose: a service starts once everything it depends on is healthy.
        for wave in startup_waves(DOC, list(CONTAINERS)):
            started = [_Running(CONTAINERS[name], plan, log_dir, trust) for name in wave]
            running += started
            for process in started:
                process.wait_serving()
                result = subprocess.run(process.health_command, capture_output=True, check=False, text=True, timeout=60)
                assert result.returncode == 0, f"{process.container.name}: {result.stdout}{result.stderr}"
                assert "SERVING" in result.stdout

        by_name = {r.container.name: r for r in running}
        for name, process in by_name.items():
            # The metrics port from the environment answers too.
            metrics_port = plan.ports[(name, CONTAINERS[name].config().metrics_port)]
            assert "rxcast_" in metrics_text(metrics_port, trust), name

        # The feature service's online store is the Redis the compose file names.
        assert _redis_dbsize(redis_port) == 0
        with FeatureClient(f"127.0.0.1:{by_name['feature'].port}", timeout=60, trust=trust) as client:
            outcome = client.ingest(to_protos(world(1, 2, 3, prefix="c")))
            assert outcome.accepted == 6 and not outcome.errors
        assert _redis_dbsize(redis_port) > 0
        # Each service made its state directory where the environment put it: on its volume.
        for name in {v for c in CONTAINERS.values() for v in c.mounts}:
            assert volumes[name].is_dir(), f"no service wrote to volume {name}"
        assert any((volumes["feature-data"]).iterdir())
    finally:
        for process in reversed(running):
            process.stop()
