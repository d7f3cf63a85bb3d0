"""The model registry: atomic, numbered publishes; aliases with a history."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rxcast.model import ModelBundle
from rxcast.runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from rxcast.trainer.faults import CRASH_ENV, POINTS
from rxcast.trainer.registry import ModelRegistry
from tests.trainer.registry_worker import manifest, small_model

WORKER = Path(__file__).with_name("registry_worker.py")


@pytest.fixture(scope="module")
def model_text() -> bytes:
    return small_model(seed=1)


def _worker(root: Path, count: int, alias: str = "", env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(root), str(count), *([alias] if alias else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def assert_consistent(root: Path) -> list[int]:
    """Every visible version is complete and loads; returns their numbers."""
    registry = ModelRegistry(root)
    numbers = registry.versions()
    for number in numbers:
        bundle = ModelBundle.load(root / "versions" / f"{number:010d}")  # verifies the sha256
        assert bundle.version == number
    assert not list((root / "staging").iterdir()), "abandoned staging left behind"
    return numbers


def test_publish_numbers_versions_and_records_checksum(tmp_path, model_text):
    registry = ModelRegistry(tmp_path)
    assert registry.latest_version() == 0
    first = registry.publish(model_text, manifest("first"))
    second = registry.publish(model_text, manifest("second"))
    assert (first.version, second.version) == (1, 2)
    assert registry.versions() == [1, 2]
    assert second.manifest.sha256 and second.size_bytes == len(model_text)
    assert second.manifest.reason == "second" and second.manifest.created_time
    assert registry.load_bundle(2).version == 2
    with pytest.raises(NotFound, match="version 7 does not exist"):
        registry.get(7)
    # Immutable: what was read once is what is on disk, in a fresh registry too.
    assert ModelRegistry(tmp_path).get(1).manifest == first.manifest


def test_concurrent_publishes_from_threads_get_distinct_versions(tmp_path, model_text):
    registry = ModelRegistry(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(lambda i: registry.publish(model_text, manifest(f"t{i}")).version, range(24)))
    assert sorted(versions) == list(range(1, 25))
    assert assert_consistent(tmp_path) == list(range(1, 25))
    reasons = {registry.get(v).manifest.reason for v in versions}
    assert reasons == {f"t{i}" for i in range(24)}


def test_concurrent_publishes_from_two_processes_get_distinct_versions(tmp_path):
    workers = [_worker(tmp_path, 20), _worker(tmp_path, 20)]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    seen = [int(line) for out, _ in outputs for line in out.split()]
    assert sorted(seen) == list(range(1, 41))
    assert assert_consistent(tmp_path) == list(range(1, 41))


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_any_publish_point_leaves_no_half_version(tmp_path, point, model_text):
    ModelRegistry(tmp_path).publish(model_text, manifest("before"))
    crashed = _worker(tmp_path, 1, alias="champion", env={CRASH_ENV: point})
    crashed.communicate(timeout=60)
    assert crashed.returncode == -signal.SIGKILL
    committed = point in ("publish:committed", "alias:recorded")
    assert assert_consistent(tmp_path) == ([1, 2] if committed else [1])
    registry = ModelRegistry(tmp_path)
    if point == "alias:recorded":
        # The move was recorded: reopening brings the pointer up to date.
        assert registry.alias("champion").version == 2
        assert [c.to_version for c in registry.history("champion")] == [2]
    else:
        assert registry.alias("champion") is None
    # The next publish works and takes the next number.
    assert registry.publish(model_text, manifest("after")).version == (3 if committed else 2)


def test_kills_at_random_instants_never_expose_a_partial_version(tmp_path):
    rng = random.Random(5)
    for _ in range(6):
        worker = _worker(tmp_path, 1000, alias="champion")
        worker.stdout.readline()  # it has started publishing
        time.sleep(rng.uniform(0.0, 0.3))
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
        numbers = assert_consistent(tmp_path)
        assert numbers == list(range(1, len(numbers) + 1))
        registry = ModelRegistry(tmp_path)
        history = registry.history("champion")
        assert registry.alias("champion").version == history[0].to_version
        assert [c.sequence for c in history] == list(range(len(history), 0, -1))


def test_alias_moves_are_recorded_and_compare_and_set(tmp_path, model_text):
    registry = ModelRegistry(tmp_path)
    for _ in range(3):
        registry.publish(model_text, manifest())
    assert registry.alias("champion") is None
    with pytest.raises(FailedPrecondition, match="never moved"):
        registry.previous_version("champion")
    registry.move_alias("champion", 1, "gate", "first", expected_from=0)
    registry.move_alias("champion", 3, "force", "hotfix")
    with pytest.raises(Aborted, match="moved from v1 to v3"):
        registry.move_alias("champion", 2, "gate", "stale decision", expected_from=1)
    registry.move_alias("champion", 1, "rollback", "bad release")
    state = registry.alias("champion")
    assert (state.version, state.sequence) == (1, 3)
    history = registry.history("champion")
    assert [(c.from_version, c.to_version, c.kind, c.reason) for c in history] == [
        (3, 1, "rollback", "bad release"),
        (1, 3, "force", "hotfix"),
        (0, 1, "gate", "first"),
    ]
    assert registry.previous_version("champion") == 3
    assert registry.aliases_of(1) == ["champion"] and registry.aliases_of(3) == []
    with pytest.raises(NotFound):
        registry.move_alias("champion", 9, "force", "no such version")
    for bad in ("../etc", "Champion", "", "a/b"):
        if bad:
            with pytest.raises(InvalidArgument, match="alias"):
                registry.alias(bad)
    assert registry.alias("") == registry.alias("champion")


def test_alias_reads_see_moves_made_by_another_process(tmp_path, model_text):
    registry = ModelRegistry(tmp_path)
    registry.publish(model_text, manifest())
    registry.move_alias("champion", 1, "force", "start")
    assert registry.alias("champion").version == 1
    worker = _worker(tmp_path, 2, alias="champion")
    worker.communicate(timeout=60)
    assert worker.returncode == 0
    assert registry.alias("champion").version == 3
    assert json.loads((tmp_path / "aliases" / "champion.json").read_text())["version"] == 3


def test_alias_moves_from_threads_are_serialized(tmp_path, model_text):
    registry = ModelRegistry(tmp_path)
    for _ in range(4):
        registry.publish(model_text, manifest())
    barrier = threading.Barrier(8)

    def move(i):
        barrier.wait()
        registry.move_alias("champion", 1 + i % 4, "force", f"m{i}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(move, range(8)))
    history = registry.history("champion")
    assert [c.sequence for c in history] == list(range(8, 0, -1))
    # Each move starts where the previous one ended.
    for newer, older in itertools.pairwise(history):
        assert newer.from_version == older.to_version
