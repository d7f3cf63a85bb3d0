"""bench/peers.py: its accounting and table, its transport, and a quick end-to-end run
without peer virtualenvs, plaintext (the default) and with --tls."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "bench"))  # the benchmarks are scripts, not a package

from peers_measure import (
    Measured,
    percentile,
    process_tree,
    stat_cpu_seconds,
    status_rss_bytes,
    table,
    tree_cpu_seconds,
    tree_rss_bytes,
)

# A parent that starts a child, which burns CPU and holds memory until told to stop on stdin.
BURNER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", '''
import sys, time
ballast = bytearray(200 * 2**20)
ballast[::4096] = b"x" * len(ballast[::4096])
stop = time.process_time() + float(sys.argv[1])
while time.process_time() < stop:
    pass
print("done", flush=True)
sys.stdin.read()
''', sys.argv[1]], stdin=subprocess.PIPE, stdout=sys.stdout)
sys.stdin.read()
child.stdin.close()
child.wait()
"""


def test_stat_cpu_seconds_reads_own_and_reaped_children_time_past_a_command_name_with_spaces_and_parentheses():
    fields = ["S", *["0"] * 10, "250", "150", "70", "30", "20", *["0"] * 30]
    line = "4242 (odd) name (x)) " + " ".join(fields)
    assert stat_cpu_seconds(line, ticks=100) == pytest.approx(5.0)


def test_status_rss_bytes_reads_vmrss_and_a_zombie_has_none():
    assert status_rss_bytes("Name:\tx\nVmRSS:\t  2048 kB\nThreads:\t1\n") == 2048 * 1024
    assert status_rss_bytes("Name:\tx\nState:\tZ (zombie)\n") == 0


