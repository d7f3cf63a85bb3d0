"""Generate Python code (messages, type stubs, gRPC stubs) from protos/.

The generated tree is a build product: it is not committed, `make` regenerates
it on every run, and a contract test regenerates it into a scratch directory
and requires it to be byte-identical to the tree the tests import.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def proto_files(proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Every .proto file under proto_root, relative to it, in a stable order."""
    return sorted(p.relative_to(proto_root) for p in proto_root.rglob("*.proto"))


def generate(out_dir: Path, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Generate into out_dir, replacing its contents whole. Returns the files written."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    scratch = Path(tempfile.mkdtemp(prefix=".gen-", dir=out_dir.parent))
    try:
        args = [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{well_known}",
            f"--python_out={scratch}",
            f"--pyi_out={scratch}",
            f"--grpc_python_out={scratch}",
            *(str(p) for p in proto_files(proto_root)),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("gen_protos: protoc failed (see the errors above)")
        # Swap the finished tree in so that importers never see half of it.
        if out_dir.exists():
            retired = out_dir.with_name(out_dir.name + ".old")
            shutil.rmtree(retired, ignore_errors=True)
            out_dir.rename(retired)
            scratch.rename(out_dir)
            shutil.rmtree(retired)
        else:
            scratch.rename(out_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return sorted(p.relative_to(out_dir) for p in out_dir.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gen", help="output directory")
    args = parser.parse_args(argv)
    files = generate(args.out)
    print(f"gen_protos: {len(files)} files from {len(proto_files())} protos in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
