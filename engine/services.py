"""The gRPC edge: authenticate, convert wire <-> domain, call the engine, map errors.

Every handler is wrapped by `_rpc`, the one error boundary: engine errors become their
gRPC status with the message; bad wire values (ConversionError, ScheduleError) become
INVALID_ARGUMENT; anything unexpected is logged and answered INTERNAL without taking
the engine down.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from dataclasses import replace
import logging
import platform
from datetime import timedelta
from importlib import metadata as importlib_metadata
from typing import Any, Callable, Iterable, Iterator

from google.protobuf.message import Message as ProtoMessage

import grpc

from capsule.v1 import admin_pb2, admin_pb2_grpc, executions_pb2, executions_pb2_grpc
from capsule.v1 import jobs_pb2, jobs_pb2_grpc, messages_pb2, messages_pb2_grpc
from capsule.v1 import types_pb2 as pb
from engine import convert, schedules
from engine.convert import ConversionError
from engine.core import Engine, check_wait_timeout
from engine.errors import CapsuleError, InvalidArgument, PermissionDenied, QuotaExceeded, Unauthenticated
from engine.model import Job, JobKind
from engine.schedules import ScheduleError
from engine.store import Caller, list_cursor
from engine.validation import check_name

log = logging.getLogger("capsule.services")

MAX_PAGE = 1000
MAX_LABEL = 200
MAX_DETAILS = 2000
MAX_DEPLOY_JOBS = 1000
MAX_LONG_CALLS = 24  # of the server's 32 threads; the rest stay for short calls
MAX_LONG_CALLS_PER_OWNER = 16
REPLY_BUDGET = 3 * 1024 * 1024  # of a list reply, under the 4 MiB gRPC cap
MAX_CLEANUP_DAYS = 36_500  # a century: more is a typo, and overflows dates
STREAM_POLL_SECONDS = 1.0


class MalformedRequest:
    """Stands for request bytes that did not parse as the method's message, so the
    error boundary can answer INVALID_ARGUMENT (gRPC itself would answer INTERNAL)."""

    def __init__(self, message_name: str, reason: str) -> None:
        self.message_name = message_name
        self.reason = reason

    def error(self) -> InvalidArgument:
        return InvalidArgument("request", f"is not a valid {self.message_name} message ({self.reason[:200]}); "
                                          "build it from proto/capsule/v1 and check the method")


def lenient_parser(message_class: type) -> Callable[[bytes], Any]:
    """A request deserializer that never raises: bad bytes become a MalformedRequest."""
    name = message_class.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except Exception as exc:  # protobuf's DecodeError, or anything its parser throws
            return MalformedRequest(name, str(exc) or type(exc).__name__)

    return parse


def _rpc(handler: Callable) -> Callable:
    @functools.wraps(handler)
    def wrapper(self: "_Service", request: Any, context: grpc.ServicerContext) -> Any:
        try:
            caller = self.authenticate(context)
            if isinstance(request, MalformedRequest):
                raise request.error()
            return handler(self, caller, request, context)
        except CapsuleError as exc:
            context.abort(exc.status, _details(exc.message))
        except (ConversionError, ScheduleError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, _details(str(exc)))
        except Exception:
            log.exception("unexpected error", extra={"action": handler.__name__})
            context.abort(grpc.StatusCode.INTERNAL, "the engine failed on this request; see its log")
    return wrapper


def _details(message: str) -> str:
    """An error message short enough for gRPC's trailing metadata (16 KiB at most)."""
    return message if len(message) <= MAX_DETAILS else message[:MAX_DETAILS] + "..."


class LongCalls:
    """Bounds the calls that hold a server thread while they wait (streams, waits), so
    that however many of them clients open, short calls always find a free thread, and
    one owner cannot take every slot from the others."""

    def __init__(self, limit: int = MAX_LONG_CALLS, per_owner: int = MAX_LONG_CALLS_PER_OWNER) -> None:
        self.limit = limit
        self.per_owner = per_owner
        self._lock = threading.Lock()
        self._total = 0
        self._by_owner: dict[str, int] = {}

    def in_use(self, owner: str | None = None) -> int:
        """Slots taken, by everyone or by one owner ("" for the admin)."""
        with self._lock:
            return self._total if owner is None else self._by_owner.get(owner, 0)

    @contextmanager
    def slot(self, caller: Caller, what: str) -> Iterator[None]:
        key = "" if caller.admin else caller.owner
        with self._lock:
            if self._total >= self.limit:
                raise QuotaExceeded(what, f"the engine already serves {self.limit} waiting calls and streams; "
                                          "retry shortly, or poll without waiting")
            if key and self._by_owner.get(key, 0) >= self.per_owner:
                raise QuotaExceeded(what, f"owner {key!r} already has {self.per_owner} waiting calls and streams "
                                          "open; close some, or poll without waiting")
            self._total += 1
            self._by_owner[key] = self._by_owner.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._total -= 1
                self._by_owner[key] -= 1
                if not self._by_owner[key]:
                    del self._by_owner[key]


