"""A service whose data directory is a small tmpfs, for disk-full tests.

The tmpfs is mounted in the service's own mount namespace (unshare -rm), so no
root is needed and nothing outside the test sees it. A loop in that namespace
fills the tmpfs with a ballast file, or removes it, when asked through files
in a control directory outside it: the test cannot reach the mount itself.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from rxcast.suite.launcher import ServiceProcess

# $0 the data directory, $1 the tmpfs size in MiB, $2 the control directory, then the command.
# The ballast is at most the tmpfs's size, and the loop ends with the service.
_WRAPPER = """
dir="$0" mib="$1" ctl="$2"
shift 2
mkdir -p "$dir" && mount -t tmpfs -o size="${mib}m" tmpfs "$dir" || exit 1
(
  while kill -0 $$ 2>/dev/null; do
    if [ -e "$ctl/fill" ]; then
      dd if=/dev/zero of="$dir/ballast" bs=64k count=$((mib * 16)) 2>/dev/null
      mv "$ctl/fill" "$ctl/filled"
    fi
    if [ -e "$ctl/free" ]; then
      rm -f "$dir/ballast"
      mv "$ctl/free" "$ctl/freed"
    fi
    sleep 0.1
  done
) &
exec "$@"
"""


def namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not namespaces_work(), reason="unshare -rm (user and mount namespaces) is unavailable"
)


class TinyDisk(ServiceProcess):
    """`service` with its state directory (`flag`, `--data-dir` by default) on a tmpfs of `mib` MiB."""

    def __init__(self, service: str, run_dir, data_dir, mib: int, *args: str, flag: str = "--data-dir"):
        super().__init__(service, run_dir, [flag, str(data_dir), *args], name=f"tiny-{service}")
        self.data_dir, self.mib = Path(data_dir), mib
        self.control = Path(run_dir) / "disk-control"

    def command(self) -> list[str]:
        self.control.mkdir(parents=True, exist_ok=True)
        return ["unshare", "-rm", "sh", "-c", _WRAPPER, str(self.data_dir), str(self.mib), str(self.control)] + (
            super().command()
        )

    def fill(self, timeout: float = 30.0) -> None:
        """Take every free byte of the tmpfs."""
        self._ask("fill", "filled", timeout)

    def free(self, timeout: float = 30.0) -> None:
        """Give the ballast's bytes back."""
        self._ask("free", "freed", timeout)

    def _ask(self, request: str, done: str, timeout: float) -> None:
        (self.control / done).unlink(missing_ok=True)
        (self.control / request).touch()
        deadline = time.monotonic() + timeout
        while not (self.control / done).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the tmpfs of {self.name} did not answer {request!r}: {self.log_tail()}")
            time.sleep(0.05)
