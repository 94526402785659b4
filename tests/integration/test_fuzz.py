"""Hostile input against a live engine: generated request messages for every RPC, and
raw bytes that are not messages at all. No request may get INTERNAL or UNKNOWN, the
engine keeps answering, the database passes `PRAGMA integrity_check`, and the jobs
made before the fuzzing (another owner's, whose ids the fuzzer knows) are unchanged.

Messages are generated from the proto descriptors, so a field added to the contract
is fuzzed without touching this file.
"""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import descriptor as d
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsule.v1 import executions_pb2, executions_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from capsule.v1 import types_pb2 as pb
from engine import server as server_module
from engine.server import SERVICE_NAMES, EngineServer

SOURCE = "def execute(job):\n    return {'n': job.metadata.get('n', 0)}\n"
BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE,
       grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.DATA_LOSS}
CALL_TIMEOUT = 60.0  # generous: a busy machine must not pass for a broken engine
MAX_DEPTH = 3


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """An engine with a `keeper` owner whose jobs must survive, and a `fuzz` owner."""
    server = EngineServer(home=tmp_path_factory.mktemp("fuzz") / "home", listen="127.0.0.1:0").start()
    channel = grpc.insecure_channel(server.address)
    admin = (("authorization", f"Bearer {server.admin_token}"),)
    tokens = {}
    for owner in ("keeper", "fuzz"):
        server.engine.store.create_owner(owner, False, server.clock.now())
        tokens[owner] = (("authorization", f"Bearer {server.engine.store.create_token(owner, '', server.clock.now())[1]}"),)
    stub = jobs_pb2_grpc.JobServiceStub(channel)
    kept, ids = [], []
    for owner in ("keeper", "fuzz"):
        for i in range(3):
            spec = pb.JobSpec(name=f"{owner}-{i}", artifact=pb.Artifact(source=SOURCE), metadata_json=f'{{"n": {i}}}',
                              user_id="u")
            job = stub.CreateJob(jobs_pb2.CreateJobRequest(spec=spec), metadata=tokens[owner]).job
            run = stub.TriggerJob(jobs_pb2.TriggerJobRequest(job=job.id, wait=True, wait_timeout_seconds=30),
                                  metadata=tokens[owner]).execution
            ids += [job.id, job.name, job.active_version_id, run.id]
            own = {"job": job.id, "execution": run.id}
            if owner == "keeper":
                kept.append(stub.GetJob(jobs_pb2.GetJobRequest(job=job.id), metadata=tokens[owner]))
    yield dict(server=server, channel=channel, tokens=tokens, admin=admin, kept=kept, ids=ids, own=own)
    channel.close()
    server.stop(grace=1)


# -- strategies from descriptors -----------------------------------------------------------------

INT_RANGES = {
    d.FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1), d.FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
    d.FieldDescriptor.TYPE_SFIXED32: (-2**31, 2**31 - 1), d.FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1),
    d.FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1), d.FieldDescriptor.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    d.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), d.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    d.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), d.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # protobuf strings are UTF-8
SPECIAL_TEXT = st.sampled_from([
    "", " ", "job_", "exe_", "ver_", "msg_", "tok_", "a", "0", "-1", "99999999999999999999", "null", "[]", "{}",
    '{"a": 1}', '{"a": ' * 100, "x" * 300_000, "\x00", "\U0010ffff" * 10, "'; DROP TABLE jobs; --",
    "def execute(job):\n    return 1\n", "def execute(job):\n    import os\n", "* * * * *", "0 0 31 2 *",
    "Europe/Berlin", "Mars/Olympus", "../../etc/passwd", "%s%s%n", "1:job_x:name", "1:2",
])


