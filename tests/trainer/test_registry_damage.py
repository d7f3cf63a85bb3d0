"""The registry against damage and junk: alias names are whole-string matches,
stored reasons are bounded, and a corrupt pointer, history record, job record
or manifest is set aside or skipped, never a failed start or listing."""

from __future__ import annotations

import pytest

from rxcast.runtime.errors import FailedPrecondition, InvalidArgument
from rxcast.runtime.validation import MAX_TEXT_LENGTH
from rxcast.trainer.jobs import JobStore
from rxcast.trainer.registry import ModelRegistry
from tests.trainer.registry_worker import manifest, small_model


@pytest.fixture(scope="module")
def model_text() -> bytes:
    return small_model(seed=1)


@pytest.fixture
def registry(tmp_path, model_text) -> ModelRegistry:
    registry = ModelRegistry(tmp_path)
    for _ in range(3):
        registry.publish(model_text, manifest())
    registry.move_alias("champion", 1, "gate", "first")
    registry.move_alias("champion", 2, "gate", "second")
    return registry


@pytest.mark.parametrize("bad", ["x\n", "champion\n", "a\x00", "x" * 64])
def test_alias_names_must_match_as_a_whole(registry, bad):
    with pytest.raises(InvalidArgument, match="^alias: ") as info:
        registry.move_alias(bad, 1, "force", "junk")
    assert len(info.value.message) < 200
    assert not list(registry.root.joinpath("aliases").glob("x*"))


def test_a_huge_reason_is_stored_cut(registry):
    registry.move_alias("champion", 3, "force", "r" * 1_000_000)
    assert len(registry.history("champion")[0].reason) == MAX_TEXT_LENGTH


def test_a_corrupt_alias_pointer_is_set_aside_and_rebuilt_from_history(tmp_path, registry):
    (tmp_path / "aliases" / "champion.json").write_text("{not json")
    reopened = ModelRegistry(tmp_path)
    assert reopened.alias("champion").version == 2
    assert list((tmp_path / "aliases").glob("champion.json.corrupt-*"))


def test_a_corrupt_history_record_is_set_aside_and_the_rest_kept(tmp_path, registry):
    (tmp_path / "history" / "champion" / "0000000002.json").write_text('{"alias": "champion"')
    reopened = ModelRegistry(tmp_path)
    assert [c.to_version for c in reopened.history("champion")] == [1]
    assert reopened.alias("champion").version == 2  # the pointer still holds the last move
    reopened.move_alias("champion", 3, "force", "after the damage")
    assert [c.to_version for c in reopened.history("champion")] == [3, 1]


def test_one_unreadable_manifest_is_skipped_by_listings(tmp_path, registry):
    (tmp_path / "versions" / "0000000002" / "manifest.json").write_text("[]")
    reopened = ModelRegistry(tmp_path)
    assert [info.version for info in reopened.readable([3, 2, 1])] == [3, 1]
    with pytest.raises(FailedPrecondition, match="version 2: its manifest is unreadable"):
        reopened.get(2)


def test_a_corrupt_job_record_is_set_aside(tmp_path):
    store = JobStore(tmp_path / "jobs")
    (tmp_path / "jobs" / "job-0123456789abcdef.json").write_text("{")
    assert store.load(10) == []
    assert store.get("job-0123456789abcdef") is None
    assert list((tmp_path / "jobs").glob("job-0123456789abcdef.json.corrupt-*"))
