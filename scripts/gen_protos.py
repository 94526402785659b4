"""Regenerate the committed protobuf and gRPC modules from proto/capsule/v1/*.proto.

Usage: python scripts/gen_protos.py [OUT_DIR]

With `-I proto` the proto package path is the import path, so the modules land next
to their .proto files as `capsule.v1.*_pb2`. tests/unit/test_generated.py runs this
into a temporary directory and fails when the committed files differ.
"""

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"


def generate(out_dir: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "capsule" / "v1").glob("*.proto"))
    builtin_includes = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{builtin_includes}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed: see the messages above")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_DIR)
