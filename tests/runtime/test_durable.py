"""The shared durable-write helper: files set aside whole, and an append-only
log whose torn last line never swallows the next record."""

from __future__ import annotations

from rxcast.runtime.durable import JsonLines, quarantine


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
