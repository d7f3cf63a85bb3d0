"""Moving aliases: through the gate, by force, or back (rollback).

The gate compares a candidate with the alias's current version on the
candidate's holdout. A training job scores the champion on its holdout as it
evaluates, so its decision uses those numbers. Setting an alias later to a
version that was judged against another incumbent re-scores both versions on
the candidate's holdout days, loaded afresh from the training-set source.
"""

from __future__ import annotations

import dataclasses

from rxcast.model.timebase import day_number
from rxcast.runtime.errors import Aborted, FailedPrecondition
from rxcast.runtime.logs import get_logger
from rxcast.trainer import metrics
from rxcast.trainer.dataset import LoadRequest, TrainingSetSource
from rxcast.trainer.evaluation import BASELINE_FEATURE, Evaluation, champion_predictions, naive_baseline, score
from rxcast.trainer.gate import GateDecision, GatePolicy
from rxcast.trainer.registry import AliasChange, ModelRegistry, VersionInfo, alias_name

log = get_logger("rxcast.trainer.promotion")


@dataclasses.dataclass(frozen=True)
class Promotion:
    promoted: bool
    #: Why the gate refused, when it did.
    refusal: str = ""
    change: AliasChange | None = None


class AliasManager:
    def __init__(self, registry: ModelRegistry, gate: GatePolicy, source: TrainingSetSource, num_threads: int = 2):
        self.registry = registry
        self.gate = gate
        self.source = source
        self.num_threads = num_threads

    def promote_evaluated(
        self, alias: str, version: int, evaluation: Evaluation, reason: str, margin: float | None = None
    ) -> Promotion:
        """Gate a freshly trained version on its own evaluation (at `margin`, else the gate's own)."""
        alias = alias_name(alias)
        current = self.registry.alias(alias)
        incumbent = current.version if current else 0
        if incumbent != evaluation.champion_version:
            return self._refused(
                f"alias {alias!r} moved to v{incumbent} while v{version} was judged against "
                f"v{evaluation.champion_version}; not promoted"
            )
        gate = self.gate if margin is None else dataclasses.replace(self.gate, margin=margin)
        decision = gate.decide(
            version, evaluation.model, evaluation.baseline, incumbent, evaluation.champion, evaluation.champion_note
        )
        return self._apply(alias, version, incumbent, decision, reason)

    def set_alias(self, alias: str, version: int, force: bool, reason: str) -> AliasChange:
        """Point an alias at a version: forced, or if the gate lets it.

        FailedPrecondition with the gate's reason when it refuses.
        """
        alias = alias_name(alias)
        candidate = self.registry.get(version)
        current = self.registry.alias(alias)
        incumbent = current.version if current else 0
        if incumbent == version:
            raise FailedPrecondition(f"alias {alias!r} already points at v{version}")
        if force:
            change = self.registry.move_alias(alias, version, "force", reason or "forced", expected_from=incumbent)
            metrics.ALIAS_MOVES.labels(alias, "force").inc()
            return change
        outcome = self._apply(alias, version, incumbent, self.judge(candidate, incumbent), reason)
        if not outcome.promoted:
            raise FailedPrecondition(f"gate refused: {outcome.refusal}")
        assert outcome.change is not None
        return outcome.change

    def rollback(self, alias: str, to_version: int, reason: str) -> AliasChange:
        """Move an alias back, by default to where it pointed before its last move."""
        alias = alias_name(alias)
        current = self.registry.alias(alias)
        if current is None:
            raise FailedPrecondition(f"alias {alias!r} has never moved: nothing to roll back")
        target = to_version or self.registry.previous_version(alias)
        self.registry.get(target)
        if target == current.version:
            raise FailedPrecondition(f"alias {alias!r} already points at v{target}")
        change = self.registry.move_alias(
            alias, target, "rollback", reason or "rollback", expected_from=current.version
        )
        metrics.ALIAS_MOVES.labels(alias, "rollback").inc()
        return change

    def judge(self, candidate: VersionInfo, incumbent: int) -> GateDecision:
        """The gate's decision for `candidate` against version `incumbent` (0: none)."""
        recorded = candidate.manifest.metrics
        if not recorded.get("model"):
            return GateDecision(False, f"v{candidate.version} has no recorded evaluation")
        evaluation = Evaluation.from_dict(recorded)
        if incumbent == 0 or (evaluation.champion_version == incumbent and evaluation.champion is not None):
            champion = evaluation.champion if incumbent else None
            return self.gate.decide(candidate.version, evaluation.model, evaluation.baseline, incumbent, champion)
        return self._rescore(candidate, incumbent)

    def _rescore(self, candidate: VersionInfo, incumbent: int) -> GateDecision:
        """Score both versions on the candidate's holdout days, loaded again."""
        window = candidate.manifest.holdout_window
        try:
            start, end = day_number(window["start_day"], "holdout"), day_number(window["end_day"], "holdout")
        except KeyError:
            return GateDecision(False, f"v{candidate.version} records no holdout window")
        challenger = self.registry.load_bundle(candidate.version)
        champion = self.registry.load_bundle(incumbent)
        extra = (BASELINE_FEATURE, *challenger.manifest.feature_names, *champion.manifest.feature_names)
        holdout = self.source.load(
            LoadRequest(start, end, extra, challenger.manifest.horizon_days), lambda loaded, total: None
        )
        log.info("gate_rescoring", candidate=candidate.version, incumbent=incumbent, rows=holdout.rows)
        try:
            new = score(holdout.labels, champion_predictions(challenger, holdout, self.num_threads))
            old = score(holdout.labels, champion_predictions(champion, holdout, self.num_threads))
        except FailedPrecondition as exc:
            return GateDecision(False, f"v{candidate.version} cannot be compared with v{incumbent}: {exc.message}")
        baseline = score(holdout.labels, naive_baseline(holdout.columns, holdout.horizon_days))
        return self.gate.decide(candidate.version, new, baseline, incumbent, old)

    def _apply(self, alias: str, version: int, incumbent: int, decision: GateDecision, reason: str) -> Promotion:
        if not decision.passed:
            metrics.GATE_DECISIONS.labels("refused").inc()
            return self._refused(decision.reason, count=False)
        metrics.GATE_DECISIONS.labels("passed").inc()
        why = f"{reason}: {decision.reason}" if reason else decision.reason
        try:
            change = self.registry.move_alias(alias, version, "gate", why, expected_from=incumbent)
        except Aborted as exc:
            return Promotion(False, exc.message)
        metrics.ALIAS_MOVES.labels(alias, "gate").inc()
        return Promotion(True, change=change)

    @staticmethod
    def _refused(reason: str, count: bool = True) -> Promotion:
        if count:
            metrics.GATE_DECISIONS.labels("refused").inc()
        return Promotion(False, reason)