class _Service:
    def __init__(self, engine: Engine, long_calls: LongCalls | None = None) -> None:
        self.engine = engine
        self.long_calls = long_calls or LongCalls()

    def authenticate(self, context: grpc.ServicerContext) -> Caller:
        for key, value in context.invocation_metadata():
            if key == "authorization" and value.startswith("Bearer "):
                caller = self.engine.store.resolve_token(value[len("Bearer "):].strip())
                if caller is not None:
                    return caller
                raise Unauthenticated("the token is unknown or revoked; use a valid token (CAPSULE_TOKEN)")
        raise Unauthenticated("no token: send 'authorization: Bearer <token>' metadata "
                              "(the admin token is in $CAPSULE_HOME/admin.token)")

    def job_pb(self, job: Job) -> pb.Job:
        if not job.active:
            # The stored next_run is where a paused job resumes; it is not a coming fire.
            job = replace(job, next_run=None)
        schedule = self.engine.schedule_of(job)
        return convert.job_to_pb(job, schedule, self.engine.next_fire_times(job, schedule),
                                 self.engine.retention_of(job))


def _fitting(items: Iterable[ProtoMessage]) -> list[ProtoMessage]:
    """The leading items that fit one reply (at least one): a page of large results or
    metadata is cut short, and its page token continues after the last one sent."""
    out: list[ProtoMessage] = []
    size = 0
    for item in items:
        size += item.ByteSize() + 16
        if out and size > REPLY_BUDGET:
            break
        out.append(item)
    return out


def _page_size(value: int, default: int, field: str) -> int:
    if value < 0 or value > MAX_PAGE:
        raise InvalidArgument(field, f"must be between 1 and {MAX_PAGE}, got {value}")
    return value or default


