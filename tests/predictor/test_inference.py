"""The Open Inference Protocol surface, called by tritonclient.grpc from its own
virtualenv and by a plain grpc client, on a predictor serving a real model
(one whose answer depends on the medication category, so that how a
categorical code is read shows in the forecast)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from inference import grpc_predict_v2_pb2 as oip

from rxcast.model import ModelBundle
from rxcast.predictor import flags as F
from tests.predictor import triton_venv
from tests.predictor.conftest import start_predictor
from tests.predictor.models import CATEGORIES, FEATURES, train

HERE = Path(__file__).resolve().parent
MODEL = "rxcast-demand"
#: Units each medication category adds to demand in the model served here.
CATEGORY_EFFECT = {"analgesic": 40.0, "antiviral": 20.0, "statin": 0.0}
CATEGORY_COLUMN = FEATURES.index("medication_category")
#: Categorical codes that name no level: a fraction, a negative, past the last level.
INVALID_CODES = [2.5, -0.5, 99.0]
CATEGORICAL = ("medication_category", "store_region")


@pytest.fixture(scope="module")
def model():
    return train(1, category_effect=CATEGORY_EFFECT)


@pytest.fixture(scope="module")
def served(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("oip")
    model_dir = model.write(root / "model-1")
    predictor = start_predictor(root, "predictor-oip", ["--mode", "online", "--model-dir", str(model_dir)])
    yield predictor
    predictor.close()


@pytest.fixture(scope="module")
def bundle(model):
    return ModelBundle.from_bytes(model.model_text, model.manifest)


@pytest.fixture(scope="module")
def triton_python(repo):
    return triton_venv.ensure(repo)


def _rows():
    return {
        "dispensed_sum_7d": [12.0, 3.0, float("nan")],
        "dispensed_sum_28d": [50.0, 10.0, 20.0],
        "unit_price": [4.0, 9.5, 1.0],
        "on_promotion": [1.0, 0.0, 0.0],
        "medication_category": ["antiviral", "statin", "oncology"],
        "store_region": ["south", "north", "north"],
    }


def _triton(python, address, case) -> dict:
    done = subprocess.run(
        [str(python), str(HERE / "triton_call.py"), address, json.dumps(case)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _matrix_input(matrix) -> list[dict]:
    return [{"name": "features", "datatype": "FP64", "data": np.asarray(matrix).tolist()}]


def _per_feature_inputs(rows: dict) -> list[dict]:
    return [
        {"name": name, "datatype": "BYTES" if name in CATEGORICAL else "FP64", "data": values}
        for name, values in rows.items()
    ]


def _stats(answer: dict, key: str) -> dict:
    """Version 1's statistics from tritonclient's JSON (uint64 travels as text; zeros are left out)."""
    (entry,) = [s for s in answer[key]["model_stats"] if s["name"] == MODEL and s["version"] == "1"]
    stages = entry.get("inference_stats", {})
    out = {name: int(entry.get(name, 0)) for name in ("last_inference", "inference_count", "execution_count")}
    for stage in ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output"):
        out[stage] = (int(stages.get(stage, {}).get("count", 0)), int(stages.get(stage, {}).get("ns", 0)))
    return out


def test_tritonclient_infers_from_the_feature_matrix(served, bundle, triton_python):
    rows = _rows()
    matrix = bundle.encode(rows).matrix
    answer = _triton(triton_python, served.process.address, {"model": MODEL, "inputs": _matrix_input(matrix)})
    assert answer["live"] and answer["ready"] and answer["model_ready"]
    assert answer["metadata"]["name"] == MODEL and answer["metadata"]["versions"] == ["1"]
    assert answer["metadata"]["inputs"][0]["shape"] == ["-1", str(len(FEATURES))]
    assert answer["server"]["name"] == "rxcast-predictor"
    assert {"model_configuration", "statistics"} <= set(answer["server"]["extensions"])
    infer = answer["infer"]
    assert infer["model_version"] == "1" and infer["id"] == "call-1"
    np.testing.assert_allclose(infer["forecast"], bundle.predict_matrix(matrix))
    assert infer["flags"] == [0, 0, int(F.MISSING_FEATURES)]


def test_tritonclient_reads_the_model_config_matching_the_metadata(served, bundle, triton_python):
    answer = _triton(triton_python, served.process.address, {"model": MODEL, "inputs": _matrix_input(np.zeros((1, 6)))})
    config, metadata = answer["config"]["config"], answer["metadata"]
    assert config["name"] == MODEL
    assert config["platform"] == config["backend"] == metadata["platform"] == "lightgbm"
    assert config.get("max_batch_size", 0) == 0  # no batching across requests: dims are whole shapes
    for tensors, specs in ((config["input"], metadata["inputs"]), (config["output"], metadata["outputs"])):
        assert [(t["name"], t["data_type"], t["dims"]) for t in tensors] == [
            (s["name"], "TYPE_" + s["datatype"], s["shape"]) for s in specs
        ]
    assert [t["name"] for t in config["output"]] == ["forecast", "flags"]
    parameters = {key: value["string_value"] for key, value in config["parameters"].items()}
    assert json.loads(parameters["feature_names"]) == list(FEATURES)
    assert json.loads(parameters["categorical_levels"]) == {
        name: list(levels) for name, levels in bundle.manifest.categorical_levels.items()
    }
    assert parameters["horizon_days"] == "7"


def test_tritonclient_lists_the_repository(served, triton_python):
    answer = _triton(triton_python, served.process.address, {"model": MODEL, "inputs": _matrix_input(np.zeros((1, 6)))})
    assert answer["index"]["models"] == [{"name": MODEL, "version": "1", "state": "READY"}]


def test_tritonclient_statistics_count_what_was_served(served, bundle, triton_python):
    matrix = bundle.encode(_rows()).matrix
    stream = [
        {"id": "s-1", "inputs": _matrix_input(matrix[:2])},
        {"id": "s-2", "inputs": _matrix_input(matrix[:, :2])},  # the wrong shape: counted as failed
    ]
    answer = _triton(
        triton_python, served.process.address, {"model": MODEL, "inputs": _matrix_input(matrix), "stream": stream}
    )
    before, after = _stats(answer, "statistics_before"), _stats(answer, "statistics_after")
    assert after["execution_count"] - before["execution_count"] == 2  # the unary call and s-1
    assert after["inference_count"] - before["inference_count"] == 3 + 2  # rows
    assert after["success"][0] - before["success"][0] == 2
    assert after["fail"][0] - before["fail"][0] == 1
    assert after["fail"][1] > before["fail"][1]
    for stage in ("success", "compute_input", "compute_infer", "compute_output"):
        assert after[stage][0] - before[stage][0] == 2, stage
        assert after[stage][1] > before[stage][1], stage
    spent = [after[s][1] - before[s][1] for s in ("compute_input", "compute_infer", "compute_output")]
    assert sum(spent) <= after["success"][1] - before["success"][1]  # the stages are parts of the whole
    assert after["queue"] == (0, 0)  # requests wait in no queue of the predictor's own
    assert after["last_inference"] >= before["last_inference"]
    assert abs(after["last_inference"] / 1000 - time.time()) < 60


def test_tritonclient_streams_in_order_and_goes_on_after_an_error(served, bundle, triton_python):
    rows = _rows()
    matrix = bundle.encode(rows).matrix
    stream = [
        {"id": "first", "inputs": _matrix_input(matrix)},
        {"id": "broken", "inputs": _matrix_input(matrix[:, :2])},
        {"id": "third", "inputs": _per_feature_inputs(rows)},
        {"id": "fourth", "inputs": _matrix_input(matrix[1:])},
    ]
    case = {"model": MODEL, "inputs": _matrix_input(matrix), "stream": stream}
    answer = _triton(triton_python, served.process.address, case)
    first, broken, third, fourth = answer["stream"]
    assert [first["id"], third["id"], fourth["id"]] == ["first", "third", "fourth"]
    expected = bundle.predict_matrix(matrix)
    np.testing.assert_allclose(first["forecast"], expected)
    np.testing.assert_allclose(third["forecast"], expected)
    np.testing.assert_allclose(fourth["forecast"], expected[1:])
    assert first["flags"] == third["flags"] == [0, 0, int(F.MISSING_FEATURES)]
    assert broken["error"]["message"].startswith("INVALID_ARGUMENT: ")
    assert "[n, 6]" in broken["error"]["message"]


def test_invalid_categorical_codes_are_missing_in_both_forms(served, bundle, triton_python):
    """2.5, -0.5 and 99 in a categorical column of the matrix answer what the
    per-feature form answers with that value missing: the same forecast and
    MISSING_FEATURES, where LightGBM alone would cut 2.5 to level 2, read -0.5
    as level 0 and 99 as an unseen level."""
    rows = {name: [values[0]] * len(INVALID_CODES) for name, values in _rows().items()}
    matrix = bundle.encode(rows).matrix
    matrix[:, CATEGORY_COLUMN] = INVALID_CODES
    missing = dict(rows, medication_category=[""] * len(INVALID_CODES))
    expected = bundle.predict(missing)
    # The model reads those codes as levels by itself: the rule changes its answer.
    assert not np.allclose(bundle.predict_matrix(matrix), expected)
    flagged = [int(F.MISSING_FEATURES)] * len(INVALID_CODES)

    matrix_answer = _triton(triton_python, served.process.address, {"model": MODEL, "inputs": _matrix_input(matrix)})
    np.testing.assert_allclose(matrix_answer["infer"]["forecast"], expected)
    assert matrix_answer["infer"]["flags"] == flagged

    case = {"model": MODEL, "inputs": _per_feature_inputs(missing)}
    per_feature = _triton(triton_python, served.process.address, case)
    np.testing.assert_allclose(per_feature["infer"]["forecast"], expected)
    assert per_feature["infer"]["flags"] == flagged


@pytest.mark.parametrize("rows", [3, 30])  # both sides of check_matrix's small-batch path
def test_codes_and_levels_agree_between_forms_over_grpc(served, bundle, rows):
    """Every kind of value in every column, the matrix against the per-feature
    form with codes as numbers and with levels as text."""
    rng = np.random.default_rng(rows)
    text = {
        "dispensed_sum_7d": rng.gamma(2.0, 5.0, rows),
        "dispensed_sum_28d": rng.gamma(2.0, 20.0, rows),
        "unit_price": rng.uniform(1, 20, rows),
        "on_promotion": rng.integers(0, 2, rows).astype(float),
        "medication_category": rng.choice(CATEGORIES, rows),
        "store_region": rng.choice(["north", "south"], rows),
    }
    matrix = bundle.encode(text).matrix
    odd = {0: 2.5, 1: -0.5, 2: 99.0} if rows > 3 else {0: 2.5, 2: 99.0}
    for row, code in odd.items():
        matrix[row, CATEGORY_COLUMN] = code
    if rows > 3:
        matrix[3, FEATURES.index("unit_price")] = np.inf
        matrix[4, FEATURES.index("store_region")] = np.nan
    codes = {name: matrix[:, j].copy() for j, name in enumerate(FEATURES)}

    def infer(inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        request = oip.ModelInferRequest(model_name=MODEL)
        for name, values in inputs.items():
            request.inputs.add(name=name, datatype="FP64", shape=list(values.shape))
            request.raw_input_contents.append(np.ascontiguousarray(values, dtype="<f8").tobytes())
        answer = served.inference.ModelInfer(request, timeout=5)
        by_name = {t.name: raw for t, raw in zip(answer.outputs, answer.raw_output_contents, strict=True)}
        return np.frombuffer(by_name["forecast"], "<f8"), np.frombuffer(by_name["flags"], "<u4")

    forecast, flags = infer({"features": matrix})
    by_codes, by_codes_flags = infer(codes)
    cleaned = np.where(np.isfinite(matrix), matrix, np.nan)
    for row in odd:
        cleaned[row, CATEGORY_COLUMN] = np.nan
    np.testing.assert_allclose(forecast, bundle.predict_matrix(cleaned))
    np.testing.assert_allclose(by_codes, forecast)
    expected_flags = np.where(np.isnan(cleaned).any(axis=1), F.MISSING_FEATURES, 0)
    np.testing.assert_array_equal(flags, expected_flags)
    np.testing.assert_array_equal(by_codes_flags, expected_flags)


def test_tritonclient_infers_from_one_tensor_per_feature(served, bundle, triton_python):
    rows = _rows()
    inputs = [dict(spec, datatype="FP32") if spec["datatype"] == "FP64" else spec for spec in _per_feature_inputs(rows)]
    answer = _triton(triton_python, served.process.address, {"model": MODEL, "inputs": inputs, "outputs": ["forecast"]})
    fp32 = {k: (np.asarray(v, dtype=np.float32) if isinstance(v[0], float) else v) for k, v in rows.items()}
    np.testing.assert_allclose(answer["infer"]["forecast"], bundle.predict(fp32), rtol=1e-6)
    assert answer["infer"]["flags"] is None  # only the requested output


def test_tritonclient_sees_a_malformed_request_as_an_error(served, triton_python):
    answer = _triton(triton_python, served.process.address, {"model": MODEL, "inputs": _matrix_input([[1.0, 2.0]])})
    assert answer["error"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "[n, 6]" in answer["error"]["message"]


def test_typed_contents_get_typed_outputs(served, bundle):
    matrix = bundle.encode(_rows()).matrix
    request = oip.ModelInferRequest(model_name=MODEL, id="typed")
    tensor = request.inputs.add(name="features", datatype="FP64", shape=list(matrix.shape))
    tensor.contents.fp64_contents.extend(matrix.ravel().tolist())
    answer = served.inference.ModelInfer(request, timeout=5)
    assert not answer.raw_output_contents
    forecast = next(o for o in answer.outputs if o.name == "forecast")
    assert forecast.datatype == "FP64" and list(forecast.shape) == [3]
    np.testing.assert_allclose(forecast.contents.fp64_contents, bundle.predict_matrix(matrix))


@pytest.mark.parametrize(
    "build, code, message",
    [
        (lambda r: setattr(r, "model_name", "other"), grpc.StatusCode.NOT_FOUND, "'other' is not served"),
        (lambda r: setattr(r, "model_version", "7"), grpc.StatusCode.NOT_FOUND, "version '7' is not loaded"),
        (lambda r: r.raw_input_contents.extend([b"", b""]), grpc.StatusCode.INVALID_ARGUMENT, "2 entries for 1 inputs"),
        (
            lambda r: r.raw_input_contents.append(b"\0" * 8),
            grpc.StatusCode.INVALID_ARGUMENT,
            "raw contents hold 8 bytes",
        ),
        (lambda r: r.inputs[0].shape.__setitem__(0, 5), grpc.StatusCode.INVALID_ARGUMENT, "values for shape"),
        (lambda r: setattr(r.inputs[0], "datatype", "FP128"), grpc.StatusCode.INVALID_ARGUMENT, "unsupported 'FP128'"),
        (lambda r: r.outputs.add(name="nope"), grpc.StatusCode.INVALID_ARGUMENT, "unknown output 'nope'"),
        (lambda r: setattr(r.inputs[0], "name", "dispensed_sum_7d"), grpc.StatusCode.INVALID_ARGUMENT, "are missing"),
    ],
)
def test_malformed_infer_requests_are_named(served, build, code, message):
    request = oip.ModelInferRequest(model_name=MODEL)
    tensor = request.inputs.add(name="features", datatype="FP64", shape=[1, len(FEATURES)])
    tensor.contents.fp64_contents.extend([1.0] * len(FEATURES))
    build(request)
    with pytest.raises(grpc.RpcError) as caught:
        served.inference.ModelInfer(request, timeout=5)
    assert caught.value.code() == code and message in caught.value.details(), caught.value.details()


def test_readiness_follows_the_served_version(served):
    assert served.inference.ServerLive(oip.ServerLiveRequest(), timeout=5).live
    assert served.inference.ServerReady(oip.ServerReadyRequest(), timeout=5).ready
    assert served.inference.ModelReady(oip.ModelReadyRequest(name=MODEL, version="1"), timeout=5).ready
    assert not served.inference.ModelReady(oip.ModelReadyRequest(name=MODEL, version="2"), timeout=5).ready
    assert not served.inference.ModelReady(oip.ModelReadyRequest(name="other"), timeout=5).ready


def _stream_request(request_id: str, rows: int = 1, **fields) -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(id=request_id, **{"model_name": MODEL, **fields})
    tensor = request.inputs.add(name="features", datatype="FP64", shape=[rows, len(FEATURES)])
    tensor.contents.fp64_contents.extend([1.0] * rows * len(FEATURES))
    return request


def test_stream_errors_name_their_request_and_the_stream_goes_on(served):
    requests = [
        _stream_request("ok-1"),
        _stream_request("other-model", model_name="other"),
        _stream_request("old-version", model_version="7"),
        _stream_request("ok-2", rows=2),
    ]
    answers = list(served.inference.ModelStreamInfer(iter(requests), timeout=10))
    assert [a.infer_response.id for a in answers] == ["ok-1", "other-model", "old-version", "ok-2"]
    assert [a.error_message.split(":")[0] for a in answers] == ["", "NOT_FOUND", "NOT_FOUND", ""]
    assert "'other' is not served" in answers[1].error_message
    assert answers[1].infer_response.model_name == "other" and not answers[1].infer_response.outputs
    assert "version '7' is not loaded" in answers[2].error_message
    for answer, rows in ((answers[0], 1), (answers[3], 2)):
        assert answer.infer_response.model_version == "1"
        forecast = next(o for o in answer.infer_response.outputs if o.name == "forecast")
        assert list(forecast.shape) == [rows] and len(forecast.contents.fp64_contents) == rows  # typed in, typed out


def test_statistics_and_config_name_what_is_not_there(served):
    with pytest.raises(grpc.RpcError) as caught:
        served.inference.ModelStatistics(oip.ModelStatisticsRequest(name="other"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and "'other'" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        served.inference.ModelStatistics(oip.ModelStatisticsRequest(name=MODEL, version="9"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and "'9' has no statistics" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        served.inference.ModelConfig(oip.ModelConfigRequest(name=MODEL, version="2"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and "version '2' is not loaded" in caught.value.details()
    every = served.inference.ModelStatistics(oip.ModelStatisticsRequest(), timeout=5)
    assert [(s.name, s.version) for s in every.model_stats] == [(MODEL, "1")]
    ready = served.inference.RepositoryIndex(oip.RepositoryIndexRequest(ready=True), timeout=5)
    assert [(m.name, m.version, m.state) for m in ready.models] == [(MODEL, "1", "READY")]
