"""docker-compose.yml read as data, and translated to local processes.

No Docker engine runs here, so the deploy tests take the compose file apart:
which module each container runs, with which settings (loaded through the
services' own config classes), and how the same commands run as processes on
loopback when every container port becomes a free local port.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rxcast.dashboard.config import DashboardConfig
from rxcast.drift.config import DriftConfig
from rxcast.feature.config import FeatureConfig
from rxcast.predictor.config import PredictorConfig
from rxcast.runtime.config import ServerSettings, load_config
from rxcast.trainer.config import TrainerConfig

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
CONFIG_CLASSES: dict[str, type[ServerSettings]] = {
    "feature": FeatureConfig,
    "trainer": TrainerConfig,
    "predictor": PredictorConfig,
    "drift": DriftConfig,
    "dashboard": DashboardConfig,
}
HEALTHCHECK_MODULE = "rxcast.runtime.healthcheck"
# host:port inside a value: a compose service name (or the container itself) and a port.
ADDRESS = re.compile(r"(?<![\w.-])([\w.-]+):(\d+)\b")


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@dataclasses.dataclass(frozen=True)
class Container:
    """One compose service that runs an rxcast module."""

    name: str
    spec: Mapping[str, Any]

    @property
    def command(self) -> list[str]:
        return list(self.spec["command"])

    @property
    def module(self) -> str:
        python, flag, module, *_ = self.command
        assert (python, flag) == ("python", "-m"), f"{self.name}: command must be python -m <module>"
        return module

    @property
    def args(self) -> list[str]:
        return self.command[3:]

    @property
    def service(self) -> str:
        """The service name of its settings: rxcast.predictor → predictor."""
        return self.module.split(".")[1]

    @property
    def environment(self) -> dict[str, str]:
        env = self.spec.get("environment") or {}
        assert isinstance(env, dict), f"{self.name}: environment must be a mapping"
        return {str(k): str(v) for k, v in env.items()}

    def config(self, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """The settings this container runs with, through the service's own loader."""
        cls = CONFIG_CLASSES[self.service]
        return load_config(cls, self.service, self.args, self.environment if environ is None else environ)

    @property
    def published(self) -> list[tuple[str, int, int]]:
        """(host ip, host port, container port) of each published port."""
        out = []
        for entry in self.spec.get("ports", []):
            ip, host, container = str(entry).split(":")
            out.append((ip, int(host), int(container)))
        return out

    @property
    def healthcheck(self) -> list[str]:
        test = self.spec["healthcheck"]["test"]
        assert test[0] == "CMD", f"{self.name}: health check must be an exec form [CMD, ...]"
        return list(test[1:])

    @property
    def depends_on(self) -> dict[str, dict]:
        return dict(self.spec.get("depends_on") or {})

    @property
    def mounts(self) -> dict[str, str]:
        """Named volume → path in the container."""
        return dict(str(v).split(":")[:2] for v in self.spec.get("volumes", []))


def containers(doc: Mapping[str, Any]) -> dict[str, Container]:
    """The compose services built from the project's image (not Redis)."""
    return {name: Container(name, spec) for name, spec in doc["services"].items() if "build" in spec}


def startup_waves(doc: Mapping[str, Any], names: list[str]) -> list[list[str]]:
    """`names` grouped in the order compose starts them (dependencies first)."""
    done: set[str] = set(doc["services"]) - set(names)
    pending, waves = list(names), []
    while pending:
        wave = [n for n in pending if set(doc["services"][n].get("depends_on") or {}) <= done]
        assert wave, f"circular depends_on among {pending}"
        waves.append(wave)
        done |= set(wave)
        pending = [n for n in pending if n not in done]
    return waves


@dataclasses.dataclass
class LocalPlan:
    """How compose's containers run as local processes.

    `ports` maps (compose service, container port) to a free loopback port;
    `volumes` maps a named volume to a local directory.
    """

    ports: dict[tuple[str, int], int]
    volumes: dict[str, Path]

    def address(self, own: str, text: str) -> str:
        """Rewrite every host:port in `text`: compose names and the container itself → loopback."""

        def local(match: re.Match) -> str:
            host, port = match.group(1), int(match.group(2))
            target = own if host in ("127.0.0.1", "localhost", "0.0.0.0") else host
            if (target, port) not in self.ports:
                return match.group(0)
            return f"127.0.0.1:{self.ports[(target, port)]}"

        return ADDRESS.sub(local, text)

    def environment(self, container: Container) -> dict[str, str]:
        env = {}
        for name, value in container.environment.items():
            if name.endswith("_HOST") and value == "0.0.0.0":
                value = "127.0.0.1"  # tests bind loopback only
            elif name.endswith("_PORT") and value.isdigit():
                value = str(self.ports[(container.name, int(value))])
            else:
                value = self.path(container, self.address(container.name, value))
            env[name] = value
        return env

    def path(self, container: Container, value: str) -> str:
        """A path on one of the container's volumes → the volume's local directory."""
        for volume, target in container.mounts.items():
            if value == target or value.startswith(target + "/"):
                return str(self.volumes[volume]) + value[len(target) :]
        return value

    def command(self, container: Container) -> list[str]:
        return [sys.executable, *container.command[1:]]

    def healthcheck(self, container: Container) -> list[str]:
        python, *rest = container.healthcheck
        assert python == "python"
        return [sys.executable, *(self.path(container, self.address(container.name, part)) for part in rest)]
