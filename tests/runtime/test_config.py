"""Configuration: defaults, then environment, then flags; every invalid value named at once."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from rxcast.drift.config import DriftConfig
from rxcast.feature.config import FeatureConfig
from rxcast.predictor.config import PredictorConfig
from rxcast.runtime.config import (
    InvalidSettings,
    ServerSettings,
    SettingError,
    env_variable,
    flag,
    load_config,
)
from rxcast.runtime.errors import InvalidArgument
from rxcast.trainer.config import TrainerConfig

SERVICES = {"feature": FeatureConfig, "trainer": TrainerConfig, "predictor": PredictorConfig, "drift": DriftConfig}


class ExampleConfig(ServerSettings):
    """An example service."""

    model_config = SettingsConfigDict(env_prefix="RXCAST_EXAMPLE_")

    port: int = Field(6000, ge=0, le=65535, description="port")
    ratio: float = Field(0.5, gt=0, lt=1, description="a ratio")
    enabled: bool = Field(False, description="a switch")
    flavour: Literal["plain", "salted"] = Field("plain", description="a choice")


class PairedConfig(ExampleConfig):
    """An example service with a rule across two settings."""

    partner: str = Field("", description="needed when enabled")

    @model_validator(mode="after")
    def _enabled_needs_a_partner(self) -> PairedConfig:
        if self.enabled and not self.partner:
            raise SettingError("enabled", "needs a partner")
        return self


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


def test_precedence_default_then_environment_then_flag(monkeypatch):
    monkeypatch.setenv("RXCAST_EXAMPLE_PORT", "6500")  # os.environ is not read when an environment is given
    assert load_config(ExampleConfig, "example", [], {}).port == 6000
    assert load_config(ExampleConfig, "example", [], {"RXCAST_EXAMPLE_PORT": "7000"}).port == 7000
    assert load_config(ExampleConfig, "example", ["--port", "8000"], {"RXCAST_EXAMPLE_PORT": "7000"}).port == 8000
    assert load_config(ExampleConfig, "example", [], None).port == 6500  # None: os.environ
    assert ExampleConfig().port == 6500
    assert ExampleConfig(port=9000).port == 9000


@pytest.mark.parametrize(
    "variable, text, problem",
    [
        ("RXCAST_EXAMPLE_PORT", "eighty", "RXCAST_EXAMPLE_PORT: must be a whole number, got 'eighty'"),
        ("RXCAST_EXAMPLE_PORT", "70000", "RXCAST_EXAMPLE_PORT: must be >= 0 and <= 65535, got '70000'"),
        ("RXCAST_EXAMPLE_RATIO", "half", "RXCAST_EXAMPLE_RATIO: must be a number, got 'half'"),
        ("RXCAST_EXAMPLE_RATIO", "1", "RXCAST_EXAMPLE_RATIO: must be > 0 and < 1, got '1'"),
        ("RXCAST_EXAMPLE_FLAVOUR", "sweet", "RXCAST_EXAMPLE_FLAVOUR: must be one of plain, salted, got 'sweet'"),
        ("RXCAST_EXAMPLE_ENABLED", "maybe", "RXCAST_EXAMPLE_ENABLED: must be true or false"),
        ("RXCAST_EXAMPLE_LOG_LEVEL", "loud", "RXCAST_EXAMPLE_LOG_LEVEL: must be one of debug, info, warning, error"),
        ("RXCAST_EXAMPLE_HOST", "", "RXCAST_EXAMPLE_HOST: must not be empty, got ''"),
    ],
)
def test_each_kind_of_invalid_value_is_named_with_its_variable(variable, text, problem):
    with pytest.raises(InvalidArgument) as error:
        load_config(ExampleConfig, "example", [], {variable: text})
    assert problem in error.value.message


def test_a_rule_across_settings_names_the_setting_it_is_about():
    with pytest.raises(InvalidArgument, match="^RXCAST_EXAMPLE_ENABLED: needs a partner$"):
        load_config(PairedConfig, "example", [], {"RXCAST_EXAMPLE_ENABLED": "on"})
    with pytest.raises(InvalidArgument, match="^enabled: needs a partner$"):
        PairedConfig(enabled=True)
    assert load_config(PairedConfig, "example", ["--enabled", "on", "--partner", "p"], {}).enabled


def test_every_invalid_setting_is_reported_in_one_error():
    env = {
        "RXCAST_EXAMPLE_PORT": "-1",
        "RXCAST_EXAMPLE_FLAVOUR": "sweet",
        "RXCAST_EXAMPLE_ENABLED": "maybe",
        "RXCAST_EXAMPLE_MAX_WORKERS": "many",
    }
    with pytest.raises(InvalidSettings) as error:
        load_config(ExampleConfig, "example", [], env)
    assert sorted(where for where, _ in error.value.problems) == sorted(env)
    assert all(variable in error.value.message for variable in env)


def test_a_bad_flag_is_named_as_the_flag_beside_bad_variables(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_config(ExampleConfig, "example", ["--port", "99999"], {"RXCAST_EXAMPLE_FLAVOUR": "sweet"})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert "--port: must be >= 0 and <= 65535, got '99999'" in err
    assert "RXCAST_EXAMPLE_FLAVOUR: must be one of plain, salted, got 'sweet'" in err


def test_direct_construction_names_the_setting():
    with pytest.raises(InvalidSettings, match=r"^flavour: must be one of plain, salted, got 'sweet'$"):
        ExampleConfig(flavour="sweet")
    with pytest.raises(InvalidSettings, match="colour: no such setting"):
        ExampleConfig(colour="red")


def test_settings_are_frozen():
    config = ExampleConfig()
    with pytest.raises(ValidationError, match="frozen"):
        config.port = 1  # type: ignore[misc]


def test_help_lists_each_setting_with_its_variable_and_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_config(ExampleConfig, "example", ["--help"], {"RXCAST_EXAMPLE_RATIO": "0.25"})
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name in ExampleConfig.model_fields:
        assert flag(name) in out and env_variable(ExampleConfig, name) in out
    assert "--flavour {plain,salted}" in out
    assert "[env RXCAST_EXAMPLE_PORT; default 6000]" in out
    assert "RXCAST_EXAMPLE_RATIO='0.25'; default 0.5" in out  # the environment's value is shown


def test_a_setting_without_a_description_is_refused():
    with pytest.raises(TypeError, match="undocumented"):

        class Undocumented(ServerSettings):
            undocumented: int = 1


def test_the_service_name_and_the_env_prefix_agree():
    with pytest.raises(TypeError, match="RXCAST_OTHER_"):
        load_config(ExampleConfig, "other", [], {})


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_settings_load_with_defaults_and_document_every_variable(service, capsys):
    cls = SERVICES[service]
    assert load_config(cls, service, [], {}) == cls.model_validate({})
    with pytest.raises(SystemExit):
        load_config(cls, service, ["--help"], {})
    out = capsys.readouterr().out
    for name in cls.model_fields:
        assert f"RXCAST_{service.upper()}_{name.upper()}" in out.replace("\n", "").replace(" ", "")


@pytest.mark.parametrize(
    "cls, service, env, problem",
    [
        (FeatureConfig, "feature", {"RXCAST_FEATURE_ONLINE_STORE": "mysql"},
         "RXCAST_FEATURE_ONLINE_STORE: must be one of sqlite, redis, got 'mysql'"),
        (FeatureConfig, "feature", {"RXCAST_FEATURE_TTL_CLOCK": "sundial"},
         "RXCAST_FEATURE_TTL_CLOCK: must be one of data, wall, got 'sundial'"),
        (FeatureConfig, "feature", {"RXCAST_FEATURE_ONLINE_STORE": "redis", "RXCAST_FEATURE_REDIS_URL": "redis://h/x"},
         "RXCAST_FEATURE_REDIS_URL: the database after the last / must be a number, got 'redis://h/x'"),
        (FeatureConfig, "feature", {"RXCAST_FEATURE_EARLIEST_BUSINESS_DAY": "2020-02-30"},
         "RXCAST_FEATURE_EARLIEST_BUSINESS_DAY: must be a date as YYYY-MM-DD"),
        (FeatureConfig, "feature", {"RXCAST_FEATURE_CHUNK_ROWS": "300000"},
         "RXCAST_FEATURE_CHUNK_ROWS: must be <= max_chunk_rows (200000)"),
        (TrainerConfig, "trainer", {"RXCAST_TRAINER_GATE_METRIC": "mape"},
         "RXCAST_TRAINER_GATE_METRIC: must be one of mae, rmse, wape, got 'mape'"),
        (TrainerConfig, "trainer", {"RXCAST_TRAINER_GATE_MARGIN": "1"},
         "RXCAST_TRAINER_GATE_MARGIN: must be >= 0 and < 1"),
        (PredictorConfig, "predictor", {"RXCAST_PREDICTOR_MODE": "stream"},
         "RXCAST_PREDICTOR_MODE: must be one of online, batch, got 'stream'"),
        (PredictorConfig, "predictor", {"RXCAST_PREDICTOR_POLL_INTERVAL_SECONDS": "0"},
         "RXCAST_PREDICTOR_POLL_INTERVAL_SECONDS: must be > 0"),
        (DriftConfig, "drift", {"RXCAST_DRIFT_CORRECTION": "holm"},
         "RXCAST_DRIFT_CORRECTION: must be one of bh, bonferroni, none, got 'holm'"),
        (DriftConfig, "drift", {"RXCAST_DRIFT_RETRAIN_ON_ALERT": "true"},
         ("RXCAST_DRIFT_RETRAIN_ON_ALERT: needs a trainer to submit retraining triggers to: set --trainer-address or "
          "RXCAST_DRIFT_TRAINER_ADDRESS")),
    ],
)  # fmt: skip
def test_service_rules_name_the_setting(cls, service, env, problem):
    with pytest.raises(InvalidArgument) as error:
        load_config(cls, service, [], env)
    assert problem in error.value.message
