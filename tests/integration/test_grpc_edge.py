"""The wire contract as another language sees it: raw stubs, statuses, health, reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from capsule.v1 import admin_pb2, admin_pb2_grpc, executions_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from capsule.v1 import messages_pb2, messages_pb2_grpc
from capsule.v1 import types_pb2 as pb

SOURCE = "def execute(job):\n    return {'sum': job.metadata['a'] + job.metadata['b']}\n"


def create(channel, auth, **spec):
    stub = jobs_pb2_grpc.JobServiceStub(channel)
    fields = dict(name="adder", artifact=pb.Artifact(source=SOURCE), metadata_json='{"a": 1, "b": 2}')
    fields.update(spec)
    return stub.CreateJob(jobs_pb2.CreateJobRequest(spec=pb.JobSpec(**fields)), metadata=auth)


def status_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def test_source_text_job_runs_and_waits_over_the_wire(channel, auth):
    job = create(channel, auth).job
    stub = jobs_pb2_grpc.JobServiceStub(channel)
    reply = stub.TriggerJob(jobs_pb2.TriggerJobRequest(job=job.id, wait=True), metadata=auth)
    assert reply.execution.status == pb.EXECUTION_STATUS_SUCCEEDED
    assert reply.execution.result_json == '{"sum":3}'


def test_requests_without_a_valid_token_are_unauthenticated(channel):
    stub = jobs_pb2_grpc.JobServiceStub(channel)
    code, details = status_of(lambda: stub.ListJobs(jobs_pb2.ListJobsRequest()))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "token" in details
    code, _ = status_of(lambda: stub.ListJobs(jobs_pb2.ListJobsRequest(),
                                              metadata=(("authorization", "Bearer nope"),)))
    assert code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("spec, code, field", [
    pytest.param(dict(name=""), grpc.StatusCode.INVALID_ARGUMENT, "spec.name", id="empty-name"),
    pytest.param(dict(metadata_json="[1]"), grpc.StatusCode.INVALID_ARGUMENT, "metadata_json", id="metadata-not-object"),
    pytest.param(dict(metadata_json="{bad"), grpc.StatusCode.INVALID_ARGUMENT, "metadata_json", id="metadata-not-json"),
    pytest.param(dict(artifact=pb.Artifact(source="")), grpc.StatusCode.INVALID_ARGUMENT, "source", id="no-source"),
    pytest.param(dict(artifact=pb.Artifact(source="x" * 300_000)), grpc.StatusCode.RESOURCE_EXHAUSTED, "source",
                 id="huge-source"),
    pytest.param(dict(schedule=pb.Schedule(interval=pb.Interval(seconds=0))), grpc.StatusCode.INVALID_ARGUMENT,
                 "interval.seconds", id="zero-interval"),
    pytest.param(dict(schedule=pb.Schedule(overlap=42)), grpc.StatusCode.INVALID_ARGUMENT, "overlap",
                 id="unknown-enum"),
    pytest.param(dict(schedule=pb.Schedule(cron=pb.Cron(expression="0 0 30 2 *"))), grpc.StatusCode.INVALID_ARGUMENT,
                 "month. Capsule's cron takes 5 fields", id="cron-never-fires"),
    pytest.param(dict(schedule=pb.Schedule(cron=pb.Cron(expression="R * * * *"))), grpc.StatusCode.INVALID_ARGUMENT,
                 "spec.schedule.cron.expression: 'R * * * *': 'R' is not part of Capsule's cron",
                 id="cron-random"),
    pytest.param(dict(retry=pb.Retry(max_attempts=1000)), grpc.StatusCode.INVALID_ARGUMENT, "max_attempts",
                 id="too-many-attempts"),
    pytest.param(dict(isolation=pb.ISOLATION_TRUSTED), grpc.StatusCode.INVALID_ARGUMENT, "payload",
                 id="trusted-without-payload"),
    pytest.param(dict(artifact=pb.Artifact(source=SOURCE, digest="0" * 64)), grpc.StatusCode.INVALID_ARGUMENT,
                 "digest", id="wrong-digest"),
])
def test_bad_specs_get_the_right_status_and_name_the_field(channel, auth, spec, code, field):
    got, details = status_of(lambda: create(channel, auth, **spec))
    assert got == code
    assert field in details


def test_a_refused_request_loses_nothing_already_stored(channel, auth, engine):
    kept = create(channel, auth).job
    status_of(lambda: create(channel, auth, name="adder"))  # ALREADY_EXISTS
    status_of(lambda: create(channel, auth, name="other", metadata_json="{bad"))
    stub = jobs_pb2_grpc.JobServiceStub(channel)
    assert stub.GetJob(jobs_pb2.GetJobRequest(job="adder"), metadata=auth).id == kept.id
    assert engine.store.integrity_check() == "ok"


def test_unknown_ids_are_not_found(channel, auth):
    jobs_stub = jobs_pb2_grpc.JobServiceStub(channel)
    ex_stub = executions_pb2_grpc.ExecutionServiceStub(channel)
    from capsule.v1 import executions_pb2
    for call in (lambda: jobs_stub.GetJob(jobs_pb2.GetJobRequest(job="job_missing"), metadata=auth),
                 lambda: jobs_stub.TriggerJob(jobs_pb2.TriggerJobRequest(job="nope"), metadata=auth),
                 lambda: ex_stub.GetExecution(executions_pb2.GetExecutionRequest(execution_id="exe_x"),
                                              metadata=auth)):
        assert status_of(call)[0] == grpc.StatusCode.NOT_FOUND


def test_messages_need_a_user_id(channel, auth):
    stub = messages_pb2_grpc.MessageServiceStub(channel)
    code, details = status_of(lambda: stub.ListMessages(messages_pb2.ListMessagesRequest(), metadata=auth))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "user_id" in details


def test_health_and_reflection_are_served(channel):
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    [reply] = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for s in reply.list_services_response.service}
    assert {"capsule.v1.JobService", "capsule.v1.ExecutionService", "capsule.v1.MessageService",
            "capsule.v1.AdminService"} <= names


def test_server_info_reports_the_isolation_layers(channel, auth, engine):
    info = admin_pb2_grpc.AdminServiceStub(channel).GetServerInfo(admin_pb2.GetServerInfoRequest(), metadata=auth)
    assert info.admin and info.store_path == str(engine.store.path)
    assert {layer.name for layer in info.isolation_layers} >= {"child process", "rlimits", "restricted python"}


def test_owner_tokens_see_only_their_own_jobs(channel, auth):
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    admin.CreateOwner(admin_pb2.CreateOwnerRequest(name="acme"), metadata=auth)
    token = admin.CreateToken(admin_pb2.CreateTokenRequest(owner="acme"), metadata=auth).token
    acme = (("authorization", f"Bearer {token}"),)
    theirs = create(channel, auth).job
    stub = jobs_pb2_grpc.JobServiceStub(channel)
    assert status_of(lambda: stub.GetJob(jobs_pb2.GetJobRequest(job=theirs.id), metadata=acme))[0] == \
        grpc.StatusCode.NOT_FOUND
    assert status_of(lambda: admin.ListOwners(admin_pb2.ListOwnersRequest(), metadata=acme))[0] == \
        grpc.StatusCode.PERMISSION_DENIED
    mine = create(channel, acme).job  # the same name is free for another owner
    assert mine.owner == "acme"


def test_a_trigger_refused_for_its_wait_timeout_runs_nothing(channel, auth):
    job = create(channel, auth).job
    stub = jobs_pb2_grpc.JobServiceStub(channel)
    code, details = status_of(lambda: stub.TriggerJob(
        jobs_pb2.TriggerJobRequest(job=job.id, wait=True, wait_timeout_seconds=7200), metadata=auth))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "wait_timeout_seconds" in details
    from capsule.v1 import executions_pb2
    history = executions_pb2_grpc.ExecutionServiceStub(channel).ListExecutions(
        executions_pb2.ListExecutionsRequest(job=job.id), metadata=auth)
    assert list(history.executions) == []
