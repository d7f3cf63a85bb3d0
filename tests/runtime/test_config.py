"""Configuration: defaults, then environment, then flags."""

from __future__ import annotations

import dataclasses

import pytest

from rxcast.runtime.config import ServerConfig, load_config, setting
from rxcast.runtime.errors import InvalidArgument


@dataclasses.dataclass(frozen=True)
class ExampleConfig(ServerConfig):
    """An example service."""

    port: int = setting(6000, "port")
    ratio: float = setting(0.5, "a ratio")
    enabled: bool = setting(False, "a switch")


def test_defaults():
    config = load_config(ExampleConfig, "example", [], {})
    assert (config.port, config.ratio, config.enabled, config.host) == (6000, 0.5, False, "127.0.0.1")


def test_environment_overrides_defaults():
    env = {"RXCAST_EXAMPLE_PORT": "7000", "RXCAST_EXAMPLE_ENABLED": "true", "RXCAST_OTHER_PORT": "1"}
    config = load_config(ExampleConfig, "example", [], env)
    assert (config.port, config.enabled) == (7000, True)


def test_flags_override_environment():
    env = {"RXCAST_EXAMPLE_PORT": "7000", "RXCAST_EXAMPLE_RATIO": "0.1"}
    config = load_config(ExampleConfig, "example", ["--port", "8000", "--enabled", "yes"], env)
    assert (config.port, config.ratio, config.enabled) == (8000, 0.1, True)


def test_bad_environment_value_names_the_variable():
    with pytest.raises(InvalidArgument, match="RXCAST_EXAMPLE_PORT"):
        load_config(ExampleConfig, "example", [], {"RXCAST_EXAMPLE_PORT": "eighty"})


def test_bad_flag_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_config(ExampleConfig, "example", ["--ratio", "half"], {})
    assert exit_info.value.code == 2
    assert "--ratio" in capsys.readouterr().err
