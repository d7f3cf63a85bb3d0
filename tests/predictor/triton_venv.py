"""A separate virtualenv with tritonclient, the way an outside caller has it.

tritonclient needs protobuf < 7 while rxcast's toolchain needs protobuf >= 7,
so the client cannot live in rxcast's own environment; it gets its own,
created once under build/ and reused while its requirements stay the same.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = ("tritonclient[grpc]==2.73.0", "numpy")


def ensure(root: Path) -> Path:
    """The venv's python, creating the venv first when needed."""
    venv = root / "build" / "venv-triton"
    python = venv / "bin" / "python"
    marker = venv / ".requirements"
    wanted = "\n".join(REQUIREMENTS)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".venv-triton.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and marker.exists() and marker.read_text() == wanted:
            return python
        subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *REQUIREMENTS],
            check=True,
            timeout=600,
        )
        marker.write_text(wanted)
    return python
