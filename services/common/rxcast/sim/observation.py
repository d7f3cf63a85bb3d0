"""Reporting changes: the world stays as it is, what the app records changes.

unit_change scales one field, missing_values blanks one field at a rate,
constant_column pins one field to a value; each from its event's day on.
Each touched field is copied first (as float64 for numbers), so the arrays
the generator produced keep the true values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rxcast.runtime.errors import InvalidArgument
from rxcast.sim.scenario import CONSTANT_FALLBACK
from rxcast.sim.streams import Stream, stream

if TYPE_CHECKING:
    from rxcast.sim.generator import Plan

OBSERVATION_KINDS = ("unit_change", "missing_values", "constant_column")


def apply_observation_events(plan: Plan, fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The fields as reported (days × stores × medications), events applied in order."""
    observed = dict(fields)
    copied: set[str] = set()
    store_ids = plan.stores["store_id"].to_numpy()
    for event in plan.events:
        if event.kind not in OBSERVATION_KINDS:
            continue
        name = event.params["field"]
        if name not in copied:
            original = observed[name]
            observed[name] = original.copy() if original.dtype == bool else original.astype(np.float64)
            copied.add(name)
        later = observed[name][event.day :]
        if event.kind == "unit_change":
            stores = slice(None)
            if event.params["stores"]:
                unknown = sorted(set(event.params["stores"]) - set(store_ids))
                if unknown:
                    raise InvalidArgument(
                        f"scenario.events[{event.index}].params.stores: unknown store id(s) {', '.join(unknown)}"
                    )
                stores = np.isin(store_ids, event.params["stores"])
            later[:, stores, :] *= event.params["factor"]
        elif event.kind == "missing_values":
            rng = stream(plan.scenario.seed, Stream.OBSERVATION, 0, event.index)
            later[rng.random(later.shape, dtype=np.float32) < event.params["rate"]] = np.nan
        else:
            value = event.params["value"]
            later[...] = CONSTANT_FALLBACK[name] if value is None else value
    return observed
