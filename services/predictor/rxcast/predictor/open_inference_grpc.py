"""The Open Inference Protocol over gRPC: protos ↔ the data plane's plain types
(rxcast.predictor.open_inference), and the servicer, each RPC a conversion in,
a data plane call and a conversion out.

Tensors become NumPy arrays without per-element Python: raw contents
(`raw_input_contents`, what tritonclient sends) are little-endian bytes read in
place with `np.frombuffer`; BYTES elements are each prefixed by their length as
a 4-byte little-endian integer, as the protocol specifies. Raw contents in the
request get raw contents in the response, as Triton does; typed contents get
typed contents.
"""

from __future__ import annotations

import math
import struct
import time

import numpy as np
from inference import grpc_predict_v2_pb2 as oip
from inference import grpc_predict_v2_pb2_grpc as oip_grpc

from rxcast.predictor.open_inference import (
    DataPlane,
    InferRequest,
    InferResponse,
    ModelConfig,
    ModelIndexEntry,
    ModelMetadata,
    ModelStatistics,
    ServerInfo,
    TensorSpec,
)
from rxcast.runtime import auth
from rxcast.runtime.errors import InvalidArgument, RxcastError
from rxcast.runtime.validation import quote

#: OIP datatype → (NumPy little-endian dtype, InferTensorContents field).
DATATYPES: dict[str, tuple[str, str]] = {
    "BOOL": ("?", "bool_contents"),
    "INT8": ("<i1", "int_contents"),
    "INT16": ("<i2", "int_contents"),
    "INT32": ("<i4", "int_contents"),
    "INT64": ("<i8", "int64_contents"),
    "UINT8": ("<u1", "uint_contents"),
    "UINT16": ("<u2", "uint_contents"),
    "UINT32": ("<u4", "uint_contents"),
    "UINT64": ("<u8", "uint64_contents"),
    "FP16": ("<f2", ""),
    "FP32": ("<f4", "fp32_contents"),
    "FP64": ("<f8", "fp64_contents"),
}
# Resolved once: a request's path should not look dtypes up by name.
_DTYPE = {name: np.dtype(code) for name, (code, _) in DATATYPES.items()}
# The model configuration's names for the protocol's datatypes.
_CONFIG_TYPES = {name: oip.DataType.Value(f"TYPE_{name}") for name in DATATYPES} | {"BYTES": oip.TYPE_STRING}


def _where(index: int, tensor) -> str:
    """How an error names an input (built only when there is an error)."""
    return f"inputs[{index}] ({quote(tensor.name)})"


def decode_bytes_elements(raw: bytes, count: int, where: str) -> np.ndarray:
    """BYTES raw contents → str array of `count` elements."""
    out = []
    offset = 0
    size = len(raw)
    for _ in range(count):
        if offset + 4 > size:
            raise InvalidArgument(f"{where}: raw BYTES contents end before element {len(out)}")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > size:
            raise InvalidArgument(f"{where}: raw BYTES element {len(out)} overruns the contents")
        out.append(raw[offset : offset + length].decode("utf-8", errors="replace"))
        offset += length
    if offset != size:
        raise InvalidArgument(f"{where}: raw BYTES contents hold more than {count} elements")
    return np.asarray(out, dtype=str)


