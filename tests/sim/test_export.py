"""Records as clients send them: plain columns and InventoryRecord protos."""

from __future__ import annotations

import math

from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.sim import DriftEvent, Scenario, simulate
from rxcast.sim.export import record_columns, record_dicts


def test_a_day_of_records_becomes_inventory_record_protos_with_gaps_unset():
    world = simulate(
        Scenario(
            n_stores=2, n_medications=3, n_days=20, seed=4, events=(DriftEvent("missing_values", 10, {"rate": 0.5}),)
        )
    )
    day = world.records_for_day(15)
    columns = record_columns(day)
    assert columns["business_day"] == ["2025-01-16"] * 6
    assert all(type(v) is str for v in columns["store_id"])
    gaps = [math.isnan(v) for v in columns["prescriptions_written"]]
    assert any(gaps) and not all(gaps)
    protos = [pb.InventoryRecord(**d) for d in record_dicts(day)]
    assert [p.HasField("prescriptions_written") for p in protos] == [not g for g in gaps]
    first = day.iloc[0]
    assert (protos[0].store_id, protos[0].medication_id, protos[0].business_day) == (
        first["store_id"],
        first["medication_id"],
        "2025-01-16",
    )
    assert protos[0].units_on_hand == first["units_on_hand"] and protos[0].stock_out == first["stock_out"]
    assert (
        protos[0].medication_category == first["medication_category"]
        and protos[0].store_region == first["store_region"]
    )