class JobService(_Service, jobs_pb2_grpc.JobServiceServicer):
    @_rpc
    def CreateJob(self, caller: Caller, request: jobs_pb2.CreateJobRequest, context) -> jobs_pb2.CreateJobResponse:
        spec = convert.spec_from_pb(request.spec, JobKind.DYNAMIC)
        job, version = self.engine.create_job(caller, spec)
        return jobs_pb2.CreateJobResponse(job=self.job_pb(job), version=convert.version_to_pb(version))

    @_rpc
    def GetJob(self, caller: Caller, request: jobs_pb2.GetJobRequest, context) -> pb.Job:
        return self.job_pb(self.engine.get_job(caller, request.job))

    @_rpc
    def ListJobs(self, caller: Caller, request: jobs_pb2.ListJobsRequest, context) -> jobs_pb2.ListJobsResponse:
        limit = _page_size(request.page_size, 100, "page_size")
        try:
            jobs = self.engine.store.list_jobs(
                caller.scope, include_dynamic=request.include_dynamic, include_finished=request.include_finished,
                search=request.search, user_id=request.user_id, limit=limit, after=request.page_token or None)
        except (ValueError, OverflowError):
            raise InvalidArgument("page_token", "is not a token this engine gave; pass next_page_token back unchanged")
        out = _fitting(self.job_pb(j) for j in jobs)
        token = list_cursor(jobs[len(out) - 1]) if len(jobs) == limit or len(out) < len(jobs) else ""
        return jobs_pb2.ListJobsResponse(jobs=out, next_page_token=token)

    @_rpc
    def UpdateJob(self, caller: Caller, request: jobs_pb2.UpdateJobRequest, context) -> jobs_pb2.CreateJobResponse:
        changes: dict[str, Any] = {}
        if request.HasField("description"):
            changes["description"] = request.description
        if request.HasField("artifact"):
            changes["artifact"] = convert.artifact_from_pb(request.artifact)
        if request.HasField("schedule"):
            changes["schedule"] = convert.schedule_from_pb(request.schedule)
        if request.HasField("timeout_seconds"):
            changes["timeout_seconds"] = request.timeout_seconds or None
        if request.HasField("retry"):
            changes["retry"] = convert.retry_from_pb(request.retry)
        if request.HasField("isolation"):
            changes["isolation"] = convert.isolation_from_pb(request.isolation)
        if request.HasField("limits"):
            changes["limits"] = convert.limits_from_pb(request.limits)
        if request.HasField("retention"):
            changes["retention"] = convert.retention_from_pb(request.retention)
        job, version = self.engine.update_job(caller, request.job, changes)
        return jobs_pb2.CreateJobResponse(job=self.job_pb(job), version=convert.version_to_pb(version))

    @_rpc
    def UpdateMetadata(self, caller: Caller, request: jobs_pb2.UpdateMetadataRequest, context) -> pb.Job:
        metadata = convert.json_object_from_text(request.metadata_json, "metadata_json")
        return self.job_pb(self.engine.update_metadata(caller, request.job, metadata, request.replace))

    @_rpc
    def ActivateJob(self, caller: Caller, request: jobs_pb2.JobRef, context) -> pb.Job:
        return self.job_pb(self.engine.set_active(caller, request.job, True))

    @_rpc
    def DeactivateJob(self, caller: Caller, request: jobs_pb2.JobRef, context) -> pb.Job:
        return self.job_pb(self.engine.set_active(caller, request.job, False))

    @_rpc
    def DeleteJob(self, caller: Caller, request: jobs_pb2.JobRef, context) -> jobs_pb2.DeleteJobResponse:
        return jobs_pb2.DeleteJobResponse(archived=self.engine.delete_job(caller, request.job))

    @_rpc
    def DeployJobs(self, caller: Caller, request: jobs_pb2.DeployJobsRequest, context) -> jobs_pb2.DeployJobsResponse:
        if len(request.jobs) > MAX_DEPLOY_JOBS:
            raise InvalidArgument("jobs", f"{len(request.jobs)} jobs in one deploy; send at most {MAX_DEPLOY_JOBS}")
        specs = [convert.spec_from_pb(s, JobKind.PREDEFINED, f"jobs[{i}]") for i, s in enumerate(request.jobs)]
        results = self.engine.deploy(caller, specs, dry_run=request.dry_run, prune=request.prune)
        out, size = jobs_pb2.DeployJobsResponse(), 0
        for name, action, job in results:
            item = out.results.add(name=name, action=convert.deploy_action_to_pb(action))
            if job is not None:
                item.job.CopyFrom(self.job_pb(job))
                size += item.ByteSize()
                if size > REPLY_BUDGET:  # keep the reply under 4 MiB: the rest name their job only
                    item.ClearField("job")
        return out

    @_rpc
    def TriggerJob(self, caller: Caller, request: jobs_pb2.TriggerJobRequest, context) -> jobs_pb2.TriggerJobResponse:
        if not request.wait:
            execution = self.engine.trigger(caller, request.job, version_id=request.version_id,
                                            number=request.version_number, force=request.force)
            return jobs_pb2.TriggerJobResponse(execution=convert.execution_to_pb(execution))
        timeout = request.wait_timeout_seconds or 60.0
        check_wait_timeout(timeout, "wait_timeout_seconds")  # before the trigger: a refused call runs nothing
        with self.long_calls.slot(caller, "wait"):  # taken before the trigger, for the same reason
            execution = self.engine.trigger(caller, request.job, version_id=request.version_id,
                                            number=request.version_number, force=request.force)
            execution = self.engine.wait_execution(caller, execution.id, timeout, context.is_active)
        return jobs_pb2.TriggerJobResponse(execution=convert.execution_to_pb(execution))

    @_rpc
    def ListVersions(self, caller: Caller, request: jobs_pb2.JobRef, context) -> jobs_pb2.ListVersionsResponse:
        out, size = jobs_pb2.ListVersionsResponse(), 0
        for version, artifact in self.engine.versions(caller, request.job):
            item = out.versions.add()
            item.CopyFrom(convert.version_to_pb(version, artifact))
            size += item.ByteSize()
            if size > REPLY_BUDGET:  # keep the reply under 4 MiB: older versions come without source
                item.source = ""
        return out

    @_rpc
    def ActivateVersion(self, caller: Caller, request: jobs_pb2.ActivateVersionRequest, context) -> pb.Job:
        return self.job_pb(self.engine.activate_version(caller, request.job, request.version_id,
                                                        request.version_number))

    @_rpc
    def PreviewSchedule(self, caller: Caller, request: jobs_pb2.PreviewScheduleRequest, context
                        ) -> jobs_pb2.PreviewScheduleResponse:
        count = request.count or 5
        if not 1 <= count <= 100:
            raise InvalidArgument("count", f"must be between 1 and 100, got {count}")
        schedule = convert.schedule_from_pb(request.schedule)
        after = convert.ts_from_pb(request, "after") or self.engine.clock.now()
        fires = self.engine.upcoming(schedule, after, count) if schedule else []
        return jobs_pb2.PreviewScheduleResponse(fire_times=[convert.ts_to_pb(t) for t in fires],
                                                schedule_human=schedules.describe(schedule))


