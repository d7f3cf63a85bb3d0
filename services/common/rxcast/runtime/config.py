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
InvalidSettings (an InvalidArgument), each named by where it came from:
`RXCAST_FEATURE_ONLINE_STORE: must be one of sqlite, redis, got 'mysql'`.
Constructing a class directly (`FeatureConfig(data_dir=...)`) reads the same
variables from os.environ, below the keyword arguments.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import typing
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rxcast.runtime.errors import InvalidArgument

C = TypeVar("C", bound="ServerSettings")

LogLevel = Literal["debug", "info", "warning", "error"]

#: Port types every service declares with its own default.
GrpcPort = Annotated[int, Field(ge=0, le=65535, description="gRPC port; 0 picks a free one (see --ready-file)")]
MetricsPort = Annotated[
    int, Field(ge=-1, le=65535, description="Prometheus metrics HTTP port; 0 picks a free one, -1 disables")
]

#: Services with a data directory declare `min_free_mb: MinFreeMb = 64` next to
#: their `data_dir`; the runtime then guards it (rxcast.runtime.disk).
MinFreeMb = Annotated[
    int,
    Field(ge=0, description="below this much free space (MiB) under data_dir: NOT_SERVING, writes RESOURCE_EXHAUSTED"),
]


class SettingError(ValueError):
    """A rule across settings, broken; raised in a model validator and reported under `setting`."""

    def __init__(self, setting: str, problem: str):
        super().__init__(problem)
        self.setting = setting
        self.problem = problem


class InvalidSettings(InvalidArgument):
    """Settings that do not validate. `problems` holds (where the value came from, what is wrong)."""

    def __init__(self, problems: Sequence[tuple[str, str]]):
        super().__init__("; ".join(f"{where}: {what}" for where, what in problems))
        self.problems = list(problems)


# Set by load_config while it constructs settings from flags: the environment
# to read instead of os.environ (and, by being set, that keyword arguments are flags).
_LOADING: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "rxcast_settings_environ", default=None
)


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
    max_concurrent_rpcs: int = Field(
        256, ge=1, description="calls running or queued for a worker at once; more are refused RESOURCE_EXHAUSTED"
    )
    # gRPC's message limit is an int32 of bytes: 2047 MiB is the most it takes.
    max_message_mb: int = Field(64, ge=1, le=2047, description="largest gRPC message accepted or sent, in MiB")
    grace_seconds: float = Field(10.0, ge=0, description="on SIGTERM, how long in-flight calls may take to finish")
    drain_seconds: float = Field(
        0.0, ge=0, description="on SIGTERM, how long to report NOT_SERVING before refusing calls"
    )
    log_level: LogLevel = Field("info", description="least severe log level written")
    access_log: bool = Field(True, description="log one line per RPC")
    ready_file: str = Field("", description="once serving, write {port, metrics_port, pid} as JSON to this path")
    # Transport and callers (rxcast.runtime.tls, rxcast.runtime.auth): TLS with client
    # certificates and bearer tokens unless `plaintext` says otherwise.
    plaintext: bool = Field(
        False, description="no TLS, no client certificates, no tokens: every caller may do anything (experiments only)"
    )
    tls_dir: str = Field(
        "certs", min_length=1, description="where `make certs` wrote ca.crt, <service>.crt/.key/.token and roles.json"
    )
    tls_ca_file: str = Field(
        "", description="CA that callers' and servers' certificates must chain to; empty: <tls-dir>/ca.crt"
    )
    tls_cert_file: str = Field(
        "",
        description="this service's certificate, served and shown to the services it calls; empty: <tls-dir>/<service>.crt",
    )
    tls_key_file: str = Field("", description="the certificate's private key; empty: <tls-dir>/<service>.key")
    token_file: str = Field(
        "", description="this service's bearer token for the calls it makes; empty: <tls-dir>/<service>.token"
    )
    roles_file: str = Field("", description="callers' token digests, identities and roles; empty: <tls-dir>/roles.json")
    require_client_cert: bool = Field(True, description="mTLS: refuse callers without a certificate from the CA")

    def __init__(self, **values: Any) -> None:
        """Keyword arguments beat RXCAST_<SERVICE>_<FIELD> variables, which beat the defaults."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            cls = type(self)
            environ = _environ()
            loading = _LOADING.get() is not None
            sources = {name: env_variable(cls, name) for name in cls.model_fields if env_variable(cls, name) in environ}
            sources.update({name: flag(name) if loading else name for name in values})
            raise InvalidSettings(problems(cls, exc, sources)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No .env or secret files: a setting comes from a flag, a variable or its default.
        return init_settings, _Environment(settings_cls, _environ())

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        undocumented = [name for name, field in cls.model_fields.items() if not field.description]
        if undocumented:
            raise TypeError(f"{cls.__name__}: settings without a description: {', '.join(undocumented)}")


class _Environment(PydanticBaseSettingsSource):
    """The RXCAST_<SERVICE>_<FIELD> variables of one environment, exactly so spelled, as text."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = env_variable(self.settings_cls, field_name)
        return self.environ.get(variable), variable, False

    def __call__(self) -> dict[str, Any]:
        found = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                found[name] = value
        return found


def _environ() -> Mapping[str, str]:
    environ = _LOADING.get()
    return os.environ if environ is None else environ


@contextmanager
def _loading(environ: Mapping[str, str]) -> Iterator[None]:
    token = _LOADING.set(environ)
    try:
        yield
    finally:
        _LOADING.reset(token)


def env_prefix(service: str) -> str:
    return f"RXCAST_{service.upper()}_"


def env_variable(cls: type[BaseSettings], name: str) -> str:
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

    Invalid values raise one InvalidSettings naming each; when a flag is among
    them, the parser exits with usage and that message instead (status 2), as
    for any bad flag.
    """
    prefix = env_prefix(service)
    if cls.model_config.get("env_prefix") != prefix:
        raise TypeError(f"{cls.__name__} must set env_prefix={prefix!r} to be loaded as the {service} service")
    environ = os.environ if environ is None else environ
    parser = _parser(cls, service, environ)
    flags = vars(parser.parse_args(argv))
    try:
        with _loading(environ):
            return cls(**flags)
    except InvalidSettings as exc:
        if any(where.startswith("--") for where, _ in exc.problems):
            parser.error(exc.message)
        raise


def problems(cls: type[BaseSettings], exc: ValidationError, sources: Mapping[str, str]) -> list[tuple[str, str]]:
    """(where, what) of every error: where is the flag, the variable or else the name of the setting."""
    found = []
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SettingError):
            found.append((sources.get(cause.setting, cause.setting), cause.problem))
            continue
        name = str(error["loc"][0]) if error["loc"] else ""
        where = sources.get(name, name) or cls.__name__
        what = _problem(cls.model_fields.get(name), error)
        if error["loc"] and error["type"] != "extra_forbidden":
            what += f", got {error['input']!r}"
        found.append((where, what))
    return found


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
        epilog=f"Every setting is also read from its {env_prefix(service)}* variable; a flag beats the "
        "variable, which beats the default.",
    )
    for name, field in cls.model_fields.items():
        variable = env_variable(cls, name)
        bounds = f" ({_bounds(field)})" if _bounds(field) else ""
        current = f"={environ[variable]!r}" if variable in environ else ""
        text = f"{field.description}{bounds} [env {variable}{current}; default {field.default!r}]"
        parser.add_argument(
            flag(name), dest=name, default=argparse.SUPPRESS, metavar=_metavar(field), help=text.replace("%", "%%")
        )
    return parser
