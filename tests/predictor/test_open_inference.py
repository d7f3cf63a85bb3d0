"""The Open Inference Protocol's data plane in-process, with plain arrays and
real LightGBM models: no protos, no server (the gRPC surface is
test_inference.py's)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import numpy as np
import pytest

from rxcast.model import ModelBundle
from rxcast.predictor import flags as F
from rxcast.predictor import open_inference
from rxcast.predictor.holder import ModelHolder
from rxcast.predictor.open_inference import READY, UNAVAILABLE, DataPlane, InferRequest
from rxcast.predictor.serving import ServingModel
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from tests.predictor.models import FEATURES, train

MODEL = "rxcast-demand"


@pytest.fixture(scope="module")
def versions():
    return {v: ServingModel.build(ModelBundle.from_bytes(m.model_text, m.manifest)) for v, m in
            ((1, train(1)), (2, train(2, scale=3.0, seed=1)))}  # fmt: skip


def _request(rows: int = 1, version: str = "", **inputs) -> InferRequest:
    inputs = inputs or {"features": np.ones((rows, len(FEATURES)))}
    return InferRequest(MODEL, version, "r", inputs)


def test_the_data_plane_imports_no_transport():
    tree = ast.parse(Path(open_inference.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    transport = [m for m in imported if m.split(".")[0] in ("inference", "grpc", "google") or m.endswith("_pb2")]
    assert not transport, transport


def test_infer_answers_plain_arrays(versions):
    holder = ModelHolder()
    holder.swap(versions[1])
    plane = DataPlane(holder)
    matrix = np.ones((3, len(FEATURES)))
    matrix[2, 4] = 2.5
    answer = plane.infer(InferRequest(MODEL, "1", "abc", {"features": matrix}, ("flags", "forecast")))
    assert (answer.model_name, answer.model_version, answer.id) == (MODEL, "1", "abc")
    flags, forecast = answer.outputs
    assert (flags.name, flags.datatype, forecast.name, forecast.datatype) == ("flags", "UINT32", "forecast", "FP64")
    assert flags.values.tolist() == [0, 0, int(F.MISSING_FEATURES)]
    cleaned = matrix.copy()
    cleaned[2, 4] = np.nan
    np.testing.assert_allclose(forecast.values, versions[1].bundle.predict_matrix(cleaned))


def test_before_a_model_loads():
    plane = DataPlane(ModelHolder())
    assert not plane.server_ready() and not plane.model_ready(MODEL, "")
    (entry,) = plane.repository_index()
    assert (entry.name, entry.version, entry.state) == (MODEL, "", UNAVAILABLE)
    assert entry.reason == "no version loaded yet: waiting for the trainer's first version"
    assert plane.repository_index(ready_only=True) == []
    assert plane.model_statistics() == []
    with pytest.raises(FailedPrecondition):
        plane.infer(_request())
    with pytest.raises(FailedPrecondition):
        plane.model_config(MODEL, "")


def test_statistics_are_kept_per_version_and_the_index_lists_replaced_versions(versions):
    holder = ModelHolder()
    holder.swap(versions[1])
    plane = DataPlane(holder)
    plane.infer(_request(rows=3))
    plane.infer(_request(rows=2))
    with pytest.raises(InvalidArgument):
        plane.infer(_request(features=np.ones((1, 2))))
    with pytest.raises(NotFound):  # names no version: counted nowhere
        plane.infer(_request(version="2"))
    holder.swap(versions[2])
    plane.infer(_request(rows=4))

    (model,) = plane.model_statistics()
    first, second = model.versions
    assert (first.version, first.execution_count, first.inference_count) == (1, 2, 5)
    assert (first.success.count, first.fail.count) == (2, 1)
    assert first.success.ns > 0 and first.fail.ns > 0 and first.last_inference_ms > 0
    assert first.compute_input.ns + first.compute_infer.ns + first.compute_output.ns == first.success.ns
    assert (second.version, second.execution_count, second.inference_count, second.fail.count) == (2, 1, 4, 0)
    assert second.last_inference_ms >= first.last_inference_ms
    assert [v.version for v in plane.model_statistics(MODEL, "1")[0].versions] == [1]
    with pytest.raises(NotFound):
        plane.model_statistics(MODEL, "3")

    assert [(e.version, e.state, e.reason) for e in plane.repository_index()] == [
        ("2", READY, ""),
        ("1", UNAVAILABLE, "replaced by version 2"),
    ]
    holder.swap(versions[1])  # a rollback: version 1 serves again, listed once
    assert [(e.version, e.state) for e in plane.repository_index()] == [("1", READY), ("2", UNAVAILABLE)]
    assert [(e.version, e.state) for e in plane.repository_index(ready_only=True)] == [("1", READY)]


def test_counters_from_many_threads_add_up(versions):
    holder = ModelHolder()
    holder.swap(versions[1])
    plane = DataPlane(holder)
    threads, calls = 8, 300

    def work():
        for _ in range(calls):
            plane.infer(_request(rows=2))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    (model,) = plane.model_statistics()
    (stats,) = model.versions
    assert stats.execution_count == stats.success.count == threads * calls
    assert stats.inference_count == 2 * threads * calls


def test_config_and_metadata_describe_the_same_tensors(versions):
    holder = ModelHolder()
    holder.swap(versions[1])
    plane = DataPlane(holder)
    metadata, config = plane.model_metadata(MODEL, ""), plane.model_config(MODEL, "1")
    assert config.inputs == metadata.inputs and config.outputs == metadata.outputs
    assert metadata.inputs[0].shape == (-1, len(FEATURES))
    assert (config.platform, config.backend, config.max_batch_size) == ("lightgbm", "lightgbm", 0)
