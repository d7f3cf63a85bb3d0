"""The Open Inference Protocol (KServe v2) model: forecasts for callers that
already hold the features.

Model `rxcast-demand` (configurable), its version the served model version.

Inputs, one of two forms:
- `features`: FP64 or FP32 (INT types accepted), shape [n, k], the model's
  k features in manifest order (ModelMetadata and GetModelStatus list them),
  categoricals pre-encoded as their index in the manifest's
  `categorical_levels`; NaN marks a missing value.
- one tensor per feature, named by the feature, shape [n] or [n, 1]:
  numbers for numeric features, BYTES (the level's text) for categoricals.
Outputs:
- `forecast`: FP64 [n], demand over the horizon in units;
- `flags`: UINT32 [n], PredictionFlag bits (MISSING_FEATURES where an input
  was missing or a level unknown).
Raw contents in the request get raw contents in the response, as Triton does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from inference import grpc_predict_v2_pb2 as oip
from rxcast.predictor import flags as F
from rxcast.predictor.driftlog import LogEntry, PredictionLogQueue
from rxcast.predictor.holder import ModelHolder
from rxcast.predictor.serving import ServingModel
from rxcast.predictor.tensors import inputs_by_name, output_tensor
from rxcast.runtime.errors import InvalidArgument, NotFound

MATRIX_INPUT = "features"
OUTPUTS = {"forecast": "FP64", "flags": "UINT32"}
PLATFORM = "lightgbm"


@dataclass(frozen=True)
class InferenceModel:
    """The OIP view of the served model."""

    holder: ModelHolder
    name: str = "rxcast-demand"
    log_queue: PredictionLogQueue | None = None

    def resolve(self, name: str, version: str) -> ServingModel:
        """The served model if `name`/`version` designate it; NOT_FOUND otherwise."""
        if name != self.name:
            raise NotFound(f"model {name!r} is not served here; this server serves {self.name!r}")
        model = self.holder.current()
        if version and version != str(model.version):
            raise NotFound(f"model {name!r} version {version!r} is not loaded; version {model.version} is")
        return model

    def ready(self, name: str, version: str) -> bool:
        model = self.holder.peek()
        return model is not None and name == self.name and (not version or version == str(model.version))

    def metadata(self, name: str, version: str) -> oip.ModelMetadataResponse:
        model = self.resolve(name, version)
        k = len(model.feature_names)
        return oip.ModelMetadataResponse(
            name=self.name,
            versions=[str(model.version)],
            platform=PLATFORM,
            inputs=[oip.ModelMetadataResponse.TensorMetadata(name=MATRIX_INPUT, datatype="FP64", shape=[-1, k])],
            outputs=[
                oip.ModelMetadataResponse.TensorMetadata(name=n, datatype=t, shape=[-1]) for n, t in OUTPUTS.items()
            ],
        )

    def infer(self, request: oip.ModelInferRequest) -> oip.ModelInferResponse:
        model = self.resolve(request.model_name, request.model_version)
        wanted = [o.name for o in request.outputs] or list(OUTPUTS)
        for name in wanted:
            if name not in OUTPUTS:
                raise InvalidArgument(f"outputs: unknown output {name!r}; this model has {', '.join(OUTPUTS)}")
        matrix = raw_feature_matrix(request, len(model.feature_names))
        if matrix is not None:
            missing = np.isnan(matrix).any(axis=1)
        else:
            matrix, missing = build_matrix(model, inputs_by_name(request))
        forecasts = model.predict(matrix)
        response = oip.ModelInferResponse(model_name=self.name, model_version=str(model.version), id=request.id)
        raw = len(request.raw_input_contents) > 0
        for name in wanted:
            if name == "forecast":
                output_tensor(name, forecasts, "FP64", raw, response)
            else:
                output_tensor(name, missing.astype(np.uint32) * F.MISSING_FEATURES, "UINT32", raw, response)
        if self.log_queue is not None:
            self.log_queue.submit(LogEntry(model, forecasts, int(time.time() * 1000), "online", matrix=matrix))
        return response


def raw_feature_matrix(request: oip.ModelInferRequest, k: int) -> np.ndarray | None:
    """The matrix of the most common request (tritonclient's): one raw FP64
    `features` input of shape [n, k], read in place; None for any other request,
    which takes the general path and its checks."""
    if len(request.inputs) != 1 or len(request.raw_input_contents) != 1:
        return None
    tensor = request.inputs[0]
    shape = tensor.shape
    if tensor.name != MATRIX_INPUT or tensor.datatype != "FP64" or len(shape) != 2 or shape[1] != k:
        return None
    raw = request.raw_input_contents[0]
    rows = shape[0]
    if rows < 0 or len(raw) != rows * k * 8:
        return None
    return np.frombuffer(raw, dtype="<f8").reshape(rows, k)


def build_matrix(model: ServingModel, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The model's input matrix from either input form, and the rows with a missing value."""
    k = len(model.feature_names)
    if MATRIX_INPUT in inputs:
        if len(inputs) > 1:
            others = sorted(set(inputs) - {MATRIX_INPUT})
            raise InvalidArgument(f"inputs: send {MATRIX_INPUT!r} alone or one tensor per feature, not both ({others})")
        values = inputs[MATRIX_INPUT]
        if values.ndim != 2 or values.shape[1] != k:
            raise InvalidArgument(f"inputs[{MATRIX_INPUT!r}].shape: must be [n, {k}], got {list(values.shape)}")
        if values.dtype.kind not in "fiub":
            raise InvalidArgument(f"inputs[{MATRIX_INPUT!r}].datatype: must be numeric")
        matrix = values if values.dtype == np.float64 else values.astype(np.float64)
        missing = np.isnan(matrix).any(axis=1)
        return matrix, missing
    unknown = sorted(set(inputs) - set(model.feature_names))
    if unknown:
        raise InvalidArgument(f"inputs: unknown {unknown}; send {MATRIX_INPUT!r} or tensors named {list(model.feature_names)}")
    absent = [name for name in model.feature_names if name not in inputs]
    if absent:
        raise InvalidArgument(f"inputs: features {absent} are missing; send {MATRIX_INPUT!r} or one tensor per feature")
    columns = {}
    for name in model.feature_names:
        values = inputs[name]
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise InvalidArgument(f"inputs[{name!r}].shape: must be [n] or [n, 1], got {list(values.shape)}")
        columns[name] = values
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InvalidArgument(f"inputs: feature tensors differ in length {sorted(lengths)}")
    encoder = model.bundle.encoder
    categorical = set(model.manifest.categorical_levels)
    for name in categorical:
        if columns[name].dtype.kind in "fiub":  # already level codes
            columns[name] = _codes_as_text(model, name, columns[name])
    encoded = encoder.encode(columns)
    unseen = np.zeros(len(encoded.matrix), dtype=bool)
    for mask in encoded.unseen.values():
        unseen |= mask
    return encoded.matrix, encoded.missing | unseen


def _codes_as_text(model: ServingModel, name: str, codes: np.ndarray) -> np.ndarray:
    levels = np.asarray((*model.manifest.categorical_levels[name], ""), dtype=str)
    codes = np.asarray(codes, dtype=np.float64)
    known = np.isfinite(codes) & (codes >= 0) & (codes < len(levels) - 1) & (codes == np.floor(codes))
    return levels[np.where(known, codes, len(levels) - 1).astype(np.int64)]
