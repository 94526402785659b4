"""Owners are walled off from each other: every RPC, called with another owner's ids
or names, answers NOT_FOUND or PERMISSION_DENIED and returns nothing of theirs.

Two owners, `acme` and `globex`, each with a token, a job that sends user "u" a
message, a finished execution and a second version. `globex` then calls every RPC of
every service with acme's ids; lists never show acme's rows; the admin sees both.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import grpc
import pytest

from capsule.v1 import admin_pb2, admin_pb2_grpc, executions_pb2, executions_pb2_grpc
from capsule.v1 import jobs_pb2, jobs_pb2_grpc, messages_pb2, messages_pb2_grpc
from capsule.v1 import types_pb2 as pb
from engine.server import EngineServer

SOURCE = (
    "def execute(job):\n"
    "    User.get('u').send('hello from ' + job.metadata['who'])\n"
    "    return {'who': job.metadata['who']}\n"
)
def _text(message: pb.Message) -> str:
    return json.loads(message.parts_json)[0]["text"]


DENIED = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)


class Stubs:
    def __init__(self, channel: grpc.Channel, token: str) -> None:
        self.auth = (("authorization", f"Bearer {token}"),)
        self.jobs = jobs_pb2_grpc.JobServiceStub(channel)
        self.executions = executions_pb2_grpc.ExecutionServiceStub(channel)
        self.messages = messages_pb2_grpc.MessageServiceStub(channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(channel)


def _spec(name: str, who: str, **extra) -> pb.JobSpec:
    return pb.JobSpec(name=name, artifact=pb.Artifact(source=SOURCE), user_id="u",
                      metadata_json=f'{{"who": "{who}"}}', **extra)


def _populate(s: Stubs, owner: str) -> SimpleNamespace:
    job = s.jobs.CreateJob(jobs_pb2.CreateJobRequest(spec=_spec(f"{owner}-job", owner)), metadata=s.auth).job
    done = s.jobs.TriggerJob(jobs_pb2.TriggerJobRequest(job=job.id, wait=True, wait_timeout_seconds=30),
                             metadata=s.auth).execution
    assert done.status == pb.EXECUTION_STATUS_SUCCEEDED, done
    v2 = s.jobs.UpdateJob(jobs_pb2.UpdateJobRequest(job=job.id, timeout_seconds=30), metadata=s.auth).version
    inbox = s.messages.ListMessages(messages_pb2.ListMessagesRequest(user_id="u"), metadata=s.auth).messages
    assert len(inbox) == 1
    return SimpleNamespace(job=job, execution=done, version=v2, message=inbox[0])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    server = EngineServer(home=tmp_path_factory.mktemp("isolation") / "home", listen="127.0.0.1:0").start()
    channel = grpc.insecure_channel(server.address)
    admin = Stubs(channel, server.admin_token)
    tokens = {}
    for owner in ("acme", "globex"):
        admin.admin.CreateOwner(admin_pb2.CreateOwnerRequest(name=owner), metadata=admin.auth)
        tokens[owner] = admin.admin.CreateToken(admin_pb2.CreateTokenRequest(owner=owner, label="t"),
                                                metadata=admin.auth)
    acme, globex = Stubs(channel, tokens["acme"].token), Stubs(channel, tokens["globex"].token)
    yield SimpleNamespace(admin=admin, acme=acme, globex=globex, a=_populate(acme, "acme"),
                          b=_populate(globex, "globex"), acme_token_id=tokens["acme"].token_id, server=server)
    channel.close()
    server.stop(grace=1)


# Each call is made by globex (`s`) with acme's things (`a`) or, for version ids,
# globex's own job (`b`) with acme's version.
CALLS = {
    "GetJob(id)": lambda s, a, b: s.jobs.GetJob(jobs_pb2.GetJobRequest(job=a.job.id), metadata=s.auth),
    "GetJob(name)": lambda s, a, b: s.jobs.GetJob(jobs_pb2.GetJobRequest(job=a.job.name), metadata=s.auth),
    "UpdateJob": lambda s, a, b: s.jobs.UpdateJob(
        jobs_pb2.UpdateJobRequest(job=a.job.id, description="mine now"), metadata=s.auth),
    "UpdateJob(name)": lambda s, a, b: s.jobs.UpdateJob(
        jobs_pb2.UpdateJobRequest(job=a.job.name, timeout_seconds=5), metadata=s.auth),
    "UpdateMetadata": lambda s, a, b: s.jobs.UpdateMetadata(
        jobs_pb2.UpdateMetadataRequest(job=a.job.id, metadata_json='{"who": "globex"}'), metadata=s.auth),
    "ActivateJob": lambda s, a, b: s.jobs.ActivateJob(jobs_pb2.JobRef(job=a.job.id), metadata=s.auth),
    "DeactivateJob": lambda s, a, b: s.jobs.DeactivateJob(jobs_pb2.JobRef(job=a.job.id), metadata=s.auth),
    "DeleteJob": lambda s, a, b: s.jobs.DeleteJob(jobs_pb2.JobRef(job=a.job.id), metadata=s.auth),
    "DeleteJob(name)": lambda s, a, b: s.jobs.DeleteJob(jobs_pb2.JobRef(job=a.job.name), metadata=s.auth),
    "TriggerJob": lambda s, a, b: s.jobs.TriggerJob(jobs_pb2.TriggerJobRequest(job=a.job.id), metadata=s.auth),
    "TriggerJob(own job, their version)": lambda s, a, b: s.jobs.TriggerJob(
        jobs_pb2.TriggerJobRequest(job=b.job.id, version_id=a.version.id), metadata=s.auth),
    "ListVersions": lambda s, a, b: s.jobs.ListVersions(jobs_pb2.JobRef(job=a.job.id), metadata=s.auth),
    "ActivateVersion": lambda s, a, b: s.jobs.ActivateVersion(
        jobs_pb2.ActivateVersionRequest(job=a.job.id, version_number=1), metadata=s.auth),
    "ActivateVersion(own job, their version)": lambda s, a, b: s.jobs.ActivateVersion(
        jobs_pb2.ActivateVersionRequest(job=b.job.id, version_id=a.version.id), metadata=s.auth),
    "GetExecution": lambda s, a, b: s.executions.GetExecution(
        executions_pb2.GetExecutionRequest(execution_id=a.execution.id), metadata=s.auth),
    "WaitExecution": lambda s, a, b: s.executions.WaitExecution(
        executions_pb2.WaitExecutionRequest(execution_id=a.execution.id, timeout_seconds=1), metadata=s.auth),
    "CancelExecution": lambda s, a, b: s.executions.CancelExecution(
        executions_pb2.GetExecutionRequest(execution_id=a.execution.id), metadata=s.auth),
    "ListExecutions(job)": lambda s, a, b: s.executions.ListExecutions(
        executions_pb2.ListExecutionsRequest(job=a.job.id), metadata=s.auth),
    "CleanupExecutions(job)": lambda s, a, b: s.executions.CleanupExecutions(
        executions_pb2.CleanupExecutionsRequest(job=a.job.id, older_than_days=0), metadata=s.auth),
    "ListMessages(after their message)": lambda s, a, b: s.messages.ListMessages(
        messages_pb2.ListMessagesRequest(user_id="u", after_id=a.message.id), metadata=s.auth),
    "StreamMessages(after their message)": lambda s, a, b: list(s.messages.StreamMessages(
        messages_pb2.ListMessagesRequest(user_id="u", after_id=a.message.id), metadata=s.auth, timeout=5)),
    "CreateOwner": lambda s, a, b: s.admin.CreateOwner(admin_pb2.CreateOwnerRequest(name="evil"), metadata=s.auth),
    "ListOwners": lambda s, a, b: s.admin.ListOwners(admin_pb2.ListOwnersRequest(), metadata=s.auth),
    "CreateToken(for them)": lambda s, a, b: s.admin.CreateToken(
        admin_pb2.CreateTokenRequest(owner="acme"), metadata=s.auth),
    "RevokeToken(theirs)": lambda s, a, b: s.admin.RevokeToken(
        admin_pb2.RevokeTokenRequest(token_id=a.token_id), metadata=s.auth),
}


@pytest.mark.parametrize("rpc", list(CALLS))
def test_another_owners_ids_are_refused(world, rpc):
    a = SimpleNamespace(**vars(world.a), token_id=world.acme_token_id)
    with pytest.raises(grpc.RpcError) as info:
        CALLS[rpc](world.globex, a, world.b)
    assert info.value.code() in DENIED, (rpc, info.value.code(), info.value.details())
    assert "hello from acme" not in (info.value.details() or "")
    _acme_is_untouched(world)


def _acme_is_untouched(world):
    s, a = world.acme, world.a
    job = s.jobs.GetJob(jobs_pb2.GetJobRequest(job=a.job.id), metadata=s.auth)
    assert (job.description, job.metadata_json, job.active) == (a.job.description, '{"who":"acme"}', True)
    assert job.status != pb.JOB_STATUS_ARCHIVED and job.active_version_number == 2
    execution = s.executions.GetExecution(executions_pb2.GetExecutionRequest(execution_id=a.execution.id),
                                          metadata=s.auth)
    assert execution.result_json == a.execution.result_json
    versions = s.jobs.ListVersions(jobs_pb2.JobRef(job=a.job.id), metadata=s.auth).versions
    assert [v.number for v in versions] == [2, 1]


def test_lists_show_only_the_callers_rows(world):
    s = world.globex
    jobs = s.jobs.ListJobs(jobs_pb2.ListJobsRequest(include_dynamic=True, include_finished=True),
                           metadata=s.auth).jobs
    assert [j.name for j in jobs] == ["globex-job"]
    assert all(j.owner == "globex" for j in jobs)
    for request in (jobs_pb2.ListJobsRequest(include_dynamic=True, search="acme"),
                    jobs_pb2.ListJobsRequest(include_dynamic=True, user_id="u")):
        assert all(j.owner == "globex" for j in s.jobs.ListJobs(request, metadata=s.auth).jobs)
    executions = s.executions.ListExecutions(executions_pb2.ListExecutionsRequest(limit=1000),
                                             metadata=s.auth).executions
    assert executions and all(e.job_id == world.b.job.id for e in executions)
    inbox = s.messages.ListMessages(messages_pb2.ListMessagesRequest(user_id="u"), metadata=s.auth).messages
    assert [_text(m) for m in inbox] == ["hello from globex"]
    assert all(m.owner == "globex" for m in inbox)


def test_a_stream_of_the_same_user_id_carries_only_the_callers_messages(world):
    s = world.globex
    call = s.messages.StreamMessages(messages_pb2.ListMessagesRequest(user_id="u"), metadata=s.auth, timeout=3)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for message in call:
            received.append(message)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert [m.owner for m in received] == ["globex"]


def test_cleanup_and_prune_without_ids_touch_only_the_callers_rows(world):
    s = world.globex
    s.executions.CleanupExecutions(executions_pb2.CleanupExecutionsRequest(older_than_days=0, dry_run=True),
                                   metadata=s.auth)
    plan = s.jobs.DeployJobs(jobs_pb2.DeployJobsRequest(prune=True, dry_run=True), metadata=s.auth)
    assert all(r.name != world.a.job.name for r in plan.results)
    _acme_is_untouched(world)


def test_a_job_reaches_only_its_owners_users(world):
    """Both jobs sent to user "u": each owner's "u" got exactly its own job's message."""
    for s, who in ((world.acme, "acme"), (world.globex, "globex")):
        inbox = s.messages.ListMessages(messages_pb2.ListMessagesRequest(user_id="u"), metadata=s.auth).messages
        assert [(m.owner, _text(m)) for m in inbox] == [(who, f"hello from {who}")]


def test_the_admin_sees_every_owner(world):
    s = world.admin
    jobs = s.jobs.ListJobs(jobs_pb2.ListJobsRequest(include_dynamic=True), metadata=s.auth).jobs
    assert {j.owner for j in jobs} >= {"acme", "globex"}
    for owner in (world.a, world.b):
        assert s.executions.GetExecution(executions_pb2.GetExecutionRequest(execution_id=owner.execution.id),
                                         metadata=s.auth).id == owner.execution.id
    owners = s.admin.ListOwners(admin_pb2.ListOwnersRequest(), metadata=s.auth).owners
    assert [o.name for o in owners] == ["acme", "globex"]


def test_server_info_names_the_callers_owner(world):
    info = world.globex.admin.GetServerInfo(admin_pb2.GetServerInfoRequest(), metadata=world.globex.auth)
    assert (info.owner, info.admin) == ("globex", False)
    assert info.store_path == ""  # where the engine keeps its files is the admin's business


def test_a_revoked_token_is_unauthenticated(world):
    admin = world.admin
    made = admin.admin.CreateToken(admin_pb2.CreateTokenRequest(owner="globex", label="short-lived"),
                                   metadata=admin.auth)
    auth = (("authorization", f"Bearer {made.token}"),)
    world.globex.jobs.ListJobs(jobs_pb2.ListJobsRequest(), metadata=auth)
    admin.admin.RevokeToken(admin_pb2.RevokeTokenRequest(token_id=made.token_id), metadata=admin.auth)
    with pytest.raises(grpc.RpcError) as info:
        world.globex.jobs.ListJobs(jobs_pb2.ListJobsRequest(), metadata=auth)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", [
    "/capsule.v1.JobService/ListJobs", "/capsule.v1.ExecutionService/ListExecutions",
    "/capsule.v1.MessageService/ListMessages", "/capsule.v1.AdminService/GetServerInfo",
])
@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer nope", "Basic abc", "bearer x"])
def test_every_service_demands_a_valid_token(world, method, header):
    channel = grpc.insecure_channel(world.server.address)
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    metadata = (("authorization", header),) if header is not None else None
    with pytest.raises(grpc.RpcError) as info:
        call(b"", metadata=metadata, timeout=5)
    channel.close()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
