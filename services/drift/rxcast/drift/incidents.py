"""Incidents: one per cause, open while the cause lasts, for an operator to act on.

A cause is (model version, kind, feature group): the features of one family
(`prescriptions_1d` and `prescriptions_sum_28d` are both `prescriptions`)
drifting on one version are one cause, not one alert per window or feature.
A version's model line is the source that logs its predictions ("online",
"batch"; `record_line`), and lines are judged apart: the online alias is
refitted every day and takes a change into its reference as it ramps, while
the batch model, fitted weeks earlier and an older version, still shows it.
Windows feed the book what fired in them (`observe`):

- a cause that fires in `confirm_windows` consecutive judged windows opens
  an incident (one window of noise opens none; features the engine marks
  `minor`, drift just past its floors, extend an open incident of their
  family but start none), and every other family of
  the same kind firing in that window joins it (one event moves many
  features at once); a window in which a cause does not fire resets it;
- an open incident is updated by every window in which its cause fires (its
  features, the windows involved, the newest evidence), counts the windows
  in which it does not, and is resolved after `clean_windows` of them;
- `supersede` hands a version's open incidents to a newer version of its
  line when that one serves (`versions` records each): the cause belongs to
  the model line, not to one fit of it. A model retrained on a few days of a
  change still sees the change against its reference; the incident resolves
  when the newer version's windows no longer show it (`clean_windows` in a
  row), not by a new incident for the same cause on every retrained version.
  Causes not yet confirmed are handed over too (one window on the old
  version and one on the new confirm). A version is superseded once each of
  its lines has a newer one; its windows open no more drift incidents (data
  quality: they still do). A newer version of another line supersedes
  nothing. Broken data is the feed's, not a model's: a data-quality
  incident is one whichever line reads the column, and is handed to every
  newer version;
- `acknowledge` records who is handling it; acknowledged incidents still
  resolve on their own.

One cause, one incident, across kinds and families:

- prediction drift joins the data-drift incident it fires with (the outputs
  moved because the inputs did), or else an open data-quality incident
  (broken inputs moved them), and makes it critical; alone it is an
  incident of its own;
- a family drifting whose feature is already named by an open data-quality
  incident joins that incident (a unit change moves the distribution too);
- concept drift and a rise of the estimated error join an open drift,
  data-quality or error incident of the line whose data changed at most
  `follow_ms` before (the error rose because the inputs changed; the labels
  confirm the estimate); alone, or later, they are incidents of their own;
- input drift starting at most `follow_ms` after an open error incident of
  its line changed joins it (the inputs that explain the rise, seen in the
  other order: labels dated by the forecasts' day can confirm a rise before
  the second window of drift confirms the drift), and the incident keeps
  those families while it is open;
- a family that starts firing at most `follow_ms` after an open incident of
  its kind changed, in a window where that incident fires too, joins it:
  one event moves some features days after others (restocking follows
  dispensing by a lead time); so does one starting at most `follow_ms`
  after a segment's change against a year before opened an incident of its
  line (`yoy:` families, judged by day, rxcast.drift.seasonal): the
  windows see late what the year's history showed first.
A family that starts later than that is a cause of its own, even while an
open incident fires: an incident lasts for weeks (a new region's stores keep
drifting against references fitted before them), and a demand shock in that
time is another event, to be paged and retrained for on its own; so is a
rise of the error weeks after the drift it would otherwise join. Severity:
"critical" for data quality (broken data pages), concept drift, a rise of
the estimated error, and drift that reached the predictions; "warning" for
input drift the predictions have not shown.

Every change bumps the book's revision and stamps the incident with it;
`watch(after_revision)` streams incidents changed after it. The book is
rewritten whole to `incidents.json` (format INCIDENTS_FORMAT) at each change.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rxcast.drift.seasonal import YOY_PREFIX
from rxcast.drift.segments import SEGMENT_PREFIX
from rxcast.runtime.durable import quarantine, read_json, write_json
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.incidents")

DATA_DRIFT = "data_drift"
PREDICTION_DRIFT = "prediction_drift"
CONCEPT_DRIFT = "concept_drift"
DATA_QUALITY = "data_quality"
#: The error estimated from the inputs (before labels) rose beyond its band.
PERFORMANCE = "performance"
KINDS = (DATA_DRIFT, PREDICTION_DRIFT, CONCEPT_DRIFT, DATA_QUALITY, PERFORMANCE)
#: Kinds an open incident of another kind (or, for a rise of the error, of
#: other families) absorbs, and the kinds that absorb them: an effect of a
#: cause already open is evidence on it, not a new page.
_ABSORBED_BY = {
    DATA_DRIFT: (DATA_QUALITY, CONCEPT_DRIFT, PERFORMANCE),
    CONCEPT_DRIFT: (DATA_DRIFT, PREDICTION_DRIFT, DATA_QUALITY, PERFORMANCE, CONCEPT_DRIFT),
    PERFORMANCE: (DATA_DRIFT, PREDICTION_DRIFT, DATA_QUALITY, CONCEPT_DRIFT),
}
#: Kinds whose cause a retrained model can address (the trainer's triggers).
RETRAINING_KINDS = (DATA_DRIFT, PREDICTION_DRIFT, CONCEPT_DRIFT, PERFORMANCE)
OPEN, RESOLVED = "open", "resolved"
WARNING, CRITICAL = "warning", "critical"
INCIDENTS_FORMAT = "rxcast.drift.incidents/2"
#: Books before model lines: one line, versions superseded by number.
_INCIDENTS_FORMAT_1 = "rxcast.drift.incidents/1"
#: The line of versions logged without a source, and of books before lines.
DEFAULT_LINE = ""
#: The newest windows named on an incident.
MAX_WINDOWS = 50
#: How long after an incident's change a family starting to fire with it, or a
#: rise of the error, is that change's effect (event time): restocking follows
#: dispensing by days, a new region's stores keep drifting for weeks and a demand
#: shock in that time is news.
FOLLOW_MS = 14 * 86_400_000

#: A trailing window length ("_28d") and statistic ("_sum") name a feature's
#: aggregate, not its family.
_SUFFIX = re.compile(r"(_(sum|max|min|mean|std|days|count))?(_\d+[dhw])?$")


def feature_group(feature: str) -> str:
    """The family a feature belongs to: its name without aggregate suffixes."""
    return _SUFFIX.sub("", feature) or feature


@dataclasses.dataclass
class WindowRef:
    window_id: str
    start_ms: int
    end_ms: int


@dataclasses.dataclass
class Incident:
    incident_id: str
    kind: str
    model_version: int
    groups: list[str]
    features: list[str]
    status: str
    severity: str
    reason: str
    opened_ms: int
    updated_ms: int
    #: Event time of the first window's start: when the data changed.
    changed_ms: int
    #: Event time of the end of the window that opened it: when it was known.
    opened_data_ms: int
    revision: int
    windows: list[WindowRef] = dataclasses.field(default_factory=list)
    #: Per feature: the signals of the newest firing window and its histograms.
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    resolved_ms: int = 0
    resolution: str = ""
    acknowledged_by: str = ""
    acknowledged_ms: int = 0
    acknowledge_note: str = ""
    #: Windows in a row in which the cause did not fire.
    clean: int = 0
    retrain_job_id: str = ""
    #: The versions that carried it: the one it opened on, then each newer one it was handed to.
    versions: list[int] = dataclasses.field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def serving_version(self) -> int:
        """The newest version it was handed to."""
        return max(self.versions, default=self.model_version)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        fields = dict(data)
        fields["windows"] = [WindowRef(**w) for w in fields.get("windows", [])]
        return cls(**fields)


@dataclasses.dataclass
class Firing:
    """What one window says about one kind: the features that fired (with
    why and their evidence), or none (a clean window)."""

    reasons: dict[str, str]
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Features whose drift is too small to start an incident: they keep an
    #: open incident of their family open, and start nothing.
    minor: frozenset[str] = frozenset()


@dataclasses.dataclass
class _Candidate:
    """A cause that fired but is not an incident yet."""

    windows: int
    first: WindowRef


class IncidentBook:
    """Incidents, candidates and watchers (thread-safe); see the module docstring."""

    def __init__(
        self,
        directory: Path | None,
        confirm_windows: int = 2,
        clean_windows: int = 3,
        follow_ms: int = FOLLOW_MS,
    ):
        if confirm_windows < 1 or clean_windows < 1:
            raise InvalidArgument("incidents: confirm_windows and clean_windows must be >= 1")
        if follow_ms < 0:
            raise InvalidArgument("incidents: follow_ms must be >= 0")
        self.confirm_windows = confirm_windows
        self.clean_windows = clean_windows
        self.follow_ms = follow_ms
        self._cond = threading.Condition()
        self._closed = False
        self._path = None if directory is None else directory / "incidents.json"
        self._incidents: dict[str, Incident] = {}
        self._candidates: dict[tuple[int, str, str], _Candidate] = {}
        # Per version, the lines (sources) that logged it; per line, the newest version that served.
        self._lines: dict[int, frozenset[str]] = {}
        self._newest: dict[str, int] = {}
        self._revision = 0
        self._next = 1
        self._load()

    # ------------------------------------------------------------ observing

    def observe(
        self,
        model_version: int,
        kind: str,
        firing: Firing,
        window: WindowRef,
        now_ms: int,
        confirm_windows: int | None = None,
        judged: frozenset[str] | None = None,
    ) -> list[Incident]:
        """One judged window's outcome for a kind; the incidents it opened.
        `confirm_windows` overrides the book's (a concept-drift detection is
        confirmed by its detector already). `judged` names the families the
        window judged when it is not all of the kind's (the errors of some
        segments): an incident of none of them is neither hit nor clean."""
        if kind not in KINDS:
            raise InvalidArgument(f"incident kind {kind!r}: not one of {KINDS}")
        confirm = self.confirm_windows if confirm_windows is None else confirm_windows
        book_kind = _book_kind(kind)
        with self._cond:
            if self._superseded(model_version) and book_kind != DATA_QUALITY:
                return []  # the newer versions of its lines are judged instead
            fired_groups: dict[str, list[str]] = {}
            for feature in firing.reasons:
                fired_groups.setdefault(feature_group(feature), []).append(feature)
            changed = False
            line = [i for i in self._incidents.values() if i.is_open and self._covers(i, model_version)]
            claimed: set[str] = set()
            for incident in (i for i in line if _book_kind(i.kind) == book_kind):
                if judged is not None and not judged & set(incident.groups):
                    continue
                hit = [g for g in incident.groups if g in fired_groups]
                if "prediction" in fired_groups and "prediction" not in claimed and incident.kind == DATA_DRIFT:
                    hit = sorted({*hit, "prediction"})  # the outputs moved with the inputs
                if hit:
                    claimed.update(hit)
                    self._extend(incident, [f for g in hit for f in fired_groups[g]], firing, window, now_ms)
                else:
                    incident.clean += 1
                    if incident.clean >= self.clean_windows:
                        self._resolve(incident, now_ms, _clean_reason(incident))
                    else:
                        self._stamp(incident, now_ms)
                changed = True
            # Families whose features all drifted too little to start an incident count as not firing.
            starting = sorted(g for g, fs in fired_groups.items() if any(f not in firing.minor for f in fs))
            newest_first = sorted(line, key=lambda i: i.changed_ms, reverse=True)
            # A family starting to fire soon after an incident of its kind changed, in a window
            # where that incident fires too, is the same event's lagging effect: it joins the newest.
            for incident in newest_first:
                joining = [g for g in starting if g not in claimed]
                if (
                    joining
                    and _book_kind(incident.kind) == book_kind
                    and (incident.windows[-1].window_id == window.window_id or _is_yearly(incident))
                    and self._follows(incident, window)
                ):
                    claimed.update(joining)
                    self._extend(incident, [f for g in joining for f in fired_groups[g]], firing, window, now_ms)
                    changed = True
            for incident in newest_first:
                if incident.kind not in _ABSORBED_BY.get(book_kind, ()):
                    continue
                hit = [
                    g
                    for g in fired_groups
                    if g not in claimed and self._absorbs(incident, book_kind, g, g in starting, window)
                ]
                if hit:
                    claimed.update(hit)
                    self._extend(incident, [f for g in hit for f in fired_groups[g]], firing, window, now_ms)
                    changed = True
            for key in [
                k
                for k in self._candidates
                if k[:2] == (model_version, book_kind)
                and (judged is None or k[2] in judged)
                and (k[2] not in starting or k[2] in claimed)
            ]:
                del self._candidates[key]
                changed = True
            confirmed = []
            for group in starting:
                if group in claimed:
                    continue
                key = (model_version, book_kind, group)
                candidate = self._candidates.get(key)
                if candidate is None:
                    candidate = self._candidates[key] = _Candidate(0, window)
                candidate.windows += 1
                changed = True
                if candidate.windows >= confirm:
                    confirmed.append(group)
            opened = []
            if confirmed:
                # Every family firing with the confirmed ones joins them: one event moves many features.
                joining = [g for g in starting if g not in claimed]
                features = sorted(f for g in joining for f in fired_groups[g])
                first = min(
                    (self._candidates[(model_version, book_kind, g)].first for g in confirmed), key=lambda w: w.start_ms
                )
                for group in joining:
                    del self._candidates[(model_version, book_kind, group)]
                opened.append(self._open(model_version, kind, joining, features, firing, first, window, now_ms))
                changed = True
            if changed:
                self._save()
                self._cond.notify_all()
            return opened

    def _open(
        self,
        model_version: int,
        kind: str,
        groups: list[str],
        features: list[str],
        firing: Firing,
        first: WindowRef,
        window: WindowRef,
        now_ms: int,
    ) -> Incident:
        incident_id = f"inc-{self._next}"
        self._next += 1
        self._revision += 1
        only_prediction = all(g == "prediction" for g in groups)
        kind = PREDICTION_DRIFT if kind in (DATA_DRIFT, PREDICTION_DRIFT) and only_prediction else kind
        if kind == PREDICTION_DRIFT and not only_prediction:
            kind = DATA_DRIFT
        windows = [first] if first.window_id == window.window_id else [first, window]
        incident = Incident(
            incident_id=incident_id,
            kind=kind,
            model_version=model_version,
            groups=sorted(groups),
            features=features,
            status=OPEN,
            severity=WARNING,
            reason=_reason(firing, features),
            opened_ms=now_ms,
            updated_ms=now_ms,
            changed_ms=first.start_ms,
            opened_data_ms=window.end_ms,
            revision=self._revision,
            windows=windows,
            evidence={f: firing.evidence[f] for f in features if f in firing.evidence},
            versions=[model_version],
        )
        incident.severity = _severity(incident)
        self._incidents[incident_id] = incident
        log.warning(
            "incident opened",
            incident_id=incident_id,
            kind=kind,
            model_version=model_version,
            features=features,
            severity=incident.severity,
        )
        return dataclasses.replace(incident)

    def _extend(self, incident: Incident, features: list[str], firing: Firing, window: WindowRef, now_ms: int) -> None:
        incident.clean = 0
        incident.features = sorted(set(incident.features) | set(features))
        incident.groups = sorted(set(incident.groups) | {feature_group(f) for f in features})
        if not incident.windows or incident.windows[-1].window_id != window.window_id:
            incident.windows = [*incident.windows, window][-MAX_WINDOWS:]
        incident.evidence.update({f: firing.evidence[f] for f in features if f in firing.evidence})
        incident.reason = _reason(firing, features) or incident.reason
        incident.severity = _severity(incident)
        self._stamp(incident, now_ms)

    def _stamp(self, incident: Incident, now_ms: int) -> None:
        self._revision += 1
        incident.revision = self._revision
        incident.updated_ms = now_ms

    def _resolve(self, incident: Incident, now_ms: int, why: str) -> None:
        incident.status = RESOLVED
        incident.resolved_ms = now_ms
        incident.resolution = why
        self._stamp(incident, now_ms)
        log.info("incident resolved", incident_id=incident.incident_id, resolution=why)

    # ------------------------------------------------------------ operators and models

    def record_line(self, model_version: int, line: str) -> None:
        """A version's predictions were logged by `line` (their source)."""
        with self._cond:
            lines = self._lines.get(model_version, frozenset())
            if line in lines:
                return
            self._lines[model_version] = lines | {line}
            self._save()

    def serving(self, line: str) -> int:
        """The newest version of a line whose windows were judged (0: none yet)."""
        with self._cond:
            return self._newest.get(line, 0)

    def serving_lines(self) -> dict[str, int]:
        """Each line's newest version whose windows were judged."""
        with self._cond:
            return dict(self._newest)

    def line(self, model_version: int) -> str:
        """The one line a version's errors are judged on: the first of its lines
        (a version logged by both modes is judged once)."""
        return min(self.lines(model_version))

    def lines(self, model_version: int) -> frozenset[str]:
        """The lines that logged a version (the default line when none did)."""
        with self._cond:
            return self._lines_of(model_version)

    def supersede(self, model_version: int, registered_ms: int) -> list[Incident]:
        """A version registered at `registered_ms` serves: on each of its lines
        where it is the newest, hand it the open incidents of older versions
        of that line opened before it (they resolve when its windows no longer
        show the cause) and their causes not yet confirmed; a version whose
        every line has a newer one opens no more drift incidents. The
        incidents handed over (none when it is not newer on any line)."""
        with self._cond:
            newer = {line for line in self._lines_of(model_version) if self._newest.get(line, 0) < model_version}
            if not newer:
                return []
            self._newest.update(dict.fromkeys(newer, model_version))
            handed = []
            for incident in self._incidents.values():
                if (
                    incident.is_open
                    and model_version not in incident.versions
                    and incident.opened_ms <= registered_ms
                    and self._older_on(incident, newer, model_version)
                ):
                    incident.versions = [*(incident.versions or [incident.model_version]), model_version]
                    incident.clean = 0  # the newer version is judged afresh
                    self._stamp(incident, registered_ms)
                    handed.append(dataclasses.replace(incident))
                    log.info("incident handed over", incident_id=incident.incident_id, model_version=model_version)
            # A cause the older version saw once is the same cause on the newer one: it confirms there.
            for key in sorted(
                (
                    k
                    for k in self._candidates
                    if k[0] < model_version and (k[1] == DATA_QUALITY or self._lines_of(k[0]) & newer)
                ),
                reverse=True,
            ):
                candidate = self._candidates.pop(key)
                self._candidates.setdefault((model_version, *key[1:]), candidate)
            self._save()
            self._cond.notify_all()
            return handed

    def _absorbs(self, incident: Incident, book_kind: str, group: str, starting: bool, window: WindowRef) -> bool:
        """Whether an open incident of another kind takes a family that fired as `book_kind`:
        drift of a family its broken data names (or of the predictions) joins a
        data-quality incident; a rise of the error joins the drift or broken data
        that changed at most `follow_ms` before it, and drift starting at most
        `follow_ms` after a rise of the error on its line joins that rise (the
        inputs that explain it), whose families it keeps for as long as it is open."""
        if book_kind != DATA_DRIFT:
            return self._follows(incident, window)
        if incident.kind == DATA_QUALITY:
            return group in incident.groups or group == "prediction"
        return group in incident.groups or (starting and self._follows(incident, window))

    def _follows(self, incident: Incident, window: WindowRef) -> bool:
        """Whether a window starts within `follow_ms` of the change that opened the incident."""
        return window.start_ms - incident.changed_ms <= self.follow_ms

    def _lines_of(self, model_version: int) -> frozenset[str]:
        return self._lines.get(model_version) or frozenset({DEFAULT_LINE})

    def _superseded(self, model_version: int) -> bool:
        """Every line of the version has a newer version serving."""
        return all(self._newest.get(line, 0) > model_version for line in self._lines_of(model_version))

    def _serving_on(self, incident: Incident, line: str) -> int:
        """The newest version of a line that carries the incident (0: none)."""
        return max((v for v in incident.versions or [incident.model_version] if line in self._lines_of(v)), default=0)

    def _older_on(self, incident: Incident, lines: set[str], model_version: int) -> bool:
        """Whether the incident serves an older version on one of `lines`
        (broken data: on any line)."""
        if incident.kind == DATA_QUALITY:
            return incident.serving_version < model_version
        return any(0 < self._serving_on(incident, line) < model_version for line in lines)

    def _covers(self, incident: Incident, model_version: int) -> bool:
        """Whether a version's windows bear on the incident: a line of the
        version carries it on that version or a newer one. Broken data is
        the feed's, not a model's: every line that reads it bears on it."""
        if incident.kind == DATA_QUALITY:
            return model_version <= incident.serving_version
        return any(model_version <= self._serving_on(incident, line) for line in self._lines_of(model_version))

    def acknowledge(self, incident_id: str, by: str, note: str, now_ms: int) -> Incident:
        if not by.strip():
            raise InvalidArgument("acknowledged_by: say who is handling it")
        with self._cond:
            incident = self._incidents.get(incident_id)
            if incident is None:
                raise NotFound(f"incident {incident_id!r}: no such incident")
            if incident.acknowledged_by and incident.acknowledged_by != by:
                raise FailedPrecondition(f"incident {incident_id}: already acknowledged by {incident.acknowledged_by}")
            incident.acknowledged_by, incident.acknowledged_ms, incident.acknowledge_note = by, now_ms, note
            self._stamp(incident, now_ms)
            self._save()
            self._cond.notify_all()
            return dataclasses.replace(incident)

    def set_retrain_job(self, incident_id: str, job_id: str, now_ms: int) -> None:
        with self._cond:
            incident = self._incidents[incident_id]
            incident.retrain_job_id = job_id
            self._stamp(incident, now_ms)
            self._save()
            self._cond.notify_all()

    # ------------------------------------------------------------ reading

    def get(self, incident_id: str) -> Incident:
        with self._cond:
            incident = self._incidents.get(incident_id)
            if incident is None:
                raise NotFound(f"incident {incident_id!r}: no such incident")
            return dataclasses.replace(incident)

    def list(self, model_version: int = 0, open_only: bool = False, limit: int = 100) -> list[Incident]:
        """Newest first."""
        with self._cond:
            chosen = [
                dataclasses.replace(i)
                for i in sorted(self._incidents.values(), key=lambda i: _number(i.incident_id), reverse=True)
                if (not model_version or i.model_version == model_version) and (not open_only or i.is_open)
            ]
        return chosen[:limit]

    def watch(self, after_revision: int, active: Callable[[], bool], poll_seconds: float = 0.5) -> Iterator[Incident]:
        """Incidents changed after `after_revision` (-1: none of the past), each
        as of its latest change, then changes live while `active()` holds."""
        with self._cond:
            last = self._revision if after_revision < 0 else after_revision
        while True:
            with self._cond:
                pending = sorted(
                    (dataclasses.replace(i) for i in self._incidents.values() if i.revision > last),
                    key=lambda i: i.revision,
                )
                if not pending:
                    if self._closed or not active():
                        return
                    self._cond.wait(poll_seconds)
                    continue
            for incident in pending:
                yield incident
                last = incident.revision

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------ state

    def _save(self) -> None:
        if self._path is None:
            return
        write_json(
            self._path,
            {
                "format": INCIDENTS_FORMAT,
                "revision": self._revision,
                "next": self._next,
                "lines": {str(v): sorted(lines) for v, lines in self._lines.items()},
                "newest": self._newest,
                "incidents": [i.to_dict() for i in self._incidents.values()],
                "candidates": [
                    {"key": list(k), "windows": c.windows, "first": dataclasses.asdict(c.first)}
                    for k, c in self._candidates.items()
                ],
            },
        )

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            doc = read_json(self._path, None)
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            if found not in (INCIDENTS_FORMAT, _INCIDENTS_FORMAT_1):
                raise ValueError(f"format {found!r} is not {INCIDENTS_FORMAT!r}")
            incidents = {i.incident_id: i for i in map(Incident.from_dict, doc["incidents"])}
            candidates = {
                (int(c["key"][0]), str(c["key"][1]), str(c["key"][2])): _Candidate(
                    int(c["windows"]), WindowRef(**c["first"])
                )
                for c in doc["candidates"]
            }
            lines, newest = _model_lines(doc) if found == INCIDENTS_FORMAT else _one_line(doc)
            revision, next_id = int(doc["revision"]), int(doc["next"])
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            quarantine(self._path, f"unreadable: {exc}")
            return
        self._incidents, self._candidates, self._lines, self._newest = incidents, candidates, lines, newest
        self._revision, self._next = revision, next_id


