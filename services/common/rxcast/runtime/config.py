"""Service configuration from defaults, environment and command-line flags.

A service declares its settings as a dataclass (extending ServerConfig). Every
field can be set by the environment variable RXCAST_<SERVICE>_<FIELD> and by
the flag --<field-with-dashes>; a flag beats the environment, which beats the
default. The field's `help` metadata documents it in --help.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from rxcast.runtime.errors import InvalidArgument

C = TypeVar("C", bound="ServerConfig")


def setting(default: Any, help: str) -> Any:
    """A config field with its documentation."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Settings every rxcast server shares."""

    host: str = setting("127.0.0.1", "address to bind gRPC and metrics to; loopback unless deployed")
    port: int = setting(0, "gRPC port; 0 picks a free one (see --ready-file)")
    metrics_port: int = setting(0, "Prometheus metrics HTTP port; 0 picks a free one, -1 disables")
    max_workers: int = setting(16, "gRPC worker threads (concurrent calls)")
    max_message_mb: int = setting(64, "largest gRPC message accepted or sent, in MiB")
    grace_seconds: float = setting(10.0, "on SIGTERM, how long in-flight calls may take to finish")
    drain_seconds: float = setting(0.0, "on SIGTERM, how long to report NOT_SERVING before refusing calls")
    log_level: str = setting("info", "debug, info, warning or error")
    access_log: bool = setting(True, "log one line per RPC")
    ready_file: str = setting("", "once serving, write {port, metrics_port, pid} as JSON to this path")


def _env_name(service: str, field: str) -> str:
    return f"RXCAST_{service.upper()}_{field.upper()}"


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _converter(kind: Any):
    if kind is bool:
        return _parse_bool
    if kind in (int, float, str):
        return kind
    raise TypeError(f"unsupported config field type {kind!r}")


def load_config(
    cls: type[C],
    service: str,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> C:
    """Build `cls` from its defaults, then the environment, then flags."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        name = _env_name(service, field.name)
        if name in environ:
            try:
                values[field.name] = _converter(hints[field.name])(environ[name])
            except ValueError as exc:
                raise InvalidArgument(f"environment variable {name}: {exc}") from None

    parser = argparse.ArgumentParser(prog=f"python -m rxcast.{service}", description=cls.__doc__)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        default = values.get(field.name, field.default)
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=_converter(kind),
            default=default,
            metavar=kind.__name__.upper(),
            help=f"{field.metadata.get('help', '')} (env {_env_name(service, field.name)}; default {default!r})",
        )
    parsed = parser.parse_args(argv)
    return cls(**vars(parsed))
