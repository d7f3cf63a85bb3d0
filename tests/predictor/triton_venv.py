"""Separate virtualenvs for outside callers and peers, the way they have them.

tritonclient needs protobuf < 7 while rxcast's toolchain needs protobuf >= 7,
so the client cannot live in rxcast's own environment; it gets its own,
created once under build/ and reused while its requirements stay the same.
bench/peers.py builds its peers' environments (MLServer) with the same helper.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REQUIREMENTS = ("tritonclient[grpc]==2.73.0", "numpy")


def ensure(root: Path) -> Path:
    """The tritonclient venv's python, creating the venv first when needed."""
    return ensure_venv(root / "build" / "venv-triton", REQUIREMENTS)


def ensure_venv(venv: Path, requirements: Sequence[str], timeout: float = 900) -> Path:
    """The python of a venv at `venv` holding `requirements`, (re)built when missing
    or built for other requirements; a lock lets concurrent callers share one build."""
    python = venv / "bin" / "python"
    marker = venv / ".requirements"
    wanted = "\n".join(requirements)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and marker.exists() and marker.read_text() == wanted:
            return python
        marker.unlink(missing_ok=True)
        subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--clear", str(venv)], check=True)
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *requirements],
            capture_output=True,
            check=False,
            text=True,
            timeout=timeout,
        )
        if pip.returncode != 0:
            raise RuntimeError(f"pip install {' '.join(requirements)} into {venv} failed:\n{pip.stderr[-3000:]}")
        marker.write_text(wanted)
    return python
