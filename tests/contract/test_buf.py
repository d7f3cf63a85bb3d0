"""buf lint and breaking-change checks, and proof that the breaking check bites."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

BUF = REPO / "node_modules" / ".bin" / "buf"
BASELINE = REPO / "protos" / "buf-baseline.binpb"


def buf(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: run scripts/bootstrap (make test does)")
    return subprocess.run([str(BUF), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_lint_passes():
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_baseline():
    result = buf("breaking", "--against", str(BASELINE))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def proto_copy(tmp_path: Path) -> Path:
    """A scratch copy of the module (buf.yaml + protos/) to edit."""
    shutil.copy(REPO / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(REPO / "protos", tmp_path / "protos")
    return tmp_path


def _edit(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text()
    edited, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE | re.DOTALL)
    assert count == 1, f"pattern {pattern!r} not found in {path}"
    path.write_text(edited)


def test_unedited_copy_is_not_breaking(proto_copy: Path):
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_renumbered_field_is_caught(proto_copy: Path):
    _edit(
        proto_copy / "protos/rxcast/feature/v1/feature.proto",
        r"optional double units_dispensed = 4;",
        "optional double units_dispensed = 40;",
    )
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode != 0
    assert "units_dispensed" in result.stdout, result.stdout


def test_removed_rpc_is_caught(proto_copy: Path):
    _edit(
        proto_copy / "protos/rxcast/trainer/v1/trainer.proto",
        r"  rpc Rollback\(RollbackRequest\) returns \(RollbackResponse\);\n",
        "",
    )
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode != 0
    assert "Rollback" in result.stdout, result.stdout


def test_changed_oip_field_type_is_caught(proto_copy: Path):
    _edit(
        proto_copy / "protos/inference/grpc_predict_v2.proto",
        r"  string model_name = 1;",
        "  bytes model_name = 1;",
    )
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode != 0
    assert "model_name" in result.stdout, result.stdout


def test_lint_catches_an_uncommented_field(proto_copy: Path):
    _edit(
        proto_copy / "protos/rxcast/drift/v1/drift.proto",
        r"  // The model version it belongs to.\n  int64 model_version = 1;\n  // The profile",
        "  int64 model_version = 1;\n  // The profile",
    )
    result = buf("lint", cwd=proto_copy)
    assert result.returncode != 0
    assert "model_version" in result.stdout, result.stdout
