"""docs/api.md against a real engine: its grpcurl examples, sent with the same JSON
bodies, do what the page says; and the error statuses it states beyond the proto
comments hold."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from capsule.v1 import jobs_pb2, jobs_pb2_grpc, messages_pb2, messages_pb2_grpc
from capsule.v1 import types_pb2 as pb


def _doc_checks():
    """tests/unit/test_api_docs.py, which reads the doc's examples and the services."""
    path = Path(__file__).resolve().parents[1] / "unit" / "test_api_docs.py"
    spec = importlib.util.spec_from_file_location("api_doc_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_checks = _doc_checks()
SERVICES, example_calls = _checks.SERVICES, _checks.example_calls
MODULES = {"JobService": "jobs", "ExecutionService": "executions", "MessageService": "messages",
           "AdminService": "admin"}


def call(channel, auth, service: str, rpc: str, body: str):
    pb2 = importlib.import_module(f"capsule.v1.{MODULES[service]}_pb2")
    pb2_grpc = importlib.import_module(f"capsule.v1.{MODULES[service]}_pb2_grpc")
    request = getattr(pb2, SERVICES[service].methods_by_name[rpc].input_type.name)()
    json_format.Parse(body, request)
    return getattr(getattr(pb2_grpc, f"{service}Stub")(channel), rpc)(request, metadata=auth, timeout=90)


def test_the_grpcurl_flow_creates_runs_and_reads_the_message(channel, auth):
    replies = {rpc: call(channel, auth, service, rpc, body) for service, rpc, body in example_calls()}

    assert replies["CreateJob"].job.name == "hello"
    execution = replies["TriggerJob"].execution
    assert execution.status == pb.EXECUTION_STATUS_SUCCEEDED, execution.error
    assert json.loads(execution.result_json) == {"sent": True}
    [message] = replies["ListMessages"].messages
    assert json.loads(message.parts_json) == [{"type": "text", "text": "Hello from grpcurl"}]
    assert len(replies["PreviewSchedule"].fire_times) == 3
    assert replies["PreviewSchedule"].schedule_human


def status_of(fn) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value.code()


def test_an_overlapping_trigger_is_a_skipped_execution_not_an_error(channel, auth):
    jobs = jobs_pb2_grpc.JobServiceStub(channel)
    slow = "import time\ndef execute(job):\n    time.sleep(2)\n    return 1\n"
    jobs.CreateJob(jobs_pb2.CreateJobRequest(spec=pb.JobSpec(name="slow", artifact=pb.Artifact(source=slow))),
                   metadata=auth)
    first = jobs.TriggerJob(jobs_pb2.TriggerJobRequest(job="slow"), metadata=auth).execution
    second = jobs.TriggerJob(jobs_pb2.TriggerJobRequest(job="slow"), metadata=auth).execution
    forced = jobs.TriggerJob(jobs_pb2.TriggerJobRequest(job="slow", force=True), metadata=auth).execution

    assert first.status in (pb.EXECUTION_STATUS_QUEUED, pb.EXECUTION_STATUS_RUNNING)
    assert (second.status, second.reason) == (pb.EXECUTION_STATUS_SKIPPED, "skipped: overlap")
    assert forced.status in (pb.EXECUTION_STATUS_QUEUED, pb.EXECUTION_STATUS_RUNNING)


def test_deleting_an_archived_job_is_a_failed_precondition(channel, auth):
    jobs = jobs_pb2_grpc.JobServiceStub(channel)
    spec = pb.JobSpec(name="once", artifact=pb.Artifact(source="def execute(job):\n    return 1\n"))
    job = jobs.CreateJob(jobs_pb2.CreateJobRequest(spec=spec), metadata=auth).job
    jobs.TriggerJob(jobs_pb2.TriggerJobRequest(job=job.id, wait=True), metadata=auth)

    assert jobs.DeleteJob(jobs_pb2.JobRef(job=job.id), metadata=auth).archived
    assert status_of(lambda: jobs.DeleteJob(jobs_pb2.JobRef(job=job.id), metadata=auth)) \
        == grpc.StatusCode.FAILED_PRECONDITION
    # Metadata and versions of an archived job stay readable and writable as documented.
    jobs.UpdateMetadata(jobs_pb2.UpdateMetadataRequest(job=job.id, metadata_json="{}"), metadata=auth)
    assert len(jobs.ListVersions(jobs_pb2.JobRef(job=job.id), metadata=auth).versions) == 1


def test_messages_after_an_unknown_id_are_not_found(channel, auth):
    messages = messages_pb2_grpc.MessageServiceStub(channel)
    request = messages_pb2.ListMessagesRequest(user_id="user_42", after_id="msg_unknown")

    assert status_of(lambda: messages.ListMessages(request, metadata=auth)) == grpc.StatusCode.NOT_FOUND