def field_value(field: d.FieldDescriptor, depth: int, ids: list[str]) -> st.SearchStrategy:
    t = field.type
    if t == d.FieldDescriptor.TYPE_STRING:
        return st.one_of(TEXT, SPECIAL_TEXT, st.sampled_from(ids))
    if t == d.FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.just(b"\x80" * 2_000_000))
    if t == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        return st.one_of(st.floats(width=32 if t == d.FieldDescriptor.TYPE_FLOAT else 64),
                         st.sampled_from([0.0, -1.0, 1e-9, 1e300, float("inf"), float("nan")]))
    if t == d.FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-2**31, 2**31 - 1))
    if t in INT_RANGES:
        lo, hi = INT_RANGES[t]
        return st.one_of(st.integers(lo, hi), st.sampled_from([x for x in (0, 1, -1, lo, hi) if lo <= x <= hi]))
    if t == d.FieldDescriptor.TYPE_MESSAGE:
        return message_of(field.message_type, depth + 1, ids)
    raise AssertionError(f"no strategy for {field.full_name}")


def message_of(desc: d.Descriptor, depth: int, ids: list[str]) -> st.SearchStrategy:
    """A strategy for an instance of the message `desc` (nested down to MAX_DEPTH)."""
    if desc.GetOptions().map_entry:
        return st.tuples(TEXT, TEXT)
    fields = [f for f in desc.fields if depth < MAX_DEPTH or f.type != d.FieldDescriptor.TYPE_MESSAGE]
    if not fields:
        return st.builds(lambda: _new(desc))
    parts = {}
    for f in fields:
        value = field_value(f, depth, ids)
        parts[f.name] = st.none() | (st.lists(value, max_size=3) if _repeated(f) else value)
    return st.fixed_dictionaries(parts).map(lambda values: _fill(desc, values))


def _repeated(f: d.FieldDescriptor) -> bool:
    return f.is_repeated


def _new(desc: d.Descriptor):
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(desc)()


