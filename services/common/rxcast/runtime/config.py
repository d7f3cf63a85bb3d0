"""Service settings: typed and validated in one place, from defaults, environment and flags.

A service declares its settings as a pydantic-settings model extending
ServerSettings, with `env_prefix` RXCAST_<SERVICE>_. Each field carries its
type (choices as `Literal`), its range (`Field(ge=, gt=, le=, lt=)`) and a
description; rules across fields are model validators raising SettingError.
Settings objects are frozen.

`load_config` fills one from the defaults, then the environment variables
RXCAST_<SERVICE>_<FIELD>, then the flags --<field-with-dashes>: a flag beats
the environment, which beats the default. --help lists every setting with its
variable, default and range. Every invalid value is reported in one
InvalidArgument, each named by where it came from:
`RXCAST_FEATURE_ONLINE_STORE: must be one of sqlite, redis, got 'mysql'`.
"""

from __future__ import annotations

import argparse
import os
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from rxcast.runtime.errors import InvalidArgument

C = TypeVar("C", bound="ServerSettings")

LogLevel = Literal["debug", "info", "warning", "error"]

#: Port types every service declares with its own default.
GrpcPort = Annotated[int, Field(ge=0, le=65535, description="gRPC port; 0 picks a free one (see --ready-file)")]
MetricsPort = Annotated[
    int, Field(ge=-1, le=65535, description="Prometheus metrics HTTP port; 0 picks a free one, -1 disables")
]


class SettingError(ValueError):
    """A rule across settings, broken; raised in a model validator and reported under `setting`."""

    def __init__(self, setting: str, problem: str):
        super().__init__(problem)
        self.setting = setting
        self.problem = problem


