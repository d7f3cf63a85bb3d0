"""Helpers for the contract tests: run buf, and edit a scratch copy of the protos."""

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
    return subprocess.run([str(BUF), *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def proto_copy(tmp_path: Path) -> Path:
    """A scratch copy of the module (buf.yaml + protos/) to edit."""
    shutil.copy(REPO / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(REPO / "protos", tmp_path / "protos")
    return tmp_path


def edit(path: Path, pattern: str, replacement: str) -> None:
    """Replace the one match of `pattern` in `path`."""
    text = path.read_text()
    edited, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE | re.DOTALL)
    assert count == 1, f"pattern {pattern!r} not found in {path}"
    path.write_text(edited)
