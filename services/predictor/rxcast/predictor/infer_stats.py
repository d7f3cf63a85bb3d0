"""Inference counters per model version, for the Open Inference Protocol's
ModelStatistics.

A request adds to its version's counters on the thread that serves it. Each
thread adds to a cell of its own, so the hot path takes no lock and no two
threads ever write the same integer; a read sums the cells. A read that races
a write may see one request half-counted (its count but not yet its time),
which cumulative statistics can bear.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

# Positions in a cell.
_SUCCESS, _SUCCESS_NS, _FAIL, _FAIL_NS, _INPUT_NS, _INFER_NS, _OUTPUT_NS, _ROWS, _LAST_MS = range(9)
_FIELDS = 9


@dataclass(frozen=True)
class Duration:
    """How often something happened and the nanoseconds it took, summed."""

    count: int = 0
    ns: int = 0


@dataclass(frozen=True)
class VersionStatistics:
    """One model version's counters at one instant."""

    version: int
    #: When the version last answered a request (ms since the epoch); 0 if never.
    last_inference_ms: int
    #: Rows forecast by successful requests.
    inference_count: int
    #: Successful model executions (one per successful request: requests are not batched together).
    execution_count: int
    #: Successful requests, from arrival to answer.
    success: Duration
    #: Failed requests, from arrival to failure.
    fail: Duration
    #: From arrival to the model's input matrix (decoding, checks, encoding).
    compute_input: Duration
    #: The model's predictions.
    compute_infer: Duration
    #: From the predictions to the answer's output arrays.
    compute_output: Duration


class VersionCounters:
    """The counters of one model version."""

    __slots__ = ("_cells", "_local", "_lock", "version")

    def __init__(self, version: int):
        self.version = version
        self._local = threading.local()
        self._cells: list[list[int]] = []
        self._lock = threading.Lock()  # taken once per thread, when its cell is made

    def _cell(self) -> list[int]:
        try:
            return self._local.cell
        except AttributeError:
            cell = [0] * _FIELDS
            with self._lock:
                self._cells.append(cell)
            self._local.cell = cell
            return cell

    def success(self, rows: int, received_ns: int, input_ns: int, infer_ns: int, done_ns: int) -> None:
        """One request answered: arrival, input ready, predictions done and
        answer ready, as time.perf_counter_ns() readings."""
        cell = self._cell()
        cell[_SUCCESS] += 1
        cell[_SUCCESS_NS] += done_ns - received_ns
        cell[_INPUT_NS] += input_ns - received_ns
        cell[_INFER_NS] += infer_ns - input_ns
        cell[_OUTPUT_NS] += done_ns - infer_ns
        cell[_ROWS] += rows
        cell[_LAST_MS] = time.time_ns() // 1_000_000

    def failure(self, received_ns: int, failed_ns: int) -> None:
        """One request failed, arrived and failed at these perf_counter_ns() readings."""
        cell = self._cell()
        cell[_FAIL] += 1
        cell[_FAIL_NS] += failed_ns - received_ns
        cell[_LAST_MS] = time.time_ns() // 1_000_000

    def snapshot(self) -> VersionStatistics:
        with self._lock:
            cells = [list(cell) for cell in self._cells]
        total = [sum(cell[i] for cell in cells) for i in range(_FIELDS)]
        successes = total[_SUCCESS]
        return VersionStatistics(
            version=self.version,
            last_inference_ms=max((cell[_LAST_MS] for cell in cells), default=0),
            inference_count=total[_ROWS],
            execution_count=successes,
            success=Duration(successes, total[_SUCCESS_NS]),
            fail=Duration(total[_FAIL], total[_FAIL_NS]),
            compute_input=Duration(successes, total[_INPUT_NS]),
            compute_infer=Duration(successes, total[_INFER_NS]),
            compute_output=Duration(successes, total[_OUTPUT_NS]),
        )


class StatisticsBook:
    """Counters for the versions this process has served, the newest `keep`."""

    def __init__(self, keep: int = 16):
        self._keep = keep
        self._versions: OrderedDict[int, VersionCounters] = OrderedDict()
        self._lock = threading.Lock()

    def counters(self, version: int) -> VersionCounters:
        """The version's counters, made on its first request."""
        counters = self._versions.get(version)
        if counters is None:
            with self._lock:
                counters = self._versions.get(version)
                if counters is None:
                    counters = self._versions[version] = VersionCounters(version)
                    while len(self._versions) > self._keep:
                        self._versions.popitem(last=False)
        return counters

    def versions(self) -> list[int]:
        with self._lock:
            return list(self._versions)
