"""Fuzzing a running service through gRPC reflection.

Every RPC a process lists through reflection gets random and malformed
requests: strings that are long, empty or full of control and bidi
characters, numbers at and past their ranges (NaN, inf, int64 extremes),
Timestamps outside 0001..9999, unknown enum numbers, long repeated fields,
and byte strings that are no message at all. The service must answer each
with a deliberate status; INTERNAL and UNKNOWN are defects. The peak memory
each call costs the process is measured from /proc (VmHWM, reset per call).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rxcast.runtime import channels

#: Statuses no request may produce: they mean the service failed, not the caller.
DEFECTS = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
_TOOLING = ("grpc.health.v1.", "grpc.reflection.")
WATCH_SECONDS = 0.5

_NASTY_TEXT = (
    "",
    " ",
    "x\n",
    "a\x00b",
    "\r\n",
    "\u202eevil",
    "../../etc/passwd",
    "champion",
    "store_1",
    "item_1",
    "🙂" * 8,
    "%s%n",
    "1e309",
    "NaN",
)
_NASTY_FLOATS = (float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1e308, -1e308, 5e-324)
_INT64 = (0, 1, -1, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63))
_TIMESTAMP_SECONDS = (0, -1, 1_700_000_000, -62_135_596_801, 253_402_300_800, 2**63 - 1, -(2**63))


@dataclass
class Finding:
    method: str
    code: str
    details: str


@dataclass
class Report:
    """What fuzzing one process found."""

    calls: int = 0
    codes: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    worst_peak_kib: int = 0
    worst_method: str = ""

    @property
    def defects(self) -> int:
        return sum(self.codes[c.name] for c in DEFECTS)


def _reflect(channel: grpc.Channel, timeout: float = 10.0) -> list[descriptor.ServiceDescriptor]:
    """The services `channel`'s server lists, as descriptors built from what reflection returns."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    ask = reflection_pb2.ServerReflectionRequest
    (listing,) = stub.ServerReflectionInfo(iter([ask(list_services="")]), timeout=timeout)
    names = [s.name for s in listing.list_services_response.service if not s.name.startswith(_TOOLING)]
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for name in names:
        (answer,) = stub.ServerReflectionInfo(iter([ask(file_containing_symbol=name)]), timeout=timeout)
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files.setdefault(proto.name, proto)
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        for dependency in files[name].dependency:
            add(dependency)
        pool.Add(files[name])
        added.add(name)

    for name in files:
        add(name)
    return [pool.FindServiceByName(name) for name in names]


class Generator:
    """Random requests for a message type, biased to the values that break things."""

    def __init__(self, rng: random.Random, long_text: int = 70_000, long_repeat: int = 3_000):
        self.rng = rng
        self.long_text = long_text
        self.long_repeat = long_repeat

    def message(self, message_descriptor: descriptor.Descriptor, depth: int = 0):
        cls = message_factory.GetMessageClass(message_descriptor)
        message = cls()
        if message_descriptor.full_name == "google.protobuf.Timestamp":
            message.seconds = self.rng.choice(_TIMESTAMP_SECONDS)
            message.nanos = self.rng.choice((0, 999_999_999, 1_000_000_000, -1))
            return message
        for f in message_descriptor.fields:
            if self.rng.random() < 0.3:
                continue
            if f.is_repeated:
                count = self.rng.choice((0, 1, 2, 5, self.long_repeat if depth == 0 else 3))
                if f.message_type is not None and f.message_type.GetOptions().map_entry:
                    self._fill_map(message, f, count, depth)
                elif f.message_type is not None:
                    items = getattr(message, f.name)
                    for _ in range(min(count, 50) if depth else count):
                        items.add().CopyFrom(self.message(f.message_type, depth + 1))
                else:
                    getattr(message, f.name).extend(self.scalar(f) for _ in range(count))
            elif f.message_type is not None:
                if depth < 4:
                    getattr(message, f.name).CopyFrom(self.message(f.message_type, depth + 1))
            else:
                setattr(message, f.name, self.scalar(f))
        return message

    def _fill_map(self, message, f: descriptor.FieldDescriptor, count: int, depth: int) -> None:
        key_field = f.message_type.fields_by_name["key"]
        value_field = f.message_type.fields_by_name["value"]
        target = getattr(message, f.name)
        for _ in range(min(count, 200)):
            key = self.scalar(key_field)
            if value_field.message_type is not None:
                target[key].CopyFrom(self.message(value_field.message_type, depth + 1))
            else:
                target[key] = self.scalar(value_field)

    def scalar(self, f: descriptor.FieldDescriptor):
        rng = self.rng
        t = f.type
        if t == f.TYPE_STRING:
            roll = rng.random()
            if roll < 0.1:
                return "x" * rng.choice((256, 4_096, self.long_text))
            if roll < 0.2:
                return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(1, 40)))
            return rng.choice(_NASTY_TEXT)
        if t == f.TYPE_BYTES:
            return rng.randbytes(rng.choice((0, 1, 16, 1024)))
        if t in (f.TYPE_DOUBLE, f.TYPE_FLOAT):
            value = rng.choice(_NASTY_FLOATS) if rng.random() < 0.6 else rng.uniform(-1e6, 1e6)
            return max(-3.4e38, min(3.4e38, value)) if t == f.TYPE_FLOAT and math.isfinite(value) else value
        if t == f.TYPE_BOOL:
            return rng.random() < 0.5
        if t == f.TYPE_ENUM:
            numbers = [v.number for v in f.enum_type.values]
            return rng.choice([*numbers, 99, -5])
        if t in (f.TYPE_UINT32, f.TYPE_FIXED32):
            return rng.choice((0, 1, 2**32 - 1, rng.randrange(2**32)))
        if t in (f.TYPE_UINT64, f.TYPE_FIXED64):
            return rng.choice((0, 1, 2**64 - 1, rng.randrange(2**64)))
        if t in (f.TYPE_INT32, f.TYPE_SINT32, f.TYPE_SFIXED32):
            return rng.choice((0, 1, -1, 366, 2**31 - 1, -(2**31), rng.randrange(-1000, 100_000)))
        return rng.choice((*_INT64, rng.randrange(-1000, 100_000)))

    def payload(self, message_descriptor: descriptor.Descriptor) -> bytes:
        """A serialized request: mostly a random message, sometimes bytes that are none."""
        if self.rng.random() < 0.1:
            return self.rng.randbytes(self.rng.randrange(1, 64))
        return self.message(message_descriptor).SerializeToString()