def _model_lines(doc: Mapping[str, Any]) -> tuple[dict[int, frozenset[str]], dict[str, int]]:
    lines = {int(v): frozenset(map(str, names)) for v, names in doc["lines"].items()}
    return lines, {str(line): int(v) for line, v in doc["newest"].items()}


def _one_line(doc: Mapping[str, Any]) -> tuple[dict[int, frozenset[str]], dict[str, int]]:
    """A book of format 1 knew one line: its versions stay on the default
    line, the newest that superseded another serving it (a version logged
    again with a source joins that source's line)."""
    newest = max((int(n) for n in doc["superseded"].values()), default=0)
    return {}, ({DEFAULT_LINE: newest} if newest else {})


def _book_kind(kind: str) -> str:
    """Prediction drift and input drift are one kind in the book: the outputs move with the inputs."""
    return DATA_DRIFT if kind == PREDICTION_DRIFT else kind


def _is_yearly(incident: Incident) -> bool:
    """Whether an incident holds a segment's change against a year before: judged
    by day from the whole history, it is found before the windows' drift, which
    is its effect when it starts within `follow_ms` (in windows of their own)."""
    return any(g.startswith(YOY_PREFIX) for g in incident.groups)


def _clean_reason(incident: Incident) -> str:
    handed = (
        f" on model version {incident.serving_version}" if incident.serving_version != incident.model_version else ""
    )
    return f"{incident.clean} windows in a row without it{handed}"


#: Families that show the cause reached the model's outputs or its error (and a segment's errors).
_IMPACT_GROUPS = frozenset({"prediction", "errors", "estimated_error"})


def _severity(incident: Incident) -> str:
    if incident.kind in (DATA_QUALITY, CONCEPT_DRIFT, PERFORMANCE) or any(
        g in _IMPACT_GROUPS or g.startswith(SEGMENT_PREFIX) for g in incident.groups
    ):
        return CRITICAL
    return WARNING


def _reason(firing: Firing, features: list[str]) -> str:
    return "; ".join(
        f"{f}: {firing.reasons[f]}" if firing.reasons.get(f) else f for f in features if f in firing.reasons
    )


def _number(incident_id: str) -> int:
    tail = incident_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0
