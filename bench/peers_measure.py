"""What bench/peers.py measures and how it prints it; standard library only,
so the tritonclient process (its own virtualenv) and rxcast's share it.

Server cost is read from /proc: CPU seconds (user + system) and resident
memory of a server's whole process tree, so a server that hands requests to
worker processes (MLServer's parallel_workers) is charged for them too, and
for workers it has already reaped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu_seconds(stat: str, ticks: int = TICKS) -> float:
    """CPU seconds of one /proc/<pid>/stat line: its own (utime + stime) and
    that of its children which exited and were waited for (cutime + cstime),
    so a server that recycles worker processes (feast serve's gunicorn) keeps
    its workers' cost. The command name (field 2) may hold spaces and
    parentheses, so fields count from the last ')'."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(field) for field in fields[11:15]) / ticks


def status_rss_bytes(status: str) -> int:
    """VmRSS of one /proc/<pid>/status text (absent for a zombie: 0)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds spent so far by `pid`'s live process tree."""
    return sum(stat_cpu_seconds(text) for text in map(_read, (f"/proc/{p}/stat" for p in process_tree(pid))) if text)


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of `pid`'s process tree (pages shared between them count once per process)."""
    return sum(status_rss_bytes(_read(f"/proc/{p}/status")) for p in process_tree(pid))


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of `samples`."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class Measured:
    """One target at one request size, over all rounds of one run."""

    target: str
    size: int
    rate: float  # calls/s, median over rounds
    p50_ms: float
    p99_ms: float
    cpu_per_1000: float | None  # server CPU seconds per 1,000 calls
    rss_mb: float | None


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    return f"{value / base:.2f}x"


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def table(measured: Iterable[Measured], baseline: str, unit: str) -> str:
    """The measurements as an aligned text table; each row also shows its rate,
    p50 and CPU as ratios against `baseline`'s row of the same size."""
    rows = list(measured)
    base = {m.size: m for m in rows if m.target == baseline}
    header = (
        unit,
        "target",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "CPU s/1k",
        "RSS MB",
        f"rate vs {baseline}",
        f"p50 vs {baseline}",
        f"CPU vs {baseline}",
    )
    lines = [header]
    for m in sorted(rows, key=lambda m: m.size):
        b = base.get(m.size)
        lines.append(
            (
                str(m.size),
                m.target,
                _number(m.rate, 0),
                _number(m.p50_ms, 3),
                _number(m.p99_ms, 3),
                _number(m.cpu_per_1000, 3),
                _number(m.rss_mb, 0),
                _ratio(m.rate, b and b.rate),
                _ratio(m.p50_ms, b and b.p50_ms),
                _ratio(m.cpu_per_1000, b and b.cpu_per_1000),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    lines.insert(1, tuple("-" * w for w in widths))
    return "\n".join(
        "  ".join(cell.rjust(w) if i >= 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
        for line in lines
    )
