"""Training parameters: defaults, validation naming the parameter, LightGBM's own checks."""

from __future__ import annotations

import pytest

from rxcast.runtime.errors import InvalidArgument
from rxcast.trainer.params import TrainingParams, validate_with_lightgbm


def test_defaults_suit_counts_and_are_reproducible():
    params = TrainingParams()
    lgb = params.lightgbm_params(num_threads=2)
    assert lgb["objective"] in ("tweedie", "poisson")
    assert lgb["deterministic"] is True and lgb["seed"] == params.seed
    assert lgb["num_threads"] == 2
    validate_with_lightgbm(params)


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_boost_round", 0),
        ("learning_rate", 0.0),
        ("learning_rate", 1.5),
        ("num_leaves", 1),
        ("min_data_in_leaf", 0),
        ("feature_fraction", 0.0),
        ("objective", "gamma"),
        ("holdout_days", 0),
    ],
)
def test_out_of_range_fields_are_named(field, value):
    with pytest.raises(InvalidArgument, match=rf"params\.{field}"):
        TrainingParams().with_overrides({field: value})


def test_extra_must_be_a_lightgbm_parameter_not_set_elsewhere():
    with pytest.raises(InvalidArgument, match=r"extra\['bogus_knob'\].*not a LightGBM parameter"):
        TrainingParams(extra={"bogus_knob": "1"})
    # An alias of a field the request has its own slot for.
    with pytest.raises(InvalidArgument, match=r"extra\['eta'\]"):
        TrainingParams(extra={"eta": "0.1"})
    with pytest.raises(InvalidArgument, match=r"extra\['output_model'\]"):
        TrainingParams(extra={"output_model": "/tmp/x"})


def test_lightgbm_rejects_bad_extra_values_by_name():
    with pytest.raises(InvalidArgument, match=r"extra\['lambda_l2'\].*rejected by LightGBM"):
        validate_with_lightgbm(TrainingParams(extra={"lambda_l2": "lots"}))
    with pytest.raises(InvalidArgument, match=r"extra\['tweedie_variance_power'\]"):
        validate_with_lightgbm(TrainingParams(extra={"tweedie_variance_power": "3.5"}))
    validate_with_lightgbm(TrainingParams(extra={"lambda_l2": "1.5", "max_bin": "63"}))


def test_unknown_override_fields_are_refused():
    with pytest.raises(InvalidArgument, match="unknown fields"):
        TrainingParams().with_overrides({"rounds": 3})
