"""The Open Inference Protocol surface, called by tritonclient.grpc from its own
virtualenv and by a plain grpc client, on a predictor serving a real model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import grpc
import numpy as np
import pytest

from inference import grpc_predict_v2_pb2 as oip
from rxcast.model import ModelBundle
from rxcast.predictor import flags as F
from tests.predictor import triton_venv
from tests.predictor.conftest import start_predictor
from tests.predictor.models import FEATURES

HERE = Path(__file__).resolve().parent
MODEL = "rxcast-demand"


@pytest.fixture(scope="module")
def served(tmp_path_factory, first_model):
    root = tmp_path_factory.mktemp("oip")
    model_dir = first_model.write(root / "model-1")
    predictor = start_predictor(root, "predictor-oip", ["--mode", "online", "--model-dir", str(model_dir)])
    yield predictor
    predictor.close()


@pytest.fixture(scope="module")
def bundle(first_model):
    return ModelBundle.from_bytes(first_model.model_text, first_model.manifest)


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
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_tritonclient_infers_from_the_feature_matrix(served, bundle, triton_python):
    rows = _rows()
    matrix = bundle.encode(rows).matrix
    answer = _triton(
        triton_python,
        served.process.address,
        {"model": MODEL, "inputs": [{"name": "features", "datatype": "FP64", "data": matrix.tolist()}]},
    )
    assert answer["live"] and answer["ready"] and answer["model_ready"]
    assert answer["metadata"]["name"] == MODEL and answer["metadata"]["versions"] == ["1"]
    assert answer["metadata"]["inputs"][0]["shape"] == ["-1", str(len(FEATURES))]
    assert answer["server"]["name"] == "rxcast-predictor"
    infer = answer["infer"]
    assert infer["model_version"] == "1" and infer["id"] == "call-1"
    np.testing.assert_allclose(infer["forecast"], bundle.predict_matrix(matrix))
    assert infer["flags"] == [0, 0, int(F.MISSING_FEATURES)]


def test_tritonclient_infers_from_one_tensor_per_feature(served, bundle, triton_python):
    rows = _rows()
    inputs = [
        {"name": name, "datatype": "BYTES" if name in ("medication_category", "store_region") else "FP32", "data": values}
        for name, values in rows.items()
    ]
    answer = _triton(triton_python, served.process.address, {"model": MODEL, "inputs": inputs, "outputs": ["forecast"]})
    fp32 = {k: (np.asarray(v, dtype=np.float32) if isinstance(v[0], float) else v) for k, v in rows.items()}
    np.testing.assert_allclose(answer["infer"]["forecast"], bundle.predict(fp32), rtol=1e-6)
    assert answer["infer"]["flags"] is None  # only the requested output


def test_tritonclient_sees_an_unknown_model_as_an_error(served, triton_python):
    answer = _triton(
        triton_python,
        served.process.address,
        {"model": "rxcast-demand", "inputs": [{"name": "features", "datatype": "FP64", "data": [[1.0, 2.0]]}]},
    )
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
        (lambda r: r.raw_input_contents.append(b"\0" * 8), grpc.StatusCode.INVALID_ARGUMENT, "raw contents hold 8 bytes"),
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
