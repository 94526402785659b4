"""docs/api.md cannot go stale silently: every service, RPC, message, field, enum and
enum value of capsule.v1 is named there, and its example requests parse against the
messages they claim to be."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf import json_format

from capsule.v1 import admin_pb2, executions_pb2, jobs_pb2, messages_pb2, types_pb2

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "api.md").read_text()
FILES = [jobs_pb2, executions_pb2, messages_pb2, admin_pb2, types_pb2]
SERVICES = {s.name: s for f in FILES for s in f.DESCRIPTOR.services_by_name.values()}
MESSAGES = [m for f in FILES for m in f.DESCRIPTOR.message_types_by_name.values()]
ENUMS = [e for f in FILES for e in f.DESCRIPTOR.enum_types_by_name.values()]
HEADINGS = set(re.findall(r"^#+ (\S+)$", DOC, re.M))


def _ids(items):
    return [i.name for i in items]


@pytest.mark.parametrize("service", SERVICES.values(), ids=list(SERVICES))
def test_every_service_and_rpc_has_a_section(service):
    assert service.name in HEADINGS
    missing = [m.name for m in service.methods if m.name not in HEADINGS]
    assert not missing, f"docs/api.md has no '### <Rpc>' section for {missing}"


@pytest.mark.parametrize("service", SERVICES.values(), ids=list(SERVICES))
def test_every_rpc_lists_its_errors(service):
    for method in service.methods:
        section = DOC.split(f"\n### {method.name}\n", 1)[1].split("\n### ", 1)[0]
        assert "Errors:" in section, f"the {method.name} section does not list its error statuses"
        assert f"`{method.name}({method.input_type.name})" in section, f"{method.name}: show its signature"


@pytest.mark.parametrize("message", MESSAGES, ids=_ids(MESSAGES))
def test_every_message_and_field_is_named(message):
    assert f"`{message.name}`" in DOC or message.name in HEADINGS
    missing = [f.name for f in message.fields
               if f"`{f.name}`" not in DOC and f"`{message.name}.{f.name}`" not in DOC]
    assert not missing, f"{message.name}: fields {missing} are not named in docs/api.md"


@pytest.mark.parametrize("enum", ENUMS, ids=_ids(ENUMS))
def test_every_enum_value_is_explained(enum):
    assert enum.name in HEADINGS
    missing = [v.name for v in enum.values if v.number and f"| `{v.name}` |" not in DOC]
    assert not missing, f"{enum.name}: values {missing} have no row in docs/api.md"


def example_calls(doc: str = DOC) -> list[tuple[str, str, str]]:
    """(service, rpc, JSON body) of each grpcurl call with a body (`-d '...'`, or
    `-d @` and a heredoc) in the doc."""
    calls = []
    for m in re.finditer(r"^grpcurl .*?-d (?:'(.*?)'|@) .*?capsule\.v1\.(\w+)/(\w+)(?:[^\n]*\n(.*?)\nEOF)?",
                         doc, re.M | re.S):
        calls.append((m.group(2), m.group(3), m.group(1) if m.group(1) is not None else m.group(4)))
    return calls


def test_the_examples_were_found():
    assert {rpc for _, rpc, _ in example_calls()} >= {"CreateJob", "TriggerJob", "ListMessages", "PreviewSchedule"}


@pytest.mark.parametrize("service, rpc, body", example_calls(), ids=[c[1] for c in example_calls()])
def test_each_example_body_parses_as_its_request(service, rpc, body):
    method = SERVICES[service].methods_by_name[rpc]
    request_class = next(getattr(f, method.input_type.name) for f in FILES
                         if method.input_type.name in f.DESCRIPTOR.message_types_by_name)
    json_format.Parse(body, request_class())
