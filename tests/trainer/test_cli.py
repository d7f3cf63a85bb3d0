"""The command-line client against a real trainer: train with a progress bar,
list, promote, roll back and download."""

from __future__ import annotations

import re
import subprocess
import sys

from rxcast.model import ModelBundle


def cli(trainer, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rxcast.trainer.cli", "--address", trainer.address, *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )


def published(output: str) -> int:
    return int(re.search(r"published v(\d+)", output).group(1))


def test_train_follow_then_manage_versions(trainer, tmp_path):
    done = cli(
        trainer, "train", "--window", "2025-01-01:2025-04-20", "--reason", "cli", "--promote", "--follow",
        "--param", "num_boost_round=25", "--param", "lambda_l2=1.0", "--alias", "cli",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout and "naive baseline" in done.stdout and "promoted to cli" in done.stdout
    assert "25/25" in done.stderr  # the progress bar reached the last round
    version = published(done.stdout)

    listed = cli(trainer, "versions")
    assert listed.returncode == 0 and f"{version:>7}" in listed.stdout and "cli" in listed.stdout
    latest = cli(trainer, "latest", "--alias", "cli")
    assert latest.stdout.startswith(f"cli -> v{version} ")

    second = cli(trainer, "train", "--window", "2025-01-01:2025-04-20", "--param", "num_boost_round=3", "--follow")
    assert second.returncode == 0, second.stderr
    other = published(second.stdout)
    forced = cli(trainer, "alias", str(other), "--alias", "cli", "--force", "--reason", "try it")
    assert forced.returncode == 0 and f"v{version} -> v{other} (force) try it" in forced.stdout
    back = cli(trainer, "rollback", "--alias", "cli", "--reason", "worse")
    assert back.returncode == 0 and f"v{other} -> v{version} (rollback) worse" in back.stdout
    history = cli(trainer, "history", "--alias", "cli").stdout.splitlines()
    assert [line.split("(")[1].split(")")[0] for line in history] == ["rollback", "force", "gate"]

    fetched = cli(trainer, "download", "--alias", "cli", "--out", str(tmp_path / "model"))
    assert fetched.returncode == 0, fetched.stderr
    assert ModelBundle.load(tmp_path / "model").version == version


def test_errors_are_reported_with_their_status(trainer):
    missing = cli(trainer, "show", "4242")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr and "4242" in missing.stderr
    bad = cli(trainer, "train", "--window", "2025-04-01:2025-03-01")
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr and "before start_day" in bad.stderr
    failed = cli(trainer, "train", "--window", "2024-01-01:2024-06-30", "--follow")
    assert failed.returncode == 1 and "error: " in failed.stdout and "no labelled rows" in failed.stdout