def _fill(desc: d.Descriptor, values: dict):
    msg = _new(desc)
    for name, value in values.items():
        if value is None:
            continue
        f = desc.fields_by_name[name]
        target = getattr(msg, name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            target.update(dict(value))
        elif _repeated(f) and f.type == d.FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        elif _repeated(f):
            target.extend(value)
        elif f.type == d.FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


def _methods():
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    for service_name in SERVICE_NAMES:
        for method in pool.FindServiceByName(service_name).methods:
            yield service_name, method


METHODS = list(_methods())


def _invoke(target, service: str, method: d.MethodDescriptor, payload: bytes):
    """Sends raw bytes to one method; returns the status code (OK on success)."""
    channel = target["channel"]
    token = target["admin"] if service.endswith("AdminService") else target["tokens"]["fuzz"]
    path = f"/{service}/{method.name}"
    try:
        if method.server_streaming:
            call = channel.unary_stream(path)(payload, metadata=token, timeout=0.5)
            for _ in call:
                pass
        else:
            channel.unary_unary(path)(payload, metadata=token, timeout=CALL_TIMEOUT)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    return grpc.StatusCode.OK, ""


def _allowed(method: d.MethodDescriptor, code: grpc.StatusCode) -> bool:
    if code in BAD:
        return False
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        # Only calls that wait on purpose may run out of time.
        return method.server_streaming or method.name in ("WaitExecution", "TriggerJob")
    return True


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_requests_never_break_the_engine(target, data):
    service, method = data.draw(st.sampled_from(METHODS), label="method")
    request = data.draw(message_of(method.input_type, 0, target["ids"]), label="request")
    code, details = _invoke(target, service, method, request.SerializeToString())
    assert _allowed(method, code), f"{method.full_name}: {code} {details}\n{request}"


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_bytes_that_are_not_messages_are_refused_cleanly(target, data):
    service, method = data.draw(st.sampled_from(METHODS), label="method")
    payload = data.draw(st.one_of(st.binary(max_size=200), st.sampled_from([
        b"\xff" * 10, b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05ab", b"\x12\x03\xc3\x28x", b"\x0a\x02\xed\xa0",
    ])), label="payload")
    code, details = _invoke(target, service, method, payload)
    assert _allowed(method, code), f"{method.full_name}: {code} {details}\n{payload!r}"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert details


def _template(method: d.MethodDescriptor, target, name: str):
    """A valid request for `method`, on the fuzz owner's own things."""
    msg = _new(method.input_type)
    own = target["own"]
    valid = {"job": own["job"], "user_id": "u", "execution_id": own["execution"], "name": name,
             "owner": "fuzz", "count": 5}
    for field in method.input_type.fields:
        if field.name in valid and not field.is_repeated:
            setattr(msg, field.name, valid[field.name])
    spec = pb.JobSpec(name=name, artifact=pb.Artifact(source=SOURCE), user_id="u", paused=True,
                      schedule=pb.Schedule(interval=pb.Interval(seconds=3600)))
    if "spec" in method.input_type.fields_by_name:
        msg.spec.CopyFrom(spec)
    if "jobs" in method.input_type.fields_by_name:
        msg.jobs.add().CopyFrom(spec)
    if "schedule" in method.input_type.fields_by_name:
        msg.schedule.CopyFrom(spec.schedule)
    return msg


def _graft(data, template, random) -> None:
    """Copies a few of `random`'s set fields (recursively) into `template`."""
    for field, value in random.ListFields():
        if not data.draw(st.integers(0, 2), label=f"take {field.name}") == 0:
            continue
        if field.type == d.FieldDescriptor.TYPE_MESSAGE and not field.is_repeated \
                and template.HasField(field.name) and data.draw(st.booleans(), label="recurse"):
            _graft(data, getattr(template, field.name), value)
        elif field.is_repeated or field.type == d.FieldDescriptor.TYPE_MESSAGE:
            template.ClearField(field.name)
            getattr(template, field.name).MergeFrom(value)
        else:
            setattr(template, field.name, value)


NAMES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_nearly_valid_requests_never_break_the_engine(target, data):
    """A valid request with a few fields replaced, so the checks past the first are reached."""
    service, method = data.draw(st.sampled_from(METHODS), label="method")
    request = _template(method, target, data.draw(NAMES, label="name"))
    _graft(data, request, data.draw(message_of(method.input_type, 0, target["ids"]), label="random"))
    code, details = _invoke(target, service, method, request.SerializeToString())
    assert _allowed(method, code), f"{method.full_name}: {code} {details}\n{request}"


def test_afterwards_the_engine_answers_and_nothing_was_lost(target):
    """Runs last in this module: the engine is alive, the store intact, keeper's jobs unchanged."""
    server = target["server"]
    stub = jobs_pb2_grpc.JobServiceStub(target["channel"])
    keeper = target["tokens"]["keeper"]
    for before in target["kept"]:
        after = stub.GetJob(jobs_pb2.GetJobRequest(job=before.id), metadata=keeper)
        assert after == before
    assert server.engine.store.integrity_check() == "ok"
    run = stub.TriggerJob(jobs_pb2.TriggerJobRequest(job=target["kept"][0].id, wait=True, wait_timeout_seconds=30),
                          metadata=keeper).execution
    assert run.status == pb.EXECUTION_STATUS_SUCCEEDED


@pytest.mark.parametrize("payload, field", [
    pytest.param(b"\x0a\x05ab", "request", id="truncated-bytes"),
    pytest.param(pb.JobSpec(name="x").SerializeToString() + b"\xff", "request", id="trailing-garbage"),
])
def test_bytes_that_do_not_parse_are_invalid_argument_naming_the_request(target, payload, field):
    call = target["channel"].unary_unary("/capsule.v1.JobService/GetJob")
    with pytest.raises(grpc.RpcError) as info:
        call(payload, metadata=target["tokens"]["fuzz"], timeout=CALL_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(f"{field}: is not a valid capsule.v1.GetJobRequest message")


@pytest.mark.parametrize("schedule, field", [
    pytest.param(pb.Schedule(once=pb.Once(at=dict(seconds=2**62))), "schedule.once.at", id="timestamp-out-of-range"),
    pytest.param(pb.Schedule(interval=pb.Interval(seconds=60, start_at=dict(nanos=-1))),
                 "schedule.interval.start_at", id="negative-nanos"),
    pytest.param(pb.Schedule(interval=pb.Interval(seconds=2**40)), "schedule.interval.seconds", id="huge-interval"),
    pytest.param(pb.Schedule(catchup_window_seconds=2**60), "schedule.catchup_window_seconds", id="huge-window"),
])
def test_out_of_range_numbers_are_invalid_argument_naming_the_field(target, schedule, field):
    stub = jobs_pb2_grpc.JobServiceStub(target["channel"])
    with pytest.raises(grpc.RpcError) as info:
        stub.PreviewSchedule(jobs_pb2.PreviewScheduleRequest(schedule=schedule), metadata=target["tokens"]["fuzz"])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in info.value.details()


def _create(target, name: str, **spec):
    stub = jobs_pb2_grpc.JobServiceStub(target["channel"])
    fields = dict(name=name, artifact=pb.Artifact(source=SOURCE))
    fields.update(spec)
    return stub.CreateJob(jobs_pb2.CreateJobRequest(spec=pb.JobSpec(**fields)), metadata=target["tokens"]["fuzz"])


@pytest.mark.parametrize("spec, code, field", [
    pytest.param(dict(schedule=pb.Schedule(cron=pb.Cron(expression="0 0 30 2 *"))), "INVALID_ARGUMENT",
                 "cron.expression", id="cron-that-never-fires"),
    pytest.param(dict(schedule=pb.Schedule(once=pb.Once(at=dict(seconds=253402300799)))), "INVALID_ARGUMENT",
                 "spec.schedule.once.at", id="once-in-year-9999"),
    pytest.param(dict(metadata_json='{"a": NaN}'), "INVALID_ARGUMENT", "spec.metadata_json", id="nan-in-metadata"),
    pytest.param(dict(limits=pb.Limits(memory_mb=-5)), "INVALID_ARGUMENT", "spec.limits.memory_mb",
                 id="negative-memory"),
    pytest.param(dict(limits=pb.Limits(output_bytes=2**40)), "INVALID_ARGUMENT", "spec.limits.output_bytes",
                 id="huge-output-cap"),
    pytest.param(dict(artifact=pb.Artifact(source="x" * 300_000)), "RESOURCE_EXHAUSTED", "spec.artifact.source",
                 id="huge-source"),
    pytest.param(dict(metadata_json='{"a": "' + "x" * 70_000 + '"}'), "RESOURCE_EXHAUSTED", "spec.metadata_json",
                 id="huge-metadata"),
])
def test_bad_specs_are_refused_naming_the_field(target, spec, code, field):
    with pytest.raises(grpc.RpcError) as info:
        _create(target, "refused", **spec)
    assert info.value.code().name == code and field in info.value.details(), info.value.details()


def test_the_scheduler_survives_far_instants_and_answers_afterwards(target):
    """A far-future once-job used to overflow the scheduler's sleep and stop its thread."""
    _create(target, "far-but-allowed", schedule=pb.Schedule(once=pb.Once(at=dict(seconds=7258118400))))
    stub = jobs_pb2_grpc.JobServiceStub(target["channel"])
    job = _create(target, "soon").job
    run = stub.TriggerJob(jobs_pb2.TriggerJobRequest(job=job.id, wait=True, wait_timeout_seconds=30),
                          metadata=target["tokens"]["fuzz"]).execution
    assert run.status == pb.EXECUTION_STATUS_SUCCEEDED


@pytest.mark.parametrize("method, request_, field", [
    pytest.param("ListJobs", jobs_pb2.ListJobsRequest(page_token="99999999999999999999999:a:b"), "page_token",
                 id="job-cursor-overflow"),
    pytest.param("ListExecutions", None, "page_token", id="execution-cursor-overflow"),
])
def test_page_tokens_that_overflow_are_invalid_argument(target, method, request_, field):
    if method == "ListJobs":
        call = jobs_pb2_grpc.JobServiceStub(target["channel"]).ListJobs
    else:
        call = executions_pb2_grpc.ExecutionServiceStub(target["channel"]).ListExecutions
        request_ = executions_pb2.ListExecutionsRequest(page_token="9" * 25)
    with pytest.raises(grpc.RpcError) as info:
        call(request_, metadata=target["tokens"]["fuzz"])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in info.value.details()


def test_a_huge_unknown_id_gets_a_short_not_found(target):
    stub = jobs_pb2_grpc.JobServiceStub(target["channel"])
    with pytest.raises(grpc.RpcError) as info:
        stub.GetJob(jobs_pb2.GetJobRequest(job="job_" + "x" * 300_000), metadata=target["tokens"]["fuzz"])
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and len(info.value.details()) < 400


def test_a_wait_its_client_abandoned_frees_its_server_thread(target):
    spin = "def execute(job):\n    while True:\n        pass\n"
    job = _create(target, "spins", artifact=pb.Artifact(source=spin), timeout_seconds=5).job
    stub = executions_pb2_grpc.ExecutionServiceStub(target["channel"])
    run = jobs_pb2_grpc.JobServiceStub(target["channel"]).TriggerJob(
        jobs_pb2.TriggerJobRequest(job=job.id), metadata=target["tokens"]["fuzz"]).execution
    long_calls = target["server"].long_calls
    held = long_calls.in_use("fuzz")
    with pytest.raises(grpc.RpcError) as info:
        stub.WaitExecution(executions_pb2.WaitExecutionRequest(execution_id=run.id, timeout_seconds=60),
                           metadata=target["tokens"]["fuzz"], timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # Freed within about a second, before the run ends (5 s) or the wait would (60 s).
    deadline = time.monotonic() + 3
    while long_calls.in_use("fuzz") > held:
        assert time.monotonic() < deadline, "the abandoned wait still holds its slot"
        time.sleep(0.05)
    running = stub.GetExecution(executions_pb2.GetExecutionRequest(execution_id=run.id),
                                metadata=target["tokens"]["fuzz"])
    assert running.status == pb.EXECUTION_STATUS_RUNNING


def test_open_streams_and_waits_cannot_take_every_server_thread(target):
    """Waiting calls are capped per owner and below the server's threads: past a cap
    they are refused at once, another owner still gets its share, short calls answer."""
    from capsule.v1 import messages_pb2, messages_pb2_grpc

    from engine import services

    stub = messages_pb2_grpc.MessageServiceStub(target["channel"])
    fuzz, keeper = target["tokens"]["fuzz"], target["tokens"]["keeper"]
    total = server_module.GRPC_THREADS - server_module.SHORT_CALL_THREADS
    per_owner = services.MAX_LONG_CALLS_PER_OWNER

    def open_stream(token, timeout=60):
        return stub.StreamMessages(messages_pb2.ListMessagesRequest(user_id="nobody"), metadata=token,
                                   timeout=timeout)

    long_calls = target["server"].long_calls

    def wait_until(owner: str, count: int) -> None:
        deadline = time.monotonic() + 60
        while long_calls.in_use(owner) < count:  # the streams opened are all being served
            assert time.monotonic() < deadline, f"{owner} holds {long_calls.in_use(owner)} slots, not {count}"
            time.sleep(0.05)

    def refusal(token) -> str:
        with pytest.raises(grpc.RpcError) as info:
            next(open_stream(token, timeout=30))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return info.value.details()

    # Calls of earlier tests that their clients abandoned end within a second or so
    # (waits and streams check that their client is still there): start from none.
    deadline = time.monotonic() + 30
    while long_calls.in_use():
        assert time.monotonic() < deadline, f"{long_calls.in_use()} waiting calls are still held"
        time.sleep(0.05)
    streams = [open_stream(fuzz) for _ in range(per_owner)]
    try:
        wait_until("fuzz", per_owner)
        assert "owner 'fuzz' already has" in refusal(fuzz)
        streams += [open_stream(keeper) for _ in range(total - per_owner)]
        wait_until("keeper", total - per_owner)
        assert "the engine already serves" in refusal(keeper)
        jobs = jobs_pb2_grpc.JobServiceStub(target["channel"])
        assert jobs.ListJobs(jobs_pb2.ListJobsRequest(), metadata=fuzz, timeout=5) is not None
    finally:
        for stream in streams:
            stream.cancel()
