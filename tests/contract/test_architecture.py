"""The architecture holds: import-linter's contracts (.importlinter) pass, and
they do fail on the violations they exist to catch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        # A portion of the rxcast namespace package outside the tree: the probe
        # modules join rxcast.<service> without touching the source.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_are_kept():
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        (
            "rxcast/trainer/_probe.py",
            "import rxcast.drift.stats\n",
            "rxcast.trainer is not allowed to import rxcast.drift",
        ),
        ("rxcast/runtime/_probe.py", "import rxcast.clients\n", "rxcast.runtime"),
        ("rxcast/clients/_probe.py", "import rxcast.predictor.holder\n", "rxcast.clients"),
    ],
)
def test_a_boundary_violation_breaks_a_contract(tmp_path, module, source, broken):
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    # rxcast.runtime and rxcast.clients are regular packages: a probe joins them through a copy.
    package = path.parent
    if package.name in ("runtime", "clients"):
        original = ROOT / "services" / "common" / "rxcast" / package.name
        for file in original.glob("*.py"):
            (package / file.name).write_text(file.read_text())
    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert broken in result.stdout
