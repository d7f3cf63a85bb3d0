"""The Open Inference Protocol (KServe v2) data plane: forecasts for callers
that already hold the features.

Transport-neutral: requests and answers are the plain types below (NumPy
arrays, names, dataclasses); rxcast.predictor.open_inference_grpc converts
protos to them and back, as a REST front end could.

Model `rxcast-demand` (configurable), its version the served model version.

Inputs, one of two forms:
- `features`: FP64 or FP32 (INT types accepted), shape [n, k], the model's
  k features in manifest order (ModelConfig's `feature_names` parameter and
  GetModelStatus list them), categoricals pre-encoded as their index in the
  manifest's `categorical_levels` (ModelConfig's `categorical_levels`
  parameter); NaN marks a missing value.
- one tensor per feature, named by the feature, shape [n] or [n, 1]:
  numbers for numeric features, BYTES (the level's text) or the level's code
  for categoricals.
Both forms follow one rule (rxcast.model.FeatureEncoder): a value that is not
finite, a categorical code that is not a whole number in [0, levels) (2.5,
-0.5, 99) and a level unseen in training are passed to the model as missing,
and the row is flagged MISSING_FEATURES.
Outputs:
- `forecast`: FP64 [n], demand over the horizon in units;
- `flags`: UINT32 [n], PredictionFlag bits (MISSING_FEATURES as above).
"""

from __future__ import annotations

import importlib.metadata
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from rxcast.model.encoding import code_levels
from rxcast.predictor import flags as F
from rxcast.predictor.driftlog import LogEntry, PredictionLogQueue
from rxcast.predictor.holder import ModelHolder
from rxcast.predictor.infer_stats import StatisticsBook, VersionStatistics
from rxcast.predictor.serving import ServingModel
from rxcast.runtime.errors import InvalidArgument, NotFound
from rxcast.runtime.validation import quote

MATRIX_INPUT = "features"
OUTPUTS = {"forecast": "FP64", "flags": "UINT32"}
PLATFORM = "lightgbm"
READY = "READY"
UNAVAILABLE = "UNAVAILABLE"
#: Protocol extensions beyond the core that this server implements.
EXTENSIONS = ("model_configuration", "statistics")
#: Versions swapped out that RepositoryIndex still lists.
RETIRED_KEPT = 16

_now_ns = time.perf_counter_ns


