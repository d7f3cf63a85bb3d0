"""The drift engine's state without a server: every part round-trips through
JSON or .npz, an engine that was never closed (a SIGKILL) comes back whole
from its checkpoints and journal, and files that cannot be read are set
aside while the engine starts from the rest."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import river

from rxcast.drift import detectors
from rxcast.drift import engine as engine_module
from rxcast.drift.alerts import DATA_DRIFT, AlertBook
from rxcast.drift.codec import StateError, text_to_floats
from rxcast.drift.detectors import DetectorSettings, ErrorStreamMonitor, LossTransform, PageHinkley
from rxcast.drift.engine import DriftEngine, EngineSettings
from rxcast.drift.matching import PredictionLog
from rxcast.drift.windows import Batch, Window, WindowBuffer
from rxcast.model.profile import build_reference_profile

DAY = 1000
KINDS = {"x": "numeric", "region": "categorical"}


def _json(data):
    """Through text, as the state files hold it (strict: no NaN)."""
    return json.loads(json.dumps(data, allow_nan=False))


def _rows(times: list[int], seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    n = len(times)
    x = rng.normal(size=n)
    x[:2] = [np.nan, np.inf][:n]
    region = rng.choice(np.array(["north", "south", None, ""], dtype=object), n)
    return Batch({"x": x, "region": region}, rng.normal(size=n), np.array(times, dtype=np.int64))


def _same_rows(a: Batch, b: Batch) -> None:
    np.testing.assert_array_equal(a.features["x"], b.features["x"])
    # None and "" are both missing: they come back as "".
    assert [v or "" for v in a.features["region"]] == list(b.features["region"])
    np.testing.assert_array_equal(a.predictions, b.predictions)
    np.testing.assert_array_equal(a.event_times_ms, b.event_times_ms)


# ------------------------------------------------------------ windows


def test_batches_and_windows_round_trip_with_nan_inf_and_missing_categories():
    rows = _rows([1, 2, 3, 4, 5])
    _same_rows(rows, Batch.from_dict(_json(rows.to_dict())))
    window = Window(3, 7, rows, 1234)
    again = Window.from_dict(_json(window.to_dict()))
    assert (again.window_id, again.opened_ms) == ("v3-w7", 1234)
    _same_rows(rows, again.rows)


def test_an_open_window_restored_closes_as_the_original_would():
    original = WindowBuffer(1, KINDS, max_rows=6, slot_ms=DAY)
    assert list(original.add(_rows([10, 20, 30, 40], seed=1), now_ms=5)) == []
    restored = WindowBuffer.from_dict(_json(original.to_dict()), max_rows=6, slot_ms=DAY)
    assert (restored.rows, restored.sequence) == (4, 1)
    later = _rows([50, DAY + 1, 60], seed=2)
    expected, got = list(original.add(later, now_ms=9)), list(restored.add(later, now_ms=9))
    assert [w.window_id for w in got] == [w.window_id for w in expected] == ["v1-w1"]
    _same_rows(expected[0].rows, got[0].rows)
    assert got[0].opened_ms == 5 and restored.peek(0).rows.event_times_ms.tolist() == [DAY + 1]
    empty = WindowBuffer.from_dict(_json(WindowBuffer(2, KINDS, 6, DAY, next_sequence=4).to_dict()), 6, DAY)
    assert (empty.rows, empty.sequence) == (0, 4)


def test_a_window_takes_new_columns_when_the_features_windowed_change():
    buffer = WindowBuffer(1, KINDS, max_rows=10, slot_ms=DAY)
    list(buffer.add(_rows([1, 2, 3]), now_ms=0))
    other = buffer.with_kinds({"x": "numeric", "price": "numeric"})
    rows = other.peek(0).rows
    assert set(rows.features) == {"x", "price"} and np.isnan(rows.features["price"]).all()
    assert other.rows == 3 and other.sequence == buffer.sequence


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("rows"),
        lambda d: d["rows"].update(predictions="not base64!"),
        lambda d: d["rows"].update(predictions=d["rows"]["predictions"][:-4]),  # a length that is not whole floats
        lambda d: d["rows"]["features"].update(x={"numbers": []}),
        lambda d: d.update(kinds={"x": "text"}),
        lambda d: d.update(sequence="1"),
    ],
)
def test_a_damaged_window_is_a_state_error(damage):
    buffer = WindowBuffer(1, KINDS, max_rows=10, slot_ms=DAY)
    list(buffer.add(_rows([1, 2, 3, 4]), now_ms=0))
    data = _json(buffer.to_dict())
    damage(data)
    with pytest.raises(StateError):
        WindowBuffer.from_dict(data, 10, DAY)


# ------------------------------------------------------------ detectors


def _stream(seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(np.concatenate([rng.normal(0, 1, 4000), rng.normal(0, 1.8, 4000)]))


@pytest.mark.parametrize("reference", [True, False], ids=["reference errors", "warm-up"])
@pytest.mark.parametrize("cut", [300, 4200, 4700])  # warming up; detecting; confirming a detection
def test_a_monitor_restored_mid_stream_continues_exactly_as_the_original(reference, cut):
    errors = np.random.default_rng(4).normal(size=3000) if reference else None
    stream = _stream()
    whole = ErrorStreamMonitor(DetectorSettings(), errors, seed=3)
    expected = [(d.detector, d.sample, d.level_after) for d in whole.update(stream)]
    assert expected, "the stream must raise a detection for the test to mean something"

    first = ErrorStreamMonitor(DetectorSettings(), errors, seed=3)
    got = [(d.detector, d.sample, d.level_after) for d in first.update(stream[:cut])]
    restored = ErrorStreamMonitor.from_dict(_json(first.to_dict()), DetectorSettings())
    assert restored.state() == first.state()
    got += [(d.detector, d.sample, d.level_after) for d in restored.update(stream[cut:])]
    assert got == expected
    assert restored.state() == whole.state() and restored.level_total == pytest.approx(whole.level_total)


def test_page_hinkley_and_the_transform_round_trip():
    fresh = PageHinkley(100, 0.02, 15.0)
    assert PageHinkley.from_dict(_json(fresh.to_dict()), DetectorSettings()).minimum == float("inf")
    for u in np.random.default_rng(1).random(500):
        fresh.update(float(u))
    again = PageHinkley.from_dict(_json(fresh.to_dict()), DetectorSettings())
    assert vars(again) == vars(fresh)
    transform = LossTransform(np.random.default_rng(2).gamma(2.0, 1.0, 500), seed=9)
    transform(np.ones(10))
    copy = LossTransform.from_dict(_json(transform.to_dict()))
    losses = np.random.default_rng(3).gamma(2.0, 1.0, 100)
    np.testing.assert_array_equal(copy(losses), transform(losses))


def test_an_adwin_state_from_elsewhere_is_refused_or_restarted(monkeypatch):
    monitor = ErrorStreamMonitor(reference_errors=np.random.default_rng(1).normal(size=1000))
    monitor.update(_stream()[:2000])
    data = _json(monitor.to_dict())
    altered = json.loads(json.dumps(data))
    altered["adwin"]["sha256"] = "0" * 64  # bytes that are not what was saved never reach river's decoder
    with pytest.raises(StateError, match="checksum"):
        ErrorStreamMonitor.from_dict(altered)
    monkeypatch.setattr(river, "__version__", "0.0.0")  # another river release: its ADWIN starts afresh
    restarted = ErrorStreamMonitor.from_dict(data)
    assert restarted.state()["adwin_width"] == 0 and restarted.samples == monitor.samples
    monkeypatch.undo()
    other = ErrorStreamMonitor.from_dict(data, DetectorSettings(adwin_delta=0.05))  # settings changed
    assert other.state()["adwin_width"] == 0 and other.samples == monitor.samples


# ------------------------------------------------------------ logged predictions


def _log_rows(log: PredictionLog, version: int, stores: list[str], times: list[int], values: list[float]) -> None:
    log.add(
        version,
        np.array(stores, dtype=object),
        np.full(len(stores), "m", dtype=object),
        np.array(times),
        np.array(values),
    )


def test_the_prediction_log_round_trips_with_its_marks():
    log = PredictionLog(max_rows=100)
    _log_rows(log, 1, ["a", "b", "c", "d"], [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0])
    # The newest copy of a key wins, with its segment.
    log.add(2, np.array(["a"], object), np.array(["m"], object), np.array([1]), np.array([9.0]), np.array(["flu"]))
    log.match(np.array(["b"], dtype=object), np.array(["m"], dtype=object), np.array([2]))
    log.unmatched(limit=1, asked_before_ms=0, now_ms=77)  # "a" is asked about at 77
    snapshot = log.snapshot()
    log.add(1, np.array(["late"], dtype=object), np.array(["m"], dtype=object), np.array([9]), np.array([1.0]))
    meta, arrays = snapshot.meta(), snapshot.arrays()  # taken before the late row: without it
    assert all(a.dtype != object for a in arrays.values())
    again = PredictionLog(max_rows=100)
    again.restore(_json(meta), arrays)
    assert len(again) == 4
    found, versions, predictions, segments = again.match(
        np.array(["a", "c", "z"], dtype=object), np.full(3, "m", dtype=object), np.array([1, 3, 1])
    )
    assert found.tolist() == [True, True, False] and versions[:2].tolist() == [2, 1]
    assert predictions[:2].tolist() == [9.0, 3.0] and segments.tolist() == ["flu", "", ""]
    # A log kept before segments restores with none.
    older = PredictionLog(max_rows=100)
    older.restore(meta, {k: v for k, v in arrays.items() if not k.startswith("segment")})
    assert older.match(np.array(["a"], object), np.array(["m"], object), np.array([1])).segments.tolist() == [""]
    # "b" stays matched and "a" asked at 77; rows added after the restore come after the restored ones.
    _log_rows(again, 1, ["e"], [5], [5.0])
    assert again.unmatched(limit=10, asked_before_ms=0, now_ms=80)["store_id"].tolist() == ["d", "e"]
    smaller = PredictionLog(max_rows=2)
    smaller.restore(meta, arrays)
    assert len(smaller) == 2


def test_a_damaged_prediction_snapshot_is_a_state_error():
    log = PredictionLog(max_rows=10)
    _log_rows(log, 1, ["a", "b"], [1, 2], [1.0, 2.0])
    meta, arrays = log.snapshot().meta(), log.snapshot().arrays()
    for damage in (
        lambda a: a.pop("seq"),
        lambda a: a.update(store_id_codes=np.array([0, 5])),
        lambda a: a.update(key=arrays["key"][::-1].copy()),
        lambda a: a.update(prediction=np.ones(3)),
    ):
        broken = dict(arrays)
        damage(broken)
        with pytest.raises(StateError):
            PredictionLog(10).restore(meta, broken)


# ------------------------------------------------------------ the engine across a kill


@pytest.fixture(scope="module")
def profile() -> dict:
    rng = np.random.default_rng(61)
    return build_reference_profile(
        {"x": rng.normal(size=2000), "region": rng.choice(np.array(["north", "south"], dtype=object), 2000)},
        ["region"],
        rng.normal(10.0, 1.0, 2000),
        rng.normal(size=2000),
    ).to_dict()


def _engine(data_dir: Path, profile: dict | None = None, window_rows: int = 150) -> DriftEngine:
    engine = DriftEngine(EngineSettings(window_rows=window_rows), data_dir)
    if profile is not None:
        engine.register_reference(1, profile)
    return engine


def _log(engine: DriftEngine, first: int, n: int, shift: float = 0.0, day: int = 0):
    rng = np.random.default_rng(first)
    stores = np.array([f"s{i}" for i in range(first, first + n)], dtype=object)
    return engine.log_predictions(
        1,
        stores,
        np.full(n, "m", dtype=object),
        np.full(n, day * 86_400_000 + 1, dtype=np.int64),
        {"x": rng.normal(shift, 1.0, n), "region": rng.choice(np.array(["north", "south"], dtype=object), n)},
        rng.normal(10.0, 1.0, n),
    )


def _actuals(engine: DriftEngine, first: int, n: int, sd: float = 1.0, day: int = 0):
    rng = np.random.default_rng(first + 7)
    stores = np.array([f"s{i}" for i in range(first, first + n)], dtype=object)
    return engine.log_actuals(
        stores,
        np.full(n, "m", dtype=object),
        np.full(n, day * 86_400_000 + 1, dtype=np.int64),
        10.0 + rng.normal(0.0, sd, n),
    )


def test_an_engine_never_closed_comes_back_whole(tmp_path, profile):
    killed = _engine(tmp_path, profile)
    assert [r.window_id for r in _log(killed, 0, 200).reports] == ["v1-w1"]  # a checkpoint; 50 rows stay open
    _log(killed, 200, 30)  # journal only
    assert _actuals(killed, 0, 80).matched == 80
    open_rows = killed.score_window(1).current_rows
    monitor = killed._monitors[1].to_dict()
    # No close(): the process died here.
    again = _engine(tmp_path)
    assert (again.score_window(1).window_id, again.score_window(1).current_rows) == ("v1-w2", open_rows)
    assert again._monitors[1].to_dict() == monitor
    assert len(again.predictions) == 230
    # Actuals of every prediction logged before the kill still match, once each to the detectors.
    assert _actuals(again, 80, 150).matched == 150
    assert again.predictions.unmatched(1000, 0, 1).empty
    assert [r.window_id for r in again.list_reports()] == ["v1-w1"]


def test_a_window_closed_by_a_call_the_crash_cut_short_is_scored_once_on_start(tmp_path, profile, monkeypatch):
    # The crash came after the journal write and before the window's report and checkpoint.
    crashing = _engine(tmp_path, profile)
    monkeypatch.setattr(DriftEngine, "_score_closed", lambda self, window, reference: (None, []))
    monkeypatch.setattr(DriftEngine, "_write_checkpoint", lambda self, checkpoint: None)
    _log(crashing, 0, 200, shift=3.0)
    monkeypatch.undo()
    started = _engine(tmp_path)
    assert [r.window_id for r in started.list_reports()] == ["v1-w1"]
    assert [a.kind for a in started.list_alerts()] == [DATA_DRIFT]
    assert started.score_window(1).current_rows == 50
    # Scored before the crash, checkpoint not written: not scored again.
    started.close()
    crashing = _engine(tmp_path)
    monkeypatch.setattr(DriftEngine, "_write_checkpoint", lambda self, checkpoint: None)
    _log(crashing, 200, 120)
    monkeypatch.undo()
    again = _engine(tmp_path)
    assert [r.window_id for r in again.list_reports()] == ["v1-w2", "v1-w1"]
    assert (again.score_window(1).window_id, again.score_window(1).current_rows) == ("v1-w3", 20)
    assert [a.kind for a in again.list_alerts()] == [DATA_DRIFT]


def test_a_flush_and_a_graceful_stop_leave_nothing_to_replay(tmp_path, profile):
    engine = _engine(tmp_path, profile)
    _log(engine, 0, 60)
    assert engine.flush(1).current_rows == 60
    _log(engine, 60, 10)
    engine.close()
    journal = sorted((tmp_path / "state" / "journal").iterdir())
    assert len(journal) == 1 and len(journal[0].read_text().splitlines()) == 1  # a header, nothing since
    again = _engine(tmp_path)
    assert again.score_window(1).window_id == "v1-w2" and again.score_window(1).current_rows == 10
    assert len(again.predictions) == 70


def test_compaction_bounds_the_journal(tmp_path, profile, monkeypatch):
    monkeypatch.setattr(engine_module, "COMPACT_MIN_ROWS", 100)
    engine = _engine(tmp_path, profile, window_rows=10_000)
    for first in range(0, 1000, 50):
        _log(engine, first, 50)
    state = tmp_path / "state"
    assert (state / "predictions.npz").exists()
    # Segments before the newest checkpoints are gone; what is left replays the rest.
    assert len(list((state / "journal").iterdir())) <= 2
    again = _engine(tmp_path, window_rows=10_000)
    assert len(again.predictions) == 1000 and again.score_window(1).current_rows == 1000


def test_a_restored_concept_monitor_keeps_its_episode(tmp_path, profile):
    engine = _engine(tmp_path, profile, window_rows=100_000)
    _log(engine, 0, 6000)
    assert _actuals(engine, 0, 1000).alerts == []
    raised = _actuals(engine, 1000, 3000, sd=10.0).alerts
    assert [a.kind for a in raised] == ["concept_drift"]
    again = _engine(tmp_path, window_rows=100_000)
    assert again.alerts.open_episodes(1, "concept_drift")
    assert _actuals(again, 4000, 2000, sd=10.0).alerts == []  # the same episode, no new alert


# ------------------------------------------------------------ files that cannot be read


def _corrupt(directory: Path, name: str) -> list[Path]:
    return sorted(directory.glob(f"{name}.corrupt-*"))


def test_a_corrupt_engine_checkpoint_is_set_aside_and_the_rest_restored(tmp_path, profile):
    engine = _engine(tmp_path, profile)
    _log(engine, 0, 200)
    _log(engine, 200, 20)
    state = tmp_path / "state"
    (state / "engine.json").write_text('{"format": "rxcast.drift.engine/1", "segment": 1, "windows": [{')
    again = _engine(tmp_path)
    assert len(_corrupt(state, "engine.json")) == 1
    assert len(again.predictions) == 220  # the journal still holds every logged prediction
    # The open window is lost with the checkpoint; new windows do not reuse a reported id.
    _log(again, 300, 200)
    assert [r.window_id for r in again.list_reports()][:1] == ["v1-w2"]


@pytest.mark.parametrize(
    "content",
    [b"\x00\x01garbage", b'{"format": "rxcast.drift.engine/99", "segment": 0}'],
    ids=["garbage", "unknown version"],
)
def test_an_unreadable_or_unknown_engine_file_does_not_stop_the_engine(tmp_path, profile, content):
    _engine(tmp_path, profile).close()
    (tmp_path / "state" / "engine.json").write_bytes(content)
    engine = _engine(tmp_path)
    assert len(_corrupt(tmp_path / "state", "engine.json")) == 1
    assert _log(engine, 0, 10).accepted == 10


def test_a_corrupt_prediction_snapshot_and_journal_segment_are_set_aside(tmp_path, profile):
    engine = _engine(tmp_path, profile)
    _log(engine, 0, 40)
    engine.close()  # predictions.npz now holds the 40
    engine = _engine(tmp_path)
    _log(engine, 40, 10)  # in the journal
    state = tmp_path / "state"
    (state / "predictions.npz").write_bytes(b"PK\x03\x04 not a zip")
    segment = max((state / "journal").iterdir())
    with open(segment, "a") as out:
        out.write('{"op": "log", "model_version": 1, "store_ids": ["x"], "medica')  # torn by the kill
    again = _engine(tmp_path)
    assert len(_corrupt(state, "predictions.npz")) == 1
    assert len(again.predictions) == 10  # what is whole: the journal after the lost snapshot
    other = max((state / "journal").iterdir())
    other.write_text('{"format": "rxcast.drift.journal/7"}\n')
    _engine(tmp_path)
    assert len(_corrupt(state / "journal", other.name)) == 1


def test_a_record_that_does_not_apply_is_skipped_and_its_segment_kept_aside(tmp_path, profile):
    engine = _engine(tmp_path, profile)
    _log(engine, 0, 10)
    segment = max((tmp_path / "state" / "journal").iterdir())
    with open(segment, "a") as out:
        out.write(
            json.dumps(
                {
                    "op": "log",
                    "model_version": 1,
                    "store_ids": [],
                    "medication_ids": [],
                    "rows": {"features": {}, "predictions": "!!", "event_times_ms": ""},
                }
            )
            + "\n"
        )
    _log(engine, 10, 10)
    again = _engine(tmp_path)
    assert len(again.predictions) == 20
    assert len(_corrupt(segment.parent, segment.name)) == 1


def test_a_corrupt_reference_file_is_set_aside_and_registered_again(tmp_path, profile):
    _engine(tmp_path, profile).close()
    (tmp_path / "references" / "v1.json").write_text('{"format": "rxcast.drift.profile/1", "rows": ')
    engine = _engine(tmp_path)
    assert len(_corrupt(tmp_path / "references", "v1.json")) == 1 and engine.versions() == []
    engine.register_reference(1, profile)
    assert _log(engine, 0, 5).accepted == 5


def test_pickled_state_of_an_earlier_release_is_set_aside_unread(tmp_path, profile):
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "state.pkl").write_bytes(pickle.dumps(Payload()))
    engine = _engine(tmp_path, profile)
    assert not marker.exists() and not (tmp_path / "state.pkl").exists()
    assert len(_corrupt(tmp_path, "state.pkl")) == 1
    assert _log(engine, 0, 5).accepted == 5


def test_episodes_with_a_format_old_files_read_and_corrupt_ones_set_aside(tmp_path):
    book = AlertBook(tmp_path, clean_windows=2)
    book.observe(1, DATA_DRIFT, {"a": "moved"})
    assert json.loads((tmp_path / "episodes.json").read_text())["format"] == "rxcast.drift.episodes/1"
    episodes = json.loads((tmp_path / "episodes.json").read_text())["episodes"]
    (tmp_path / "episodes.json").write_text(json.dumps(episodes))  # the shape before the format
    assert set(AlertBook(tmp_path, clean_windows=2).open_episodes(1, DATA_DRIFT)) == {"a"}
    (tmp_path / "episodes.json").write_text("{not json")
    with open(tmp_path / "alerts.jsonl", "a") as out:
        out.write('{"alert_id": 2, "unknown_field": 1}\n')
    again = AlertBook(tmp_path, clean_windows=2)
    assert again.open_episodes(1, DATA_DRIFT) == {} and len(_corrupt(tmp_path, "episodes.json")) == 1
    assert [a.alert_id for a in again.list()] == [1]


def test_no_pickle_in_the_drift_service():
    package = Path(detectors.__file__).parent
    for path in package.glob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, path.name


def test_a_monitor_saved_before_the_newest_losses_were_kept_still_loads():
    monitor = ErrorStreamMonitor(reference_errors=np.random.default_rng(1).normal(size=1000))
    monitor.update(_stream()[:2000])
    data = _json(monitor.to_dict())
    assert len(text_to_floats(data["recent"], "recent")) == 1000
    del data["recent"]
    restored = ErrorStreamMonitor.from_dict(data)
    assert restored.samples == monitor.samples and restored.state() == monitor.state()