class ExecutionService(_Service, executions_pb2_grpc.ExecutionServiceServicer):
    @_rpc
    def GetExecution(self, caller: Caller, request: executions_pb2.GetExecutionRequest, context) -> pb.Execution:
        return convert.execution_to_pb(self.engine.store.get_execution(caller.scope, request.execution_id))

    @_rpc
    def WaitExecution(self, caller: Caller, request: executions_pb2.WaitExecutionRequest, context) -> pb.Execution:
        with self.long_calls.slot(caller, "wait"):
            execution = self.engine.wait_execution(caller, request.execution_id, request.timeout_seconds or 60.0,
                                                   context.is_active)
        return convert.execution_to_pb(execution)

    @_rpc
    def ListExecutions(self, caller: Caller, request: executions_pb2.ListExecutionsRequest, context
                       ) -> executions_pb2.ListExecutionsResponse:
        limit = _page_size(request.limit, 20, "limit")
        job_id = self.engine.get_job(caller, request.job).id if request.job else None
        statuses = [convert.execution_status_from_pb(s, f"statuses[{i}]") for i, s in enumerate(request.statuses)]
        before = _int_token(request.page_token)
        rows = self.engine.store.list_executions(caller.scope, job_id=job_id, statuses=statuses,
                                                 since=convert.ts_from_pb(request, "since"), limit=limit,
                                                 before_seq=before)
        out = _fitting(convert.execution_to_pb(e) for e, _ in rows)
        token = str(rows[len(out) - 1][1]) if len(rows) == limit or len(out) < len(rows) else ""
        return executions_pb2.ListExecutionsResponse(executions=out, next_page_token=token)

    @_rpc
    def CancelExecution(self, caller: Caller, request: executions_pb2.GetExecutionRequest, context) -> pb.Execution:
        return convert.execution_to_pb(self.engine.cancel_execution(caller, request.execution_id))

    @_rpc
    def CleanupExecutions(self, caller: Caller, request: executions_pb2.CleanupExecutionsRequest, context
                          ) -> executions_pb2.CleanupExecutionsResponse:
        if not 0 <= request.older_than_days <= MAX_CLEANUP_DAYS:
            raise InvalidArgument("older_than_days", f"must be between 0 and {MAX_CLEANUP_DAYS}, "
                                                     f"got {request.older_than_days}")
        job_id = self.engine.get_job(caller, request.job).id if request.job else None
        before = self.engine.clock.now() - timedelta(days=request.older_than_days)
        report = self.engine.store.cleanup_report(caller.scope, before, job_id=job_id, dry_run=request.dry_run)
        return convert.cleanup_report_to_pb(report)


def _int_token(token: str) -> int | None:
    if not token:
        return None
    if not (token.isascii() and token.isdigit()) or len(token) > 18:
        raise InvalidArgument("page_token", "is not a token this engine gave; pass next_page_token back unchanged")
    return int(token)


