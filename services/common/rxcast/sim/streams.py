"""Independent, named random streams.

Every random quantity comes from its own stream, keyed by what it is for and by
which entities it covers (e.g. "the demand noise of the base stores' second
chunk of base medications"). Adding an event therefore never shifts the draws
of anything else, and because draws run day by day within a stream, changing a
quantity from some day on leaves every earlier draw as it was.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    STORES = 1
    MEDICATIONS = 2
    REGION_SEASON = 3
    PRICE = 4
    PROMOTION = 5
    STORE_NOISE = 6
    ENTITY_EFFECT = 7
    NEED_NOISE = 8
    DECOUPLED_NOISE = 9
    PRESCRIPTIONS = 10
    DECOUPLED_PRESCRIPTIONS = 11
    FILLS = 12
    WALK_IN = 13
    SUPPLY = 14
    OBSERVATION = 15


def stream(seed: int, kind: Stream, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(kind), *map(int, key))))
