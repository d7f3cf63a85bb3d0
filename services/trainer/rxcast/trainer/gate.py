"""The promotion gate: when may a version take over an alias.

A candidate takes over if it beats the alias's current version on the same
holdout by a relative margin on the configured metric (lower is better):
candidate <= incumbent * (1 - margin). An alias that points nowhere yet is
taken by a candidate that beats the naive baseline. A candidate that cannot
be compared (no metrics of the incumbent on its holdout) is refused; forcing
is the way past the gate.
"""

from __future__ import annotations

import dataclasses

from rxcast.runtime.errors import InvalidArgument
from rxcast.trainer.evaluation import METRIC_NAMES, Metrics


@dataclasses.dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class GatePolicy:
    metric: str = "wape"
    margin: float = 0.02

    def __post_init__(self) -> None:
        if self.metric not in METRIC_NAMES:
            raise InvalidArgument(f"gate metric: must be one of {', '.join(METRIC_NAMES)}, got {self.metric!r}")
        if not 0.0 <= self.margin < 1.0:
            raise InvalidArgument(f"gate margin: must be in [0, 1), got {self.margin!r}")

    def decide(
        self,
        candidate_version: int,
        candidate: Metrics,
        baseline: Metrics,
        incumbent_version: int,
        incumbent: Metrics | None,
        incumbent_note: str = "",
    ) -> GateDecision:
        m = self.metric
        new = candidate.get(m)
        if incumbent_version == 0:
            if new < baseline.get(m):
                return GateDecision(
                    True, f"v{candidate_version} {m} {new:.4f} beats the naive baseline's {baseline.get(m):.4f}"
                )
            return GateDecision(
                False, f"v{candidate_version} {m} {new:.4f} does not beat the naive baseline's {baseline.get(m):.4f}"
            )
        if incumbent is None:
            note = f": {incumbent_note}" if incumbent_note else ""
            return GateDecision(False, f"v{candidate_version} cannot be compared with v{incumbent_version}{note}")
        old = incumbent.get(m)
        bar = old * (1.0 - self.margin)
        verdict = "beats" if new <= bar else "does not beat"
        return GateDecision(
            new <= bar,
            f"v{candidate_version} {m} {new:.4f} {verdict} v{incumbent_version}'s {old:.4f} "
            f"by the {self.margin:.1%} margin (needs <= {bar:.4f})",
        )