class MessageService(_Service, messages_pb2_grpc.MessageServiceServicer):
    @_rpc
    def ListMessages(self, caller: Caller, request: messages_pb2.ListMessagesRequest, context
                     ) -> messages_pb2.ListMessagesResponse:
        _require_user(request.user_id)
        limit = _page_size(request.limit, 100, "limit")
        messages = self.engine.store.list_messages(caller.scope, request.user_id, request.after_id or None, limit)
        out = _fitting(convert.message_to_pb(m) for m in messages)
        return messages_pb2.ListMessagesResponse(messages=out, more=len(out) < len(messages))

    def StreamMessages(self, request: messages_pb2.ListMessagesRequest, context: grpc.ServicerContext
                       ) -> Iterator[pb.Message]:
        try:
            caller = self.authenticate(context)
            if isinstance(request, MalformedRequest):
                raise request.error()
            _require_user(request.user_id)
            with self.long_calls.slot(caller, "stream"):
                yield from self._stream(caller, request, context)
        except CapsuleError as exc:
            context.abort(exc.status, exc.message)
        except Exception:
            log.exception("unexpected error", extra={"action": "StreamMessages"})
            context.abort(grpc.StatusCode.INTERNAL, "the engine failed on this request; see its log")

    def _stream(self, caller: Caller, request: messages_pb2.ListMessagesRequest, context) -> Iterator[pb.Message]:
        after = request.after_id or None
        seen = self.engine.messages.generation()
        while context.is_active():
            for message in self.engine.store.list_messages(caller.scope, request.user_id, after, MAX_PAGE):
                yield convert.message_to_pb(message)
                after = message.id
            seen = self.engine.messages.wait(seen, STREAM_POLL_SECONDS)


def _require_user(user_id: str) -> None:
    if not user_id:
        raise InvalidArgument("user_id", "is required; pass the id of the user whose messages you want")


class AdminService(_Service, admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, engine: Engine, info: dict[str, Any], long_calls: LongCalls | None = None) -> None:
        super().__init__(engine, long_calls)
        self.info = info

    @_rpc
    def GetServerInfo(self, caller: Caller, request: admin_pb2.GetServerInfoRequest, context) -> admin_pb2.ServerInfo:
        out = admin_pb2.ServerInfo(
            version=_version(), store_path=str(self.engine.store.path) if caller.admin else "", listen_address=self.info["listen"],
            owner=caller.owner, admin=caller.admin, python_version=platform.python_version(),
            isolation_layers=[admin_pb2.IsolationLayer(name=n, active=a, detail=d)
                              for n, a, d in self.info["layers"]])
        out.started_at.CopyFrom(convert.ts_to_pb(self.info["started_at"]))
        return out

    @_rpc
    def CreateOwner(self, caller: Caller, request: admin_pb2.CreateOwnerRequest, context) -> admin_pb2.Owner:
        _require_admin(caller)
        check_name(request.name, "name", what="owner", example="acme")
        limits = convert.owner_limits_from_pb(request.limits)
        owner = self.engine.store.create_owner(request.name, request.trusted_allowed, self.engine.clock.now(),
                                               limits)
        return convert.owner_to_pb(owner)

    @_rpc
    def ListOwners(self, caller: Caller, request: admin_pb2.ListOwnersRequest, context) -> admin_pb2.ListOwnersResponse:
        _require_admin(caller)
        return admin_pb2.ListOwnersResponse(owners=[convert.owner_to_pb(o) for o in self.engine.store.owners()])

    @_rpc
    def CreateToken(self, caller: Caller, request: admin_pb2.CreateTokenRequest, context
                    ) -> admin_pb2.CreateTokenResponse:
        _require_admin(caller)
        check_name(request.owner, "owner", what="owner", example="acme")
        if len(request.label) > MAX_LABEL:
            raise InvalidArgument("label", f"is {len(request.label)} characters; keep it under {MAX_LABEL}")
        token_id, secret = self.engine.store.create_token(request.owner, request.label, self.engine.clock.now())
        return admin_pb2.CreateTokenResponse(token_id=token_id, token=secret)

    @_rpc
    def RevokeToken(self, caller: Caller, request: admin_pb2.RevokeTokenRequest, context
                    ) -> admin_pb2.RevokeTokenResponse:
        _require_admin(caller)
        if not request.token_id:
            raise InvalidArgument("token_id", "is required; pass the id `capsule tokens create` printed (tok_...)")
        self.engine.store.revoke_token(request.token_id, self.engine.clock.now())
        return admin_pb2.RevokeTokenResponse()


def _require_admin(caller: Caller) -> None:
    if not caller.admin:
        raise PermissionDenied("only the admin token manages owners and tokens")


def _version() -> str:
    try:
        return importlib_metadata.version("capsule-jobs")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"

