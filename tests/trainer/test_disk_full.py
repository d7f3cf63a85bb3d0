"""A full disk under the trainer's registry: the runtime's guard watches its
free space, so health turns NOT_SERVING when it runs short, with no call
failing first (the trainer writes from its training jobs, outside any call),
and SERVING again once space is freed. The registry is a 4 MiB tmpfs in the
process's own mount namespace (tests.tiny_disk)."""

from __future__ import annotations

import time

from rxcast.trainer.v1 import trainer_pb2
from tests.tiny_disk import TinyDisk, needs_namespaces

pytestmark = needs_namespaces

TRAINER_SERVICE = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name


def _health_becomes(process: TinyDisk, status: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while (seen := process.health()) != status and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def test_a_full_registry_disk_is_not_serving_until_there_is_room_again(tmp_path):
    process = TinyDisk(
        "trainer", tmp_path / "run", tmp_path / "registry", 4,
        "--job-dir", str(tmp_path / "jobs"), "--min-free-mb", "1", "--policies", "",
        flag="--registry-dir",
    ).start()  # fmt: skip
    process.wait_ready(120)
    try:
        assert process.health() == "SERVING"
        process.fill()
        assert _health_becomes(process, "NOT_SERVING") == "NOT_SERVING"
        assert process.health(TRAINER_SERVICE) == "NOT_SERVING"
        process.free()
        assert _health_becomes(process, "SERVING") == "SERVING"
        assert process.health(TRAINER_SERVICE) == "SERVING"
    finally:
        process.stop()