def test_a_process_tree_is_charged_for_the_cpu_and_memory_of_its_grandchildren():
    parent = subprocess.Popen(
        [sys.executable, "-c", BURNER, "0.6"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        before = tree_cpu_seconds(parent.pid)
        assert parent.stdout.readline().strip() == "done"
        spent = tree_cpu_seconds(parent.pid) - before
        assert 0.5 <= spent < 5.0
        assert tree_rss_bytes(parent.pid) > 200 * 2**20
        own = stat_cpu_seconds(Path(f"/proc/{parent.pid}/stat").read_text())
        assert own < 0.5 < spent  # the work was the grandchild's, found through /proc/<pid>/task/*/children
    finally:
        parent.stdin.close()
        parent.wait(10)


def test_a_worker_that_exited_and_was_reaped_still_counts():
    code = (
        "import subprocess, sys; "
        "subprocess.run([sys.executable, '-c', 'import time\\nt = time.process_time() + 0.5\\n"
        "while time.process_time() < t: pass'], check=True); "
        "print('reaped', flush=True); sys.stdin.read()"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "reaped"
        assert process_tree(parent.pid) == [parent.pid]
        assert tree_cpu_seconds(parent.pid) >= 0.5
    finally:
        parent.stdin.close()
        parent.wait(10)


def test_a_gone_process_costs_nothing():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert tree_cpu_seconds(gone.pid) == 0.0
    assert tree_rss_bytes(gone.pid) == 0


def test_percentile_is_the_nearest_rank():
    samples = [float(v) for v in range(100, 0, -1)]
    assert (percentile(samples, 0.5), percentile(samples, 0.99), percentile(samples, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([3.0], 0.99) == 3.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_table_shows_ratios_against_the_baseline_of_the_same_size():
    rows = [
        Measured("peer", 1, rate=500.0, p50_ms=2.0, p99_ms=9.0, cpu_per_1000=None, rss_mb=None),
        Measured("rxcast", 1, rate=1000.0, p50_ms=1.0, p99_ms=3.0, cpu_per_1000=0.4, rss_mb=150.0),
        Measured("rxcast", 100, rate=250.0, p50_ms=4.0, p99_ms=8.0, cpu_per_1000=1.0, rss_mb=150.0),
        Measured("peer", 100, rate=1000.0, p50_ms=2.0, p99_ms=5.0, cpu_per_1000=1.5, rss_mb=90.0),
    ]
    lines = table(rows, baseline="rxcast", unit="rows").splitlines()
    assert lines[0].split() == [
        "rows", "target", "calls/s", "p50", "ms", "p99", "ms", "CPU", "s/1k", "RSS", "MB",
        "rate", "vs", "rxcast", "p50", "vs", "rxcast", "CPU", "vs", "rxcast",
    ]  # fmt: skip
    cells = {(line.split()[0], line.split()[1]): line.split()[2:] for line in lines[2:]}
    assert cells["1", "rxcast"] == ["1,000", "1.000", "3.000", "0.400", "150", "1.00x", "1.00x", "1.00x"]
    assert cells["1", "peer"] == ["500", "2.000", "9.000", "0.50x", "2.00x"]  # no CPU or RSS: blank, no ratio
    assert cells["100", "peer"] == ["1,000", "2.000", "5.000", "1.500", "90", "4.00x", "0.50x", "1.50x"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "1", "100", "100"]


def test_the_transport_is_said_outright_to_every_rxcast_service_and_helper(tmp_path):
    from peers import Transport

    plaintext = Transport.make(False, tmp_path)
    assert plaintext.server_args() == ["--plaintext", "true"]
    assert plaintext.environment() == {"RXCAST_CLIENT_PLAINTEXT": "true"}
    assert plaintext.caller().plaintext and plaintext.client_files() is None
    assert "plaintext" in plaintext.label

    secure = Transport.make(True, tmp_path)
    assert secure.server_args() == ["--plaintext", "false", "--tls-dir", str(tmp_path / "certs")]
    assert secure.environment()["RXCAST_CLIENT_PLAINTEXT"] == "false"
    caller = secure.caller()
    assert (caller.identity, caller.plaintext, bool(caller.token)) == ("reader", False, True)
    files = secure.client_files()
    assert files["token"] == caller.token and all(Path(files[k]).is_file() for k in ("ca", "cert", "key"))
    assert "mTLS + roles" in secure.label


def test_a_helper_started_after_a_stopped_one_of_its_name_answers_at_its_own_port(tmp_path):
    # peers.py stops the predictor's feature stand-in, then starts the lookups' floor in
    # the same work dir: the floor must not be read off the first one's ready file.
    import grpc
    from predictor import Helper

    plaintext = {"RXCAST_CLIENT_PLAINTEXT": "true"}
    first = Helper(tmp_path, "echo", env=plaintext)
    gone = first.address()
    first.stop()
    second = Helper(tmp_path, "echo", env=plaintext)
    try:
        address = second.address()
        assert address != gone
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
    finally:
        second.stop()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize(("flags", "mode"), [((), "rxcast plaintext"), (("--tls",), "rxcast mTLS + roles")])
def test_the_quick_run_of_rxcast_and_the_echo_prints_both_at_both_sizes(flags, mode):
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "peers.py"), "--quick", "--only", "rxcast,echo", *flags],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {
        (line.split()[0], line.split()[1]): line.split()[2:]
        for line in run.stdout.splitlines()
        if line.split()[:1] in (["1"], ["100"])
    }
    assert set(rows) == {("1", "rxcast"), ("1", "echo"), ("100", "rxcast"), ("100", "echo")}, run.stdout
    for (_, target), cells in rows.items():
        rate, p50, p99, cpu, rss = (float(c.replace(",", "")) for c in cells[:5])
        assert rate > 0 and 0 < p50 <= p99 and cpu > 0 and rss > 10, run.stdout
        assert len(cells) == 8 and all(c.endswith("x") for c in cells[5:]), run.stdout
        if target == "rxcast":
            assert cells[5:] == ["1.00x"] * 3, run.stdout
    assert "mlserver" not in run.stdout and "Feast" not in run.stdout, run.stdout
    assert any(line.startswith(f"ModelInfer [{mode}") for line in run.stdout.splitlines()), run.stdout
    print(f"quick run {' '.join(flags)} took {time.monotonic() - started:.0f} s")


def test_the_aims_are_read_off_the_one_row_measurements():
    from peers import against_aims

    rows = [
        Measured("rxcast", 1, rate=1500.0, p50_ms=0.6, p99_ms=4.0, cpu_per_1000=0.45, rss_mb=170.0),
        Measured("echo", 1, rate=3000.0, p50_ms=0.4, p99_ms=1.0, cpu_per_1000=0.30, rss_mb=40.0),
        Measured("mlserver-best", 1, rate=1000.0, p50_ms=0.8, p99_ms=7.0, cpu_per_1000=0.65, rss_mb=155.0),
        Measured("mlserver-best", 100, rate=10.0, p50_ms=9.0, p99_ms=9.0, cpu_per_1000=9.0, rss_mb=155.0),
    ]
    assert against_aims(rows) == [
        "aim: rxcast 1-row calls/s >= 1.5x mlserver-best's: 1.50x",
        "aim: rxcast server CPU per call <= 1.5x the echo's: 1.50x",
    ]
    assert against_aims(rows[:2]) == ["aim: rxcast server CPU per call <= 1.5x the echo's: 1.50x"]


def test_the_lookup_aims_are_read_against_feast_in_process_beside_the_bare_floor():
    from peers_features import FLOOR, against_aims

    def row(target: str, size: int, p50: float) -> Measured:
        return Measured(target, size, rate=1.0, p50_ms=p50, p99_ms=p50, cpu_per_1000=1.0, rss_mb=None)

    rows = [
        row("rxcast", 1, 1.5),
        row("Feast in-process", 1, 0.75),
        row(FLOOR, 1, 0.6),
        row("rxcast", 100, 2.0),
        row("Feast in-process", 100, 25.0),
    ]
    assert against_aims(rows) == [
        f"aim: rxcast 1-key p50 <= 1.0x Feast in-process's: 2.00x (the {FLOOR}: 0.80x)",
        "aim: rxcast 100-key p50 <= 0.3x Feast in-process's: 0.08x",
    ]
    assert against_aims([r for r in rows if r.target != "Feast in-process"]) == []