class ServerSettings(BaseSettings):
    """Settings every rxcast server shares."""

    # Services set env_prefix="RXCAST_<SERVICE>_".
    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=True, env_prefix="RXCAST_")

    host: str = Field(
        "127.0.0.1", min_length=1, description="address to bind gRPC and metrics to; loopback unless deployed"
    )
    port: GrpcPort = 0
    metrics_port: MetricsPort = 0
    max_workers: int = Field(16, ge=1, le=1024, description="gRPC worker threads (concurrent calls)")
    # gRPC's message limit is an int32 of bytes: 2047 MiB is the most it takes.
    max_message_mb: int = Field(64, ge=1, le=2047, description="largest gRPC message accepted or sent, in MiB")
    grace_seconds: float = Field(10.0, ge=0, description="on SIGTERM, how long in-flight calls may take to finish")
    drain_seconds: float = Field(
        0.0, ge=0, description="on SIGTERM, how long to report NOT_SERVING before refusing calls"
    )
    log_level: LogLevel = Field("info", description="least severe log level written")
    access_log: bool = Field(True, description="log one line per RPC")
    ready_file: str = Field("", description="once serving, write {port, metrics_port, pid} as JSON to this path")

    def __init__(self, **values: Any) -> None:
        """Direct construction: keyword arguments beat the environment (pydantic-settings)."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            environ = {name.upper() for name in os.environ}
            sources = {}
            for name in type(self).model_fields:
                variable = env_variable(type(self), name)
                if name not in values and variable.upper() in environ:
                    sources[name] = variable
            raise InvalidArgument(describe(type(self), exc, sources)) from None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        undocumented = [name for name, field in cls.model_fields.items() if not field.description]
        if undocumented:
            raise TypeError(f"{cls.__name__}: settings without a description: {', '.join(undocumented)}")


def env_prefix(service: str) -> str:
    return f"RXCAST_{service.upper()}_"


def env_variable(cls: type[ServerSettings], name: str) -> str:
    return f"{cls.model_config.get('env_prefix', '')}{name.upper()}"


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def load_config(
    cls: type[C],
    service: str,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> C:
    """Build `cls` from its defaults, then `environ` (default: os.environ), then flags (default: sys.argv).

    Invalid values raise one InvalidArgument naming each; when a flag is among
    them, the parser exits with usage instead (status 2), as for any bad flag.
    """
    prefix = env_prefix(service)
    if cls.model_config.get("env_prefix") != prefix:
        raise TypeError(f"{cls.__name__} must set env_prefix={prefix!r} to be loaded as the {service} service")
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name in cls.model_fields:
        variable = env_variable(cls, name)
        if variable in environ:
            values[name], sources[name] = environ[variable], variable
    parser = _parser(cls, service, environ)
    for name, text in vars(parser.parse_args(argv)).items():
        values[name], sources[name] = text, flag(name)
    try:
        # model_validate, unlike the constructor, reads no environment of its own: `environ` is the only one.
        return cls.model_validate(values)
    except ValidationError as exc:
        message = describe(cls, exc, sources)
        if any(error["loc"] and sources.get(str(error["loc"][0]), "").startswith("--") for error in exc.errors()):
            parser.error(message)
        raise InvalidArgument(message) from None


def describe(cls: type[ServerSettings], exc: ValidationError, sources: Mapping[str, str]) -> str:
    """One line naming every invalid setting by where its value came from (flag, variable or name)."""
    problems = []
    for error in exc.errors():
        context = error.get("ctx") or {}
        cause = context.get("error")
        if isinstance(cause, SettingError):
            problems.append(f"{sources.get(cause.setting, cause.setting)}: {cause.problem}")
            continue
        name = str(error["loc"][0]) if error["loc"] else ""
        label = sources.get(name, name) or cls.__name__
        problem = _problem(cls.model_fields.get(name), error)
        got = f", got {error['input']!r}" if error["loc"] and error["type"] != "extra_forbidden" else ""
        problems.append(f"{label}: {problem}{got}")
    return "; ".join(problems)


def _problem(field: FieldInfo | None, error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if field is None:
        return "no such setting" if kind == "extra_forbidden" else error["msg"]
    if kind == "literal_error":
        return f"must be one of {', '.join(map(str, _choices(field)))}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "must be a number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false (or yes/no, on/off, 1/0)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"must be {_bounds(field)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "value_error":
        return str((error.get("ctx") or {}).get("error", error["msg"]))
    return error["msg"][0].lower() + error["msg"][1:]


def _choices(field: FieldInfo) -> tuple[Any, ...]:
    return typing.get_args(field.annotation) if typing.get_origin(field.annotation) is Literal else ()


def _bounds(field: FieldInfo) -> str:
    """The field's range, e.g. ">= 0 and <= 65535"; "" when it has none."""
    parts = []
    for rule in field.metadata:  # annotated_types' Ge, Gt, Le, Lt, as Field(ge=, ...) records them
        for attribute, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(rule, attribute, None) is not None:
                parts.append(f"{symbol} {getattr(rule, attribute)}")
    return " and ".join(parts)


def _metavar(field: FieldInfo) -> str:
    choices = _choices(field)
    if choices:
        return "{" + ",".join(map(str, choices)) + "}"
    kind = field.annotation
    return kind.__name__.upper() if isinstance(kind, type) else "VALUE"


def _parser(cls: type[ServerSettings], service: str, environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """Flags for every field. Values stay text for the model to validate, so that every
    invalid one is reported together; flags not given are left out (argparse.SUPPRESS)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m rxcast.{service}",
        description=cls.__doc__,
        epilog=f"Each setting is also read from its {env_prefix(service)}* variable; a flag beats the "
        "variable, which beats the default.",
    )
    for name, field in cls.model_fields.items():
        variable = env_variable(cls, name)
        bounds = _bounds(field)
        current = f"={environ[variable]!r}" if variable in environ else ""
        text = f"{field.description}{f' ({bounds})' if bounds else ''} [env {variable}{current}; default {field.default!r}]"
        parser.add_argument(
            flag(name), dest=name, default=argparse.SUPPRESS, metavar=_metavar(field), help=text.replace("%", "%%")
        )
    return parser
