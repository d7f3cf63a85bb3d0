"""Refreshing the Feast registry while its file is being rewritten.

Feast's file registry rewrites registry.db in place (truncate, then write), on
every Materialize among others. A refresh that read it then saw no feature
views, and every call naming a view failed NOT_FOUND ("known: []") until the
next refresh.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from rxcast.feature.config import FeatureConfig
from rxcast.feature.store import InventoryFeatureStore
from tests.feature.records import day_end_ms, world

VIEW = "inventory_daily"


@pytest.fixture
def store(tmp_path):
    opened = InventoryFeatureStore.open(FeatureConfig(data_dir=str(tmp_path / "data")))
    yield opened
    opened.close()


def _registry_file(store: InventoryFeatureStore):
    return store.data_dir / "registry.db"


def test_refreshes_during_materialize_always_see_the_views(store):
    assert store.ingest(world(2, 3, 30, seed=5)).accepted == 180
    failures: list[BaseException] = []
    done = threading.Event()

    def refresh_and_read() -> None:
        while not done.is_set():
            try:
                store.refresh_registry()
                store.catalog.view(VIEW)
            except BaseException as exc:  # noqa: BLE001 - the test reports whatever the refresh raised
                failures.append(exc)
                return

    reader = threading.Thread(target=refresh_and_read)
    reader.start()
    try:
        for day in range(1, 30):
            start = datetime.fromtimestamp(day_end_ms(day - 1) / 1000, UTC)
            end = datetime.fromtimestamp(day_end_ms(day) / 1000, UTC)
            store.materialize(start, end, [VIEW])
    finally:
        done.set()
        reader.join(timeout=30)
    assert not failures, failures[:1]
    assert store.catalog.view(VIEW).name == VIEW


def test_a_registry_caught_mid_write_is_read_again(store):
    path = _registry_file(store)
    whole = path.read_bytes()
    path.write_bytes(b"")  # as Feast leaves it between truncating and writing
    writer = threading.Timer(0.08, path.write_bytes, args=(whole,))
    writer.start()
    try:
        store.refresh_registry()
    finally:
        writer.join()
    assert store.catalog.view(VIEW).name == VIEW
    # Feast's own cache holds the whole registry again, not the empty read.
    assert VIEW in {v.name for v in store.feast.list_feature_views(allow_cache=True)}


def test_a_registry_that_stays_torn_keeps_the_views_resolved_before(store):
    path = _registry_file(store)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 3])  # cut short: does not parse, or parses without views
    assert store.refresh_registry() is False
    assert store.catalog.view(VIEW).name == VIEW
    path.write_bytes(whole)
    store.refresh_registry()
    assert VIEW in {v.name for v in store.feast.list_feature_views(allow_cache=True)}
    assert store.catalog.view(VIEW).name == VIEW
