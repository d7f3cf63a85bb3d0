"""The generated Python code the tests import is exactly what protos/ generates now."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

GENERATED = REPO / "build" / "gen"


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_generated_code_matches_protos(tmp_path: Path):
    fresh = tmp_path / "gen"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_protos.py"), "--out", str(fresh)], check=True, timeout=120
    )
    assert GENERATED.is_dir(), "build/gen is missing: run scripts/bootstrap (make test does)"
    assert _files(fresh) == _files(GENERATED), "generated files differ from build/gen: regenerate"
    stale = [name for name in sorted(_files(fresh)) if not filecmp.cmp(fresh / name, GENERATED / name, shallow=False)]
    assert not stale, f"stale generated files (rerun scripts/bootstrap): {stale}"


def test_every_proto_generates_a_module():
    for proto in (REPO / "protos").rglob("*.proto"):
        stem = proto.relative_to(REPO / "protos").with_suffix("")
        assert (GENERATED / f"{stem}_pb2.py").exists(), f"no generated module for {proto}"


def test_imported_modules_come_from_build_gen():
    from rxcast.feature.v1 import feature_pb2

    assert Path(feature_pb2.__file__).resolve().is_relative_to(GENERATED.resolve())
