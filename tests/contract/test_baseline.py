"""The committed baseline holds every element of the protos.

`buf breaking` compares the protos with `protos/buf-baseline.binpb`, so it can
only protect what the baseline holds: a field added without recording the
baseline could later be renumbered or deleted unnoticed. This test fails as
soon as the protos hold an element (file, message, field, oneof membership,
enum, enum value, service, RPC) that the baseline lacks, so every additive
change records the baseline (`make baseline`) in the same commit. The converse,
an element of the baseline the protos lack or changed, is a breaking change,
and `buf breaking` catches it (tests/contract/test_buf.py proves it).
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import descriptor_pb2

from tests.conftest import REPO
from tests.contract.conftest import BASELINE, buf, edit

_TYPES = {
    number: name.removeprefix("TYPE_").lower() for name, number in descriptor_pb2.FieldDescriptorProto.Type.items()
}
_LABELS = {
    number: name.removeprefix("LABEL_").lower() for name, number in descriptor_pb2.FieldDescriptorProto.Label.items()
}
_IDEMPOTENCY = {number: name for name, number in descriptor_pb2.MethodOptions.IdempotencyLevel.items()}


def build_image(module: Path, out: Path) -> descriptor_pb2.FileDescriptorSet:
    """`buf build` the module at `module` (its own files, no imports) into `out`."""
    result = buf("build", "--exclude-imports", "--exclude-source-info", "-o", str(out), cwd=module)
    assert result.returncode == 0, result.stdout + result.stderr
    return load_image(out)


def load_image(path: Path) -> descriptor_pb2.FileDescriptorSet:
    """A buf image read as a FileDescriptorSet (buf's extra fields are ignored)."""
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def _field(scope: str, field: descriptor_pb2.FieldDescriptorProto, oneofs: list[str]) -> str:
    described = f"{_LABELS[field.label]} {_TYPES[field.type]}"
    if field.type_name:
        described += f" {field.type_name}"
    if field.HasField("extendee"):
        described += f" extends {field.extendee}"
    if field.HasField("oneof_index"):
        described += f" in oneof {oneofs[field.oneof_index]}"
    return f"field {scope}.{field.name} = {field.number} ({described})"


def _enum(scope: str, enum: descriptor_pb2.EnumDescriptorProto) -> set[str]:
    name = f"{scope}.{enum.name}"
    return {f"enum {name}"} | {f"enum value {name}.{v.name} = {v.number}" for v in enum.value}


def _message(scope: str, message: descriptor_pb2.DescriptorProto) -> set[str]:
    name = f"{scope}.{message.name}"
    oneofs = [o.name for o in message.oneof_decl]
    elements = {f"message {name}"}
    elements |= {_field(name, f, oneofs) for f in [*message.field, *message.extension]}
    for nested in message.nested_type:
        elements |= _message(name, nested)
    for enum in message.enum_type:
        elements |= _enum(name, enum)
    return elements


def _rpc(service: str, method: descriptor_pb2.MethodDescriptorProto) -> str:
    request = ("stream " if method.client_streaming else "") + method.input_type.lstrip(".")
    response = ("stream " if method.server_streaming else "") + method.output_type.lstrip(".")
    idempotency = _IDEMPOTENCY[method.options.idempotency_level]
    return f"rpc {service}.{method.name}({request}) returns ({response}) [{idempotency}]"


def elements(image: descriptor_pb2.FileDescriptorSet) -> set[str]:
    """Every contract element of `image`, one readable string each."""
    found: set[str] = set()
    for file in image.file:
        found.add(f"file {file.name} (package {file.package})")
        scope = file.package
        for message in file.message_type:
            found |= _message(scope, message)
        for enum in file.enum_type:
            found |= _enum(scope, enum)
        found |= {_field(scope, f, []) for f in file.extension}
        for service in file.service:
            name = f"{scope}.{service.name}"
            found.add(f"service {name}")
            found |= {_rpc(name, m) for m in service.method}
    return found


def missing_from_baseline(
    protos: descriptor_pb2.FileDescriptorSet, baseline: descriptor_pb2.FileDescriptorSet
) -> list[str]:
    """Elements of `protos` the baseline lacks, sorted."""
    return sorted(elements(protos) - elements(baseline))


def test_baseline_holds_every_element_of_the_protos(tmp_path: Path):
    missing = missing_from_baseline(build_image(REPO, tmp_path / "protos.binpb"), load_image(BASELINE))
    assert not missing, (
        f"{BASELINE.relative_to(REPO)} lacks {len(missing)} element(s) the protos hold, so `buf breaking` "
        "cannot protect them. Run `make baseline` and commit protos/buf-baseline.binpb in the same "
        "commit as the change to the protos:\n  " + "\n  ".join(missing)
    )


def test_the_elements_cover_every_kind(tmp_path: Path):
    """The walk reaches every kind of element the protos use (so none is skipped unseen)."""
    found = elements(build_image(REPO, tmp_path / "protos.binpb"))
    expected = [
        "file rxcast/predictor/v1/predictor.proto (package rxcast.predictor.v1)",
        "message rxcast.predictor.v1.PredictRequest",
        "field rxcast.predictor.v1.PredictRequest.as_of_time = 2 (optional message .google.protobuf.Timestamp)",
        "field rxcast.feature.v1.InventoryRecord.units_dispensed = 4 (optional double in oneof _units_dispensed)",
        "message inference.ModelInferRequest.InferInputTensor",
        "enum rxcast.predictor.v1.PredictionFlag",
        "enum value rxcast.predictor.v1.PredictionFlag.PREDICTION_FLAG_FALLBACK = 8",
        "service rxcast.predictor.v1.PredictorService",
        (
            "rpc rxcast.predictor.v1.PredictorService.Predict(rxcast.predictor.v1.PredictRequest) "
            "returns (rxcast.predictor.v1.PredictResponse) [NO_SIDE_EFFECTS]"
        ),
        (
            "rpc rxcast.predictor.v1.PredictorService.PredictStream(stream rxcast.predictor.v1.PredictStreamRequest) "
            "returns (stream rxcast.predictor.v1.PredictStreamResponse) [IDEMPOTENCY_UNKNOWN]"
        ),
    ]
    assert [e for e in expected if e not in found] == []
    assert any(
        re.match(r"field inference\.InferParameter\.\w+ = \d+ \(.* in oneof parameter_choice\)", e) for e in found
    )


def _missing_afteredit(module: Path, path: str, pattern: str, replacement: str) -> list[str]:
    edit(module / path, pattern, replacement)
    return missing_from_baseline(build_image(module, module / "edited.binpb"), load_image(BASELINE))


PREDICTOR_PROTO = "protos/rxcast/predictor/v1/predictor.proto"


def test_unedited_copy_misses_nothing(proto_copy: Path):
    assert missing_from_baseline(build_image(proto_copy, proto_copy / "copy.binpb"), load_image(BASELINE)) == []


def test_an_added_field_is_reported(proto_copy: Path):
    missing = _missing_afteredit(
        proto_copy,
        PREDICTOR_PROTO,
        r"(  google\.protobuf\.Timestamp as_of_time = 2;\n)",
        r"\1  // Who asks.\n  string caller = 99;\n",
    )
    assert missing == ["field rxcast.predictor.v1.PredictRequest.caller = 99 (optional string)"]


def test_an_added_rpc_and_messages_are_reported(proto_copy: Path):
    edit(
        proto_copy / PREDICTOR_PROTO,
        r"(service PredictorService \{\n)",
        r"\1  // Ping.\n  rpc Ping(PingRequest) returns (stream PingResponse) {\n"
        r"    option idempotency_level = NO_SIDE_EFFECTS;\n  }\n",
    )
    with open(proto_copy / PREDICTOR_PROTO, "a") as proto:
        proto.write(
            "\n// A ping.\nmessage PingRequest {}\n"
            "\n// A pong.\nmessage PingResponse {\n  // Echo.\n  oneof echo {\n    // Text.\n    string text = 1;\n  }\n}\n"
        )
    missing = missing_from_baseline(build_image(proto_copy, proto_copy / "edited.binpb"), load_image(BASELINE))
    assert missing == [
        "field rxcast.predictor.v1.PingResponse.text = 1 (optional string in oneof echo)",
        "message rxcast.predictor.v1.PingRequest",
        "message rxcast.predictor.v1.PingResponse",
        (
            "rpc rxcast.predictor.v1.PredictorService.Ping(rxcast.predictor.v1.PingRequest) "
            "returns (stream rxcast.predictor.v1.PingResponse) [NO_SIDE_EFFECTS]"
        ),
    ]


def test_an_added_enum_value_is_reported(proto_copy: Path):
    missing = _missing_afteredit(
        proto_copy,
        PREDICTOR_PROTO,
        r"(  PREDICTION_FLAG_FEATURES_UNAVAILABLE = 32;\n)",
        r"\1  // New.\n  PREDICTION_FLAG_NEW = 64;\n",
    )
    assert missing == ["enum value rxcast.predictor.v1.PredictionFlag.PREDICTION_FLAG_NEW = 64"]


def test_a_changed_idempotency_level_is_reported(proto_copy: Path):
    missing = _missing_afteredit(
        proto_copy,
        "protos/rxcast/feature/v1/feature.proto",
        r"(rpc IngestRecords\(.*?option idempotency_level = )IDEMPOTENT;",
        r"\1NO_SIDE_EFFECTS;",
    )
    assert len(missing) == 1 and missing[0].startswith("rpc rxcast.feature.v1.FeatureService.IngestRecords(")
    assert missing[0].endswith("[NO_SIDE_EFFECTS]")


def test_an_added_file_is_reported(proto_copy: Path):
    extra = proto_copy / "protos/rxcast/extra/v1/extra.proto"
    extra.parent.mkdir(parents=True)
    extra.write_text('syntax = "proto3";\n\n// Extra.\npackage rxcast.extra.v1;\n\n// A thing.\nmessage Thing {}\n')
    missing = missing_from_baseline(build_image(proto_copy, proto_copy / "edited.binpb"), load_image(BASELINE))
    assert missing == ["file rxcast/extra/v1/extra.proto (package rxcast.extra.v1)", "message rxcast.extra.v1.Thing"]