@dataclass(frozen=True)
class ServerInfo:
    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class TensorSpec:
    """A tensor's name, element type (the protocol's names: "FP64", ...) and
    shape, -1 marking a variable-size dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class ModelConfig:
    name: str
    platform: str
    backend: str
    #: 0: requests are never batched together; tensor shapes are whole, rows first.
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: What a caller needs to build the `features` matrix, as text (JSON).
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelIndexEntry:
    name: str
    version: str
    state: str
    reason: str = ""


@dataclass(slots=True)  # one per request: slots and no frozen init, which costs several times more
class InferRequest:
    model_name: str
    model_version: str
    id: str
    #: Input tensors by name; arrays may be read-only views of the request's bytes.
    inputs: dict[str, np.ndarray]
    #: The outputs wanted; empty for all.
    outputs: tuple[str, ...] = ()
    #: time.perf_counter_ns() when the transport received the request (for statistics).
    received_ns: int = 0


@dataclass(slots=True)
class OutputTensor:
    name: str
    datatype: str
    values: np.ndarray


@dataclass(slots=True)
class InferResponse:
    model_name: str
    model_version: str
    id: str
    outputs: list[OutputTensor]


@dataclass(frozen=True)
class ModelStatistics:
    name: str
    versions: tuple[VersionStatistics, ...]


def _package_version() -> str:
    try:
        return importlib.metadata.version("rxcast")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


class DataPlane:
    """The Open Inference Protocol on the served model."""

    def __init__(
        self,
        holder: ModelHolder,
        name: str = "rxcast-demand",
        log_queue: PredictionLogQueue | None = None,
        server_name: str = "rxcast-predictor",
    ):
        self.holder = holder
        self.name = name
        self.log_queue = log_queue
        self.server = ServerInfo(server_name, _package_version(), EXTENSIONS)
        self.statistics = StatisticsBook()
        #: Versions swapped out, newest last → the version that replaced each.
        self._retired: OrderedDict[int, int] = OrderedDict()
        self._serving: int | None = None
        self._swaps = threading.Lock()  # a swap (poller thread) against an index read
        model = holder.peek()
        if model is not None:
            self._swapped(model)
        holder.on_swap(self._swapped)

    def _swapped(self, model: ServingModel) -> None:
        with self._swaps:
            previous, self._serving = self._serving, model.version
            self._retired.pop(model.version, None)
            if previous is not None and previous != model.version:
                self._retired[previous] = model.version
                while len(self._retired) > RETIRED_KEPT:
                    self._retired.popitem(last=False)

    # Health and metadata.

    def server_ready(self) -> bool:
        return self.holder.peek() is not None

    def model_ready(self, name: str, version: str) -> bool:
        model = self.holder.peek()
        return model is not None and name == self.name and (not version or version == str(model.version))

    def resolve(self, name: str, version: str) -> ServingModel:
        """The served model if `name`/`version` designate it; NOT_FOUND otherwise."""
        if name != self.name:
            raise NotFound(f"model {quote(name)} is not served here; this server serves {self.name!r}")
        model = self.holder.current()
        if version and version != str(model.version):
            raise NotFound(f"model {quote(name)} version {quote(version)} is not loaded; version {model.version} is")
        return model

    def model_metadata(self, name: str, version: str) -> ModelMetadata:
        model = self.resolve(name, version)
        inputs, outputs = _signature(model)
        return ModelMetadata(self.name, (str(model.version),), PLATFORM, inputs, outputs)

    def model_config(self, name: str, version: str) -> ModelConfig:
        model = self.resolve(name, version)
        inputs, outputs = _signature(model)
        manifest = model.manifest
        levels = {name: list(manifest.categorical_levels[name]) for name in manifest.categorical_features}
        parameters = {
            "feature_names": json.dumps(list(model.feature_names)),
            "categorical_levels": json.dumps(levels),
            "horizon_days": str(manifest.horizon_days),
        }
        return ModelConfig(self.name, PLATFORM, PLATFORM, 0, inputs, outputs, parameters)

    def repository_index(self, ready_only: bool = False) -> list[ModelIndexEntry]:
        """The served version (READY) and the versions it replaced (UNAVAILABLE);
        before the first load, the model with no version (UNAVAILABLE)."""
        model = self.holder.peek()
        if model is None:
            waiting = self.holder.status.last_error or "waiting for the trainer's first version"
            entries = [ModelIndexEntry(self.name, "", UNAVAILABLE, f"no version loaded yet: {waiting}")]
        else:
            entries = [ModelIndexEntry(self.name, str(model.version), READY)]
        with self._swaps:
            retired = list(self._retired.items())
        for version, successor in reversed(retired):
            entries.append(ModelIndexEntry(self.name, str(version), UNAVAILABLE, f"replaced by version {successor}"))
        return [e for e in entries if e.state == READY] if ready_only else entries

    def model_statistics(self, name: str = "", version: str = "") -> list[ModelStatistics]:
        """Counters of the served version (zeros before its first request) and
        of the versions served before it, still held; every model when `name`
        is empty, every version when `version` is."""
        if name and name != self.name:
            raise NotFound(f"model {quote(name)} is not served here; this server serves {self.name!r}")
        model = self.holder.peek()
        versions = set(self.statistics.versions())
        if model is not None:
            versions.add(model.version)
        if version:
            if not version.isdigit() or int(version) not in versions:
                raise NotFound(
                    f"model {self.name!r} version {quote(version)} has no statistics here; known: {sorted(versions)}"
                )
            versions = {int(version)}
        if not versions:
            return []
        stats = tuple(self.statistics.counters(v).snapshot() for v in sorted(versions))
        return [ModelStatistics(self.name, stats)]

    # Inference.

    def infer(self, request: InferRequest) -> InferResponse:
        model = self.resolve(request.model_name, request.model_version)
        counters = self.statistics.counters(model.version)
        try:
            wanted = _wanted(request.outputs)
            matrix, missing = _input_matrix(model, request.inputs)
            input_ns = _now_ns()
            forecasts = model.predict(matrix)
            infer_ns = _now_ns()
            outputs = [
                OutputTensor(name, "FP64", forecasts)
                if name == "forecast"
                else OutputTensor(name, "UINT32", _flags(missing, len(forecasts)))
                for name in wanted
            ]
        except Exception:
            counters.failure(request.received_ns, _now_ns())
            raise
        counters.success(len(forecasts), request.received_ns, input_ns, infer_ns, _now_ns())
        if self.log_queue is not None:
            self.log_queue.submit(LogEntry(model, forecasts, int(time.time() * 1000), "online", matrix=matrix))
        return InferResponse(self.name, str(model.version), request.id, outputs)


_ALL_OUTPUTS = tuple(OUTPUTS)


def _wanted(outputs: tuple[str, ...]) -> tuple[str, ...]:
    if not outputs:
        return _ALL_OUTPUTS
    for name in outputs:
        if name not in OUTPUTS:
            raise InvalidArgument(f"outputs: unknown output {quote(name)}; this model has {', '.join(OUTPUTS)}")
    return outputs


def _flags(missing: np.ndarray | None, rows: int) -> np.ndarray:
    if missing is None:
        return np.zeros(rows, dtype=np.uint32)
    return np.multiply(missing, F.MISSING_FEATURES, dtype=np.uint32)


def _signature(model: ServingModel) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    k = len(model.feature_names)
    inputs = (TensorSpec(MATRIX_INPUT, "FP64", (-1, k)),)
    outputs = tuple(TensorSpec(name, datatype, (-1,)) for name, datatype in OUTPUTS.items())
    return inputs, outputs


def _input_matrix(model: ServingModel, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's input matrix from either input form, and the rows with a
    missing value (None when there are none)."""
    values = inputs.get(MATRIX_INPUT)
    if values is None:
        return _per_feature_matrix(model, inputs)
    k = len(model.feature_names)
    if len(inputs) > 1:
        others = sorted(set(inputs) - {MATRIX_INPUT})
        raise InvalidArgument(f"inputs: send {MATRIX_INPUT!r} alone or one tensor per feature, not both ({others})")
    if values.ndim != 2 or values.shape[1] != k:
        raise InvalidArgument(f"inputs[{MATRIX_INPUT!r}].shape: must be [n, {k}], got {list(values.shape)}")
    if values.dtype != np.float64:
        if values.dtype.kind not in "fiub":
            raise InvalidArgument(f"inputs[{MATRIX_INPUT!r}].datatype: must be numeric")
        values = values.astype(np.float64)
    return model.bundle.encoder.check_matrix(values)


def _per_feature_matrix(model: ServingModel, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    unknown = sorted(set(inputs) - set(model.feature_names))
    if unknown:
        raise InvalidArgument(
            f"inputs: unknown {unknown}; send {MATRIX_INPUT!r} or tensors named {list(model.feature_names)}"
        )
    absent = [name for name in model.feature_names if name not in inputs]
    if absent:
        raise InvalidArgument(f"inputs: features {absent} are missing; send {MATRIX_INPUT!r} or one tensor per feature")
    columns = {}
    for name in model.feature_names:
        values = inputs[name]
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise InvalidArgument(f"inputs[{quote(name)}].shape: must be [n] or [n, 1], got {list(values.shape)}")
        columns[name] = values
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InvalidArgument(f"inputs: feature tensors differ in length {sorted(lengths)}")
    for name, levels in model.manifest.categorical_levels.items():
        if columns[name].dtype.kind in "fiub":  # level codes: an invalid one is missing, as in the matrix
            columns[name] = code_levels(columns[name], levels)
    encoded = model.bundle.encoder.encode(columns)
    unseen = np.zeros(len(encoded.matrix), dtype=bool)
    for mask in encoded.unseen.values():
        unseen |= mask
    return encoded.matrix, encoded.missing | unseen
