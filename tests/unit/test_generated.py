"""The committed gRPC modules must be exactly what scripts/gen_protos.py makes from proto/."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "proto" / "capsule" / "v1"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_modules_match_the_protos(tmp_path):
    _load_generator().generate(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROOT / "proto") for p in GENERATED.glob("*_pb2*"))
    assert fresh == committed, "the set of generated files changed: run python scripts/gen_protos.py"
    stale = [str(p) for p in fresh if (tmp_path / p).read_bytes() != (ROOT / "proto" / p).read_bytes()]
    assert not stale, f"stale generated modules {stale}: run python scripts/gen_protos.py and commit"


@pytest.mark.parametrize("service", ["JobService", "ExecutionService", "MessageService", "AdminService"])
def test_every_rpc_is_documented(service):
    """Each RPC in the .proto files has a comment right above it."""
    text = "\n".join(p.read_text() for p in GENERATED.glob("*.proto"))
    block = text.split(f"service {service} {{", 1)[1].split("\n}", 1)[0]
    lines = block.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("rpc "):
            assert lines[i - 1].strip().startswith("//"), f"{service}: undocumented {line.strip()}"