def input_array(tensor: oip.ModelInferRequest.InferInputTensor, raw: bytes | None, index: int) -> np.ndarray:
    """One input tensor as an array of its declared shape; raw numbers are a
    read-only view of `raw`, not a copy."""
    shape = tuple(tensor.shape)
    if shape and min(shape) < 0:
        raise InvalidArgument(f"{_where(index, tensor)}.shape: dimensions must be >= 0, got {list(shape)}")
    count = math.prod(shape)
    datatype = tensor.datatype
    dtype = _DTYPE.get(datatype)
    if dtype is not None and raw is not None:  # what tritonclient sends
        if len(raw) != count * dtype.itemsize:
            raise InvalidArgument(
                f"{_where(index, tensor)}: raw contents hold {len(raw)} bytes, shape {list(shape)} of {datatype} "
                f"needs {count * dtype.itemsize}"
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    if datatype == "BYTES":
        if raw is not None:
            values = decode_bytes_elements(raw, count, _where(index, tensor))
        else:
            values = np.asarray(
                [b.decode("utf-8", errors="replace") for b in tensor.contents.bytes_contents], dtype=str
            )
    elif dtype is not None:
        field = DATATYPES[datatype][1]
        if not field:
            raise InvalidArgument(
                f"{_where(index, tensor)}: {datatype} needs raw contents (the protocol has no typed field for it)"
            )
        values = np.asarray(getattr(tensor.contents, field), dtype=dtype)
    else:
        raise InvalidArgument(
            f"{_where(index, tensor)}.datatype: unsupported {quote(datatype)}; use one of {', '.join([*DATATYPES, 'BYTES'])}"
        )
    if values.size != count:
        raise InvalidArgument(
            f"{_where(index, tensor)}: {values.size} values for shape {list(shape)} ({count} expected)"
        )
    return values.reshape(shape)


def inputs_by_name(request: oip.ModelInferRequest) -> dict[str, np.ndarray]:
    """Every input tensor of a request, decoded, by name."""
    tensors = request.inputs
    raw = request.raw_input_contents
    if raw and len(raw) != len(tensors):
        raise InvalidArgument(
            f"raw_input_contents: {len(raw)} entries for {len(tensors)} inputs; send one per input or none"
        )
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(tensors):
        name = tensor.name
        if not name:
            raise InvalidArgument(f"inputs[{i}].name: must not be empty")
        if name in arrays:
            raise InvalidArgument(f"{_where(i, tensor)}: the input is given twice")
        arrays[name] = input_array(tensor, raw[i] if raw else None, i)
    return arrays


# Protos → the data plane's types.


def infer_request(request: oip.ModelInferRequest) -> InferRequest:
    received_ns = time.perf_counter_ns()
    outputs = request.outputs
    return InferRequest(
        request.model_name,
        request.model_version,
        request.id,
        inputs_by_name(request),
        tuple([o.name for o in outputs]) if outputs else (),
        received_ns,
    )


# The data plane's types → protos.


def infer_response(answer: InferResponse, raw: bool) -> oip.ModelInferResponse:
    """The answer as a ModelInferResponse, its outputs as raw contents when
    `raw`, else as typed contents. (Built in one constructor call, which costs
    less than adding the outputs one by one.)"""
    tensors, contents = [], []
    for output in answer.outputs:
        values, datatype = output.values, output.datatype
        dtype = _DTYPE[datatype]
        if values.dtype != dtype:
            values = values.astype(dtype)
        tensor = {"name": output.name, "datatype": datatype, "shape": values.shape}
        if raw:
            contents.append(values.tobytes())
        else:
            tensor["contents"] = {DATATYPES[datatype][1]: values.ravel().tolist()}
        tensors.append(tensor)
    return oip.ModelInferResponse(
        model_name=answer.model_name,
        model_version=answer.model_version,
        id=answer.id,
        outputs=tensors,
        raw_output_contents=contents,
    )


def stream_error(request: oip.ModelInferRequest, error: RxcastError) -> oip.ModelStreamInferResponse:
    """A failed request's answer on a stream: the error, with its status code's
    name, and the request's model, version and id so the caller can match it."""
    return oip.ModelStreamInferResponse(
        error_message=f"{error.code}: {error.message}",
        infer_response=oip.ModelInferResponse(
            model_name=request.model_name, model_version=request.model_version, id=request.id
        ),
    )


def server_metadata_response(server: ServerInfo) -> oip.ServerMetadataResponse:
    return oip.ServerMetadataResponse(name=server.name, version=server.version, extensions=server.extensions)


def _tensor_metadata(spec: TensorSpec) -> oip.ModelMetadataResponse.TensorMetadata:
    return oip.ModelMetadataResponse.TensorMetadata(name=spec.name, datatype=spec.datatype, shape=spec.shape)


def metadata_response(metadata: ModelMetadata) -> oip.ModelMetadataResponse:
    return oip.ModelMetadataResponse(
        name=metadata.name,
        versions=metadata.versions,
        platform=metadata.platform,
        inputs=[_tensor_metadata(s) for s in metadata.inputs],
        outputs=[_tensor_metadata(s) for s in metadata.outputs],
    )


def config_response(config: ModelConfig) -> oip.ModelConfigResponse:
    return oip.ModelConfigResponse(
        config=oip.ModelConfig(
            name=config.name,
            platform=config.platform,
            backend=config.backend,
            max_batch_size=config.max_batch_size,
            input=[
                oip.ModelInput(name=s.name, data_type=_CONFIG_TYPES[s.datatype], dims=s.shape) for s in config.inputs
            ],
            output=[
                oip.ModelOutput(name=s.name, data_type=_CONFIG_TYPES[s.datatype], dims=s.shape) for s in config.outputs
            ],
            parameters={key: oip.ModelParameter(string_value=value) for key, value in config.parameters.items()},
        )
    )


def _duration(duration) -> oip.StatisticDuration:
    return oip.StatisticDuration(count=duration.count, ns=duration.ns)


def statistics_response(models: list[ModelStatistics]) -> oip.ModelStatisticsResponse:
    return oip.ModelStatisticsResponse(
        model_stats=[
            oip.ModelStatistics(
                name=model.name,
                version=str(s.version),
                last_inference=s.last_inference_ms,
                inference_count=s.inference_count,
                execution_count=s.execution_count,
                inference_stats=oip.InferStatistics(
                    success=_duration(s.success),
                    fail=_duration(s.fail),
                    compute_input=_duration(s.compute_input),
                    compute_infer=_duration(s.compute_infer),
                    compute_output=_duration(s.compute_output),
                ),
            )
            for model in models
            for s in model.versions
        ]
    )


def index_response(entries: list[ModelIndexEntry]) -> oip.RepositoryIndexResponse:
    return oip.RepositoryIndexResponse(
        models=[
            oip.RepositoryIndexResponse.ModelIndex(name=e.name, version=e.version, state=e.state, reason=e.reason)
            for e in entries
        ]
    )


#: The role each RPC needs (rxcast.runtime.auth): inference and its metadata are reads.
ROLES = auth.RoleTable(
    oip.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
    dict.fromkeys(oip.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods_by_name, auth.READ),
)


class InferenceServicer(oip_grpc.GRPCInferenceServiceServicer):
    """The Open Inference Protocol's gRPC service on a DataPlane."""

    def __init__(self, plane: DataPlane):
        self._plane = plane
        self._server_metadata = server_metadata_response(plane.server)

    def ServerLive(self, request, context):
        return oip.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return oip.ServerReadyResponse(ready=self._plane.server_ready())

    def ModelReady(self, request, context):
        return oip.ModelReadyResponse(ready=self._plane.model_ready(request.name, request.version))

    def ServerMetadata(self, request, context):
        return self._server_metadata

    def ModelMetadata(self, request, context):
        return metadata_response(self._plane.model_metadata(request.name, request.version))

    def ModelConfig(self, request, context):
        return config_response(self._plane.model_config(request.name, request.version))

    def ModelStatistics(self, request, context):
        return statistics_response(self._plane.model_statistics(request.name, request.version))

    def RepositoryIndex(self, request, context):
        return index_response(self._plane.repository_index(request.ready))

    def ModelInfer(self, request, context):
        answer = self._plane.infer(infer_request(request))
        return infer_response(answer, raw=len(request.raw_input_contents) > 0)

    def ModelStreamInfer(self, request_iterator, context):
        """Each request answered in turn; a domain error answers its request
        (Triton's semantics) and the stream goes on."""
        for request in request_iterator:
            try:
                answer = self._plane.infer(infer_request(request))
            except RxcastError as exc:
                yield stream_error(request, exc)
                continue
            raw = len(request.raw_input_contents) > 0
            yield oip.ModelStreamInferResponse(infer_response=infer_response(answer, raw))
