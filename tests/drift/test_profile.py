"""Reference profiles: contents, JSON round trip, merging, bounded size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rxcast.model.profile import (
    PROFILE_FORMAT,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_reference_profile,
)
from rxcast.model.residuals import POISSON_SCALE, UNITS_SCALE
from rxcast.runtime.errors import InvalidArgument


def _data(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    demand = rng.poisson(4.0, n).astype(float)
    price = rng.lognormal(1.0, 0.4, n)
    price[rng.random(n) < 0.05] = np.nan
    region = rng.choice(np.array(["north", "south", "east", None], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05])
    return {"demand_7d": demand, "unit_price": price, "region": region}, demand * 1.1


def test_numeric_contents_are_the_data_statistics():
    rng = np.random.default_rng(1)
    features, predictions = _data(rng, 1000)
    profile = build_reference_profile(features, ["region"], predictions)
    price = profile.numeric["unit_price"]
    finite = features["unit_price"][~np.isnan(features["unit_price"])]
    assert price.count == finite.size and price.null_count == 1000 - finite.size
    assert price.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert price.std == pytest.approx(finite.std(ddof=1), rel=1e-12)
    assert (price.min, price.max) == (finite.min(), finite.max())
    assert price.sketch_exact and np.array_equal(price.sketch, np.sort(finite))
    # Decile bins: each holds about a tenth of the data, and counts add up.
    assert price.bin_edges.size == 9 and price.bin_counts.sum() == finite.size
    assert np.all(np.abs(price.bin_counts / finite.size - 0.1) < 0.01)
    region = profile.categorical["region"]
    assert region.null_count == int(np.sum(features["region"] == None))
    assert set(region.counts) == {"north", "south", "east"}
    assert profile.prediction is not None and profile.prediction.count == 1000
    assert profile.features == ("demand_7d", "unit_price", "region")
    assert profile.rows == 1000


def test_ties_collapse_bins_and_keep_each_value_in_one_bin():
    values = np.array([0.0] * 600 + [1.0] * 300 + [5.0] * 100)
    p = NumericProfile.build(values)
    assert p.bin_edges.tolist() == [0.0, 1.0]
    assert p.bin_counts.tolist() == [600.0, 300.0, 100.0]


def test_json_round_trip_is_lossless():
    rng = np.random.default_rng(2)
    features, predictions = _data(rng, 5000)
    profile = build_reference_profile(features, ["region"], predictions, errors=rng.normal(size=400))
    text = json.dumps(profile.to_dict(), allow_nan=False)
    again = ReferenceProfile.from_dict(json.loads(text))
    assert again.to_dict() == profile.to_dict()
    assert again.to_dict()["format"] == PROFILE_FORMAT
    assert again.error is not None and again.error.count == 400


def test_holdout_errors_of_a_profile_that_does_not_say_their_scale_are_in_units():
    rng = np.random.default_rng(21)
    features, predictions = _data(rng, 500)
    data = build_reference_profile(features, ["region"], predictions, errors=rng.normal(size=400)).to_dict()
    assert ReferenceProfile.from_dict(data).error_scale == POISSON_SCALE
    del data["error_scale"]  # written before the scale was recorded: actual - prediction
    assert ReferenceProfile.from_dict(data).error_scale == UNITS_SCALE
    with pytest.raises(InvalidArgument, match="error_scale"):
        ReferenceProfile.from_dict({**data, "error_scale": "percent"})
    with pytest.raises(InvalidArgument, match="holdout errors in"):
        ReferenceProfile.from_dict(data).merge(
            build_reference_profile(features, ["region"], predictions, errors=rng.normal(size=9))
        )


def test_merge_equals_build_on_the_union_while_sketches_are_exact():
    rng = np.random.default_rng(3)
    features, predictions = _data(rng, 1500)
    left = {k: v[:600] for k, v in features.items()}
    right = {k: v[600:] for k, v in features.items()}
    whole = build_reference_profile(features, ["region"], predictions)
    merged = build_reference_profile(left, ["region"], predictions[:600]).merge(
        build_reference_profile(right, ["region"], predictions[600:])
    )
    a, b = whole.to_dict(), merged.to_dict()
    for name in ("demand_7d", "unit_price"):
        for key in ("count", "null_count", "min", "max", "sketch", "sketch_exact", "bin_edges", "bin_counts"):
            assert a["numeric"][name][key] == b["numeric"][name][key], (name, key)
        for key in ("mean", "std", "m2"):
            assert a["numeric"][name][key] == pytest.approx(b["numeric"][name][key], rel=1e-12)
    assert a["categorical"] == b["categorical"]
    assert a["prediction"]["sketch"] == b["prediction"]["sketch"]


def test_merge_of_large_partitions_approximates_the_union_within_the_sketch_bound():
    rng = np.random.default_rng(4)
    size = 512
    parts = [rng.normal(loc, 1.0, 20_000) for loc in (0.0, 0.5, 1.0, 3.0)]
    whole = NumericProfile.build(np.concatenate(parts), sketch_size=size)
    merged = NumericProfile.build(parts[0], sketch_size=size)
    for part in parts[1:]:
        merged = merged.merge(NumericProfile.build(part, sketch_size=size), sketch_size=size)
    assert merged.count == whole.count == 80_000
    assert merged.mean == pytest.approx(whole.mean, rel=1e-12)
    assert merged.std == pytest.approx(whole.std, rel=1e-12)
    assert merged.sketch.size == size and not merged.sketch_exact
    # The merged sketch's ECDF stays within a few sketch steps of the data's.
    data = np.sort(np.concatenate(parts))
    grid = np.linspace(-3, 6, 200)
    data_cdf = np.searchsorted(data, grid, side="right") / data.size
    sketch_cdf = np.searchsorted(merged.sketch, grid, side="right") / size
    assert np.max(np.abs(data_cdf - sketch_cdf)) < 4 / size
    assert np.allclose(merged.bin_fractions, whole.bin_fractions, atol=4 / size)


def test_sizes_are_bounded():
    rng = np.random.default_rng(5)
    n = 200_000
    skus = rng.zipf(1.3, n).astype(str)
    profile = build_reference_profile(
        {"x": rng.normal(size=n), "sku": skus},
        ["sku"],
        rng.normal(size=n),
        sketch_size=1024,
        max_categories=1000,
    )
    assert profile.numeric["x"].sketch.size == 1024 and not profile.numeric["x"].sketch_exact
    sku = profile.categorical["sku"]
    assert len(sku.counts) == 1000 and sku.count == n and sku.other_count > 0
    # The most frequent categories are the ones kept.
    names, counts = np.unique(skus, return_counts=True)
    dropped = counts[~np.isin(names, list(sku.counts))]
    assert dropped.max() <= min(sku.counts.values())
    assert len(json.dumps(profile.to_dict())) < 200_000


def test_sketch_ecdf_is_within_one_over_size_of_the_data():
    rng = np.random.default_rng(6)
    data = rng.exponential(size=100_000)
    p = NumericProfile.build(data, sketch_size=1000)
    grid = np.quantile(data, np.linspace(0.001, 0.999, 500))
    data_cdf = np.searchsorted(np.sort(data), grid, side="right") / data.size
    sketch_cdf = np.searchsorted(p.sketch, grid, side="right") / p.sketch.size
    assert np.max(np.abs(data_cdf - sketch_cdf)) <= 1 / 1000 + 1e-12


def test_missing_and_infinite_values_are_counted_apart():
    p = NumericProfile.build(np.array([1.0, np.nan, np.inf, -np.inf, 2.0, np.nan]))
    assert (p.count, p.null_count, p.infinite_count) == (2, 2, 2)
    assert p.sketch.tolist() == [1.0, 2.0]
    json.dumps(p.to_dict(), allow_nan=False)


def test_empty_and_all_missing_columns_profile_cleanly():
    p = NumericProfile.build(np.array([np.nan, np.nan]))
    assert p.count == 0 and p.null_rate == 1.0 and p.std == 0.0
    json.dumps(p.to_dict(), allow_nan=False)
    c = CategoricalProfile.build(np.array(["", ""]))
    assert c.count == 0 and c.null_rate == 1.0
    empty = build_reference_profile({"x": np.array([])}, [])
    assert empty.rows == 0
    assert ReferenceProfile.from_dict(json.loads(json.dumps(empty.to_dict()))).numeric["x"].count == 0


@pytest.mark.parametrize(
    "features, categorical, message",
    [
        ({"a": np.zeros(3), "b": np.zeros(4)}, [], "differ in length"),
        ({"a": np.zeros(3)}, ["b"], "categorical"),
        ({"a": np.array(["x", "y"], dtype=object)}, [], "features.a"),
        ({"prediction": np.zeros(3)}, [], "reserved"),
    ],
)
def test_bad_input_names_the_problem(features, categorical, message):
    with pytest.raises(InvalidArgument, match=message):
        build_reference_profile(features, categorical)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(format="other/1"), "format"),
        (lambda d: d["numeric"]["x"].update(sketch=[3.0, 1.0]), "sorted"),
        (lambda d: d["numeric"]["x"].pop("m2"), "malformed"),
        (lambda d: d["numeric"]["x"].update(bin_counts=[1.0]), "bin count"),
        (lambda d: d["categorical"].update(x={"counts": {}, "null_count": 0}), "both numeric and categorical"),
    ],
)
def test_malformed_profiles_are_rejected(mutate, message):
    data = build_reference_profile({"x": np.arange(20.0)}, []).to_dict()
    mutate(data)
    with pytest.raises(InvalidArgument, match=message):
        ReferenceProfile.from_dict(data)


def test_merge_rejects_different_schemas():
    a = build_reference_profile({"x": np.arange(5.0)}, [])
    b = build_reference_profile({"y": np.arange(5.0)}, [])
    with pytest.raises(InvalidArgument, match="schemas differ"):
        a.merge(b)
