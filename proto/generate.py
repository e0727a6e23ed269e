"""Regenerate the Python code of the wire protocol with the pinned grpcio-tools.

    python proto/generate.py          # write licensecore/v1/licensecore_pb2*.py(i) in place
    python proto/generate.py --check  # exit 1, listing the files, if the committed code drifted
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_FILE = "licensecore/v1/licensecore.proto"
GENERATED = (
    "licensecore/v1/licensecore_pb2.py",
    "licensecore/v1/licensecore_pb2.pyi",
    "licensecore/v1/licensecore_pb2_grpc.py",
)


def generate(out: Path) -> None:
    """Run protoc with ``-I proto`` so the generated modules import ``licensecore.v1``."""
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(PROTO_ROOT / PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO_FILE}")


def drifted() -> list[str]:
    """Generated files whose committed content differs from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        return [
            name
            for name in GENERATED
            if not (PROTO_ROOT / name).is_file()
            or (PROTO_ROOT / name).read_bytes() != (Path(tmp) / name).read_bytes()
        ]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    check = parser.parse_args(argv).check
    if not check:
        generate(PROTO_ROOT)
        return 0
    stale = drifted()
    for name in stale:
        print(f"out of date: proto/{name}", file=sys.stderr)
    if stale:
        print("run: python proto/generate.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