def reset_peak(pid: int | None) -> None:
    """Start measuring `pid`'s peak resident memory (VmHWM) afresh."""
    if pid is not None:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")


def memory_kib(pid: int, key: str = "VmRSS:") -> int:
    """A memory figure of `pid` from /proc (VmRSS: now, VmHWM: peak since reset_peak), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def _invoke(channel: grpc.Channel, path: str, method: descriptor.MethodDescriptor, payloads: list[bytes], timeout):
    if method.server_streaming and method.name.startswith("Watch"):
        timeout = min(timeout, WATCH_SECONDS)  # watches stay open: a moment is enough to see them answer
    if method.client_streaming and method.server_streaming:
        for _ in zip(range(3), channel.stream_stream(path)(iter(payloads), timeout=timeout), strict=False):
            pass
    elif method.client_streaming:
        channel.stream_unary(path)(iter(payloads), timeout=timeout)
    elif method.server_streaming:
        for _ in zip(range(3), channel.unary_stream(path)(payloads[0], timeout=timeout), strict=False):
            pass
    else:
        channel.unary_unary(path)(payloads[0], timeout=timeout)


def fuzz_process(
    address: str,
    pid: int | None,
    calls_per_method: int,
    seed: int = 0,
    timeout: float = 3.0,
    skip: frozenset[str] = frozenset(),
) -> Report:
    """Send `calls_per_method` random requests to every RPC the server at `address` lists."""
    rng = random.Random(seed)
    generator = Generator(rng)
    report = Report()
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with channels.with_options(address, options, default_timeout=timeout) as channel:
        for service in _reflect(channel):
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                if method.name in skip:
                    continue
                for _ in range(calls_per_method):
                    count = rng.choice((1, 1, 2, 3)) if method.client_streaming else 1
                    payloads = [generator.payload(method.input_type) for _ in range(count)]
                    reset_peak(pid)
                    before = memory_kib(pid, "VmRSS:") if pid else 0
                    code, details = _call(channel, path, method, payloads, timeout)
                    if pid:
                        peak = memory_kib(pid, "VmHWM:") - before
                        if peak > report.worst_peak_kib:
                            report.worst_peak_kib, report.worst_method = peak, path
                    report.calls += 1
                    report.codes[code.name] += 1
                    if code in DEFECTS:
                        report.findings.append(Finding(path, code.name, details[:300]))
    return report


def _call(channel, path, method, payloads, timeout) -> tuple[grpc.StatusCode, str]:
    try:
        _invoke(channel, path, method, payloads, timeout)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and method.server_streaming:
            return grpc.StatusCode.OK, ""  # a watch stream stayed open: an answer
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def sigterm_seconds(process, timeout: float) -> tuple[int | None, float]:
    """SIGTERM `process` (a ServiceProcess); its exit code and how long it took."""
    started = time.monotonic()
    code = process.stop(timeout)
    return code, time.monotonic() - started


def summary(reports: dict[str, Report]) -> Iterator[str]:
    for name, r in reports.items():
        yield (
            f"{name:18} {r.calls:6d} calls  {r.defects:4d} INTERNAL/UNKNOWN  "
            f"worst peak {r.worst_peak_kib / 1024:8.1f} MiB ({r.worst_method})"
        )
