"""The shared durable-write helper: files set aside whole, and an append-only
log whose torn last line never swallows the next record."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rxcast.runtime.durable import JsonLines, create_exclusive, quarantine, read_json, remove_scratch, write_json


def test_quarantine_renames_aside_and_never_overwrites(tmp_path):
    first = tmp_path / "state.json"
    first.write_text("{broken")
    aside = quarantine(first, "not JSON")
    assert not first.exists() and aside.read_text() == "{broken"
    assert aside.name.startswith("state.json.corrupt-")
    first.write_text("again")
    other = quarantine(first, "not JSON")
    assert other != aside and other.read_text() == "again" and aside.read_text() == "{broken"


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_line(tmp_path):
    path = tmp_path / "log.jsonl"
    JsonLines(path).extend([{"n": 1}, {"n": 2}])
    with open(path, "a") as out:
        out.write('{"n": 3, "tor')  # a crash mid-append
    reopened = JsonLines(path)
    assert reopened.read() == [{"n": 1}, {"n": 2}]
    reopened.append({"n": 4})
    reopened.append({"n": 5})
    assert JsonLines(path).read() == [{"n": 1}, {"n": 2}, {"n": 4}, {"n": 5}]


def test_atomic_writes_replace_whole_and_leave_no_scratch(tmp_path):
    path = tmp_path / "deep" / "state.json"
    write_json(path, {"n": 1})
    write_json(path, {"n": 2})
    assert read_json(path) == {"n": 2} and read_json(tmp_path / "none.json", default={}) == {}
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]
    # NaN is refused unless asked for: a state file stays strict JSON.
    with pytest.raises(ValueError):
        write_json(path, {"n": float("nan")})
    assert read_json(path) == {"n": 2} and [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_exclusive_create_has_one_winner(tmp_path):
    create_exclusive(tmp_path / "7.json", b"first")
    with pytest.raises(FileExistsError):
        create_exclusive(tmp_path / "7.json", b"second")
    assert (tmp_path / "7.json").read_bytes() == b"first" and len(list(tmp_path.iterdir())) == 1


def test_scratch_of_a_dead_writer_is_swept_and_a_live_writers_kept(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    (tmp_path / f"_state.json.{dead.stdout.strip()}-abc123.tmp").write_text("left by a crash")
    live = tmp_path / f"_state.json.{os.getpid()}-def456.tmp"
    live.write_text("being written")
    (tmp_path / "_old.tmp").write_text("no owner recorded")
    assert remove_scratch(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == [live.name]
