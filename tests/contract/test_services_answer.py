"""Every service starts as its own process and answers its whole contract:
health SERVING, reflection listing every declared service, and an answer to
every declared RPC that is a deliberate status, never INTERNAL or UNKNOWN.
Each RPC is called by an identity holding the role its table names (admin, or
the trainer for what only the trainer may do), over TLS with a client certificate.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from inference import grpc_predict_v2_pb2

from rxcast.drift import servicer as drift_servicer
from rxcast.drift.v1 import drift_pb2
from rxcast.feature import servicer as feature_servicer
from rxcast.feature.v1 import feature_pb2
from rxcast.predictor import open_inference_grpc
from rxcast.predictor import servicer as predictor_servicer
from rxcast.predictor.v1 import predictor_pb2
from rxcast.runtime import auth, tls
from rxcast.runtime.channels import connect
from rxcast.suite.topology import start_suite
from rxcast.trainer import servicer as trainer_servicer
from rxcast.trainer.v1 import trainer_pb2

HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


def _service(module, name):
    return module.DESCRIPTOR.services_by_name[name]


FEATURE = _service(feature_pb2, "FeatureService")
TRAINER = _service(trainer_pb2, "TrainerService")
DRIFT = _service(drift_pb2, "DriftService")
PREDICTOR = _service(predictor_pb2, "PredictorService")
INFERENCE = _service(grpc_predict_v2_pb2, "GRPCInferenceService")

#: The rxcast services each process of the suite declares.
DECLARED = {
    "feature": [FEATURE],
    "trainer": [TRAINER],
    "drift": [DRIFT],
    "predictor-online": [PREDICTOR, INFERENCE],
    "predictor-batch": [PREDICTOR],
}

#: The role each declared RPC needs, by its path.
REQUIRED = {
    path: role
    for table in (
        feature_servicer.ROLES,
        trainer_servicer.ROLES,
        drift_servicer.ROLES,
        predictor_servicer.ROLES,
        open_inference_grpc.ROLES,
    )
    for path, role in table.paths().items()
}
#: Who calls an RPC needing a role: admin, or the trainer for what admin may not do.
CALLER = {role: "admin" if role in auth.granted([auth.ADMIN]) else "trainer" for role in auth.ROLES}

#: Statuses that are a deliberate answer to an empty request.
DELIBERATE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAVAILABLE,
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    running = start_suite(root / "run", root / "data")
    yield running
    running.stop()


def _message_class(descriptor):
    return message_factory.GetMessageClass(descriptor)


def _call(channel: grpc.Channel, service, method) -> grpc.StatusCode:
    """Call `method` with an empty request; return the status it ends with."""
    path = f"/{service.full_name}/{method.name}"
    request = _message_class(method.input_type)()
    response_class = _message_class(method.output_type)
    kwargs = {"request_serializer": type(request).SerializeToString, "response_deserializer": response_class.FromString}
    timeout = 10.0
    try:
        if method.client_streaming and method.server_streaming:
            for _ in channel.stream_stream(path, **kwargs)(iter([request]), timeout=timeout):
                break
        elif method.client_streaming:
            channel.stream_unary(path, **kwargs)(iter([request]), timeout=timeout)
        elif method.server_streaming:
            # Watch streams stay open: a first message, or an open stream at the
            # deadline, is an answer.
            for _ in channel.unary_stream(path, **kwargs)(request, timeout=2.0 if "Watch" in method.name else timeout):
                break
        else:
            channel.unary_unary(path, **kwargs)(request, timeout=timeout)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "Watch" in method.name:
            return grpc.StatusCode.OK
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            assert method.name in exc.details(), f"{path}: UNIMPLEMENTED without naming the RPC: {exc.details()!r}"
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("name", list(DECLARED))
def test_health_is_serving(suite, name):
    process = suite[name]
    assert process.health("") == "SERVING"
    for service in DECLARED[name]:
        assert process.health(service.full_name) in ("SERVING", "NOT_SERVING")


def _channel(address: str, identity: str = "admin") -> grpc.Channel:
    trust = tls.ClientSettings(identity=identity).trust()
    return connect(address, default_timeout=30.0, trust=trust)


@pytest.mark.parametrize("name", list(DECLARED))
def test_reflection_lists_every_declared_service(suite, name):
    with _channel(suite[name].address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = list(
            stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        )
        listed = {s.name for s in responses[0].list_services_response.service}
        expected = {s.full_name for s in DECLARED[name]} | {HEALTH, REFLECTION}
        assert expected <= listed

        # Reflection serves each service's descriptors, so tools can build requests.
        for service in DECLARED[name]:
            request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=service.full_name)
            (answer,) = stub.ServerReflectionInfo(iter([request]), timeout=5)
            for raw in answer.file_descriptor_response.file_descriptor_proto:
                proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
                if proto.name == service.file.name:
                    assert service.name in [s.name for s in proto.service]
                    break
            else:
                pytest.fail(f"reflection did not return {service.file.name}")


@pytest.mark.parametrize("name", list(DECLARED))
def test_every_declared_rpc_answers(suite, name):
    problems = []
    channels = {who: _channel(suite[name].address, who) for who in set(CALLER.values())}
    try:
        for service in DECLARED[name]:
            for method in service.methods:
                full = f"{service.full_name}/{method.name}"
                code = _call(channels[CALLER[REQUIRED[f"/{full}"]]], service, method)
                if code not in DELIBERATE:
                    problems.append(f"{full}: answered {code.name} to an empty request")
    finally:
        for channel in channels.values():
            channel.close()
    assert not problems, "\n".join(problems)
