"""The Python client: `Jobs` (a connection to an engine), `JobHandle`, `Execution`, and
`Job` (the definition of a predefined job, for `Jobs.deploy`).

Protobuf stays inside `Jobs`: requests are built there, answers are converted with
`engine.convert`, and every failed call
becomes a typed `CapsuleError` in `Jobs._translate`. `JobHandle` and `Execution` speak
the domain (`engine.model`) and ask their `Jobs` for anything that crosses the wire.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import grpc

from capsule.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    executions_pb2,
    executions_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    messages_pb2,
    messages_pb2_grpc,
)
from capsule.v1 import types_pb2 as pb
from client.bundle import bundle, isolation_of
from client.errors import InvalidArgument, Unauthenticated, from_rpc_error
from engine import convert, model
from engine.model import Limits, Retention, Retry
from engine.schedules import Schedule

__all__ = ["Jobs", "Job", "JobHandle", "Execution", "DeployResult", "DEFAULT_ADDRESS"]

DEFAULT_ADDRESS = "127.0.0.1:50051"
_MAX_SERVER_WAIT = 3600.0  # the longest wait one WaitExecution / TriggerJob accepts
_WAIT_MARGIN = 10.0  # added to a call's deadline on top of a server-side wait
_PAGE_SIZE = 500
_MESSAGE_PAGE = 1000
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]

T = TypeVar("T")
Execute = Callable[..., Any] | str


# -- the deploy definition -------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """A predefined job, as an operator declares it in a deploy module.

    `Jobs.deploy([Job(...), ...])` creates or updates each by name, idempotently.
    """

    name: str
    execute: Execute
    schedule: Schedule | None = None
    metadata: Mapping[str, Any] | None = None
    description: str = ""
    timeout: float | None = None
    retry: Retry | None = None
    isolation: str = "restricted"
    limits: Limits | None = None
    retention: Retention | None = None

    def to_spec(self) -> model.JobSpec:
        """The bundled spec (kind predefined); raises before anything is sent."""
        return _spec(
            self.name, self.execute, kind=model.JobKind.PREDEFINED, metadata=self.metadata,
            schedule=self.schedule, timeout=self.timeout, retry=self.retry,
            description=self.description, isolation=self.isolation, limits=self.limits,
            retention=self.retention,
        )


@dataclass(frozen=True)
class DeployResult:
    """What a deploy did (or, on a dry run, would do) to one job."""

    name: str
    action: str  # "created" | "new_version" | "unchanged" | "pruned"
    job: JobHandle | None


# -- the connection -------------------------------------------------------------------------

class Jobs:
    """A connection to a Capsule engine. Use `Jobs.connect()`; close it (or use `with`)."""

    def __init__(self, channel: grpc.Channel, token: str, *, address: str = "", timeout: float = 30.0) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = channel
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._jobs = jobs_pb2_grpc.JobServiceStub(channel)
        self._executions = executions_pb2_grpc.ExecutionServiceStub(channel)
        self._messages = messages_pb2_grpc.MessageServiceStub(channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(channel)

    @classmethod
    def connect(
        cls, address: str | None = None, token: str | None = None, *,
        ca: str | Path | bytes | None = None, timeout: float = 30.0,
    ) -> Jobs:
        """Connect to an engine.

        address: else $CAPSULE_ADDRESS, else 127.0.0.1:50051. token: else $CAPSULE_TOKEN,
        else $CAPSULE_HOME/admin.token (CAPSULE_HOME defaults to ~/.capsule). `ca` (a PEM
        file or its bytes; else $CAPSULE_CA) makes the channel TLS, trusting that CA (or
        the engine's self-signed certificate). `timeout` bounds each call, in seconds.
        The channel connects lazily: an unreachable engine shows on the first call.
        """
        address = address or os.environ.get("CAPSULE_ADDRESS") or DEFAULT_ADDRESS
        token = token or os.environ.get("CAPSULE_TOKEN") or _token_from_home()
        ca = ca or os.environ.get("CAPSULE_CA") or None
        return cls(_open_channel(address, ca), token, address=address, timeout=timeout)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Jobs address={self.address!r}>"

    # -- jobs --------------------------------------------------------------------------------

    def create(
        self, name: str, execute: Execute, *, user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None, schedule: Schedule | None = None,
        timeout: float | None = None, retry: Retry | None = None, description: str = "",
        isolation: str = "restricted", limits: Limits | None = None, paused: bool = False,
        retention: Retention | None = None,
    ) -> JobHandle:
        """Create a dynamic job (version 1). `execute` is checked and bundled first.

        `retention` (e.g. `Retention(keep_last=50, max_age_days=7)`) bounds how many
        finished executions are kept, and for how long; default 1000 and 30 days.
        """
        spec = _spec(
            name, execute, kind=model.JobKind.DYNAMIC, user_id=user_id, metadata=metadata,
            schedule=schedule, timeout=timeout, retry=retry, description=description,
            isolation=isolation, limits=limits, paused=paused, retention=retention,
        )
        response = self._call(self._jobs.CreateJob, jobs_pb2.CreateJobRequest(spec=convert.spec_to_pb(spec)))
        return self._handle(response.job)

    def get_job(self, id_or_name: str) -> JobHandle:
        """One job, by id (`job_…`) or name."""
        return self._handle(self._call(self._jobs.GetJob, jobs_pb2.GetJobRequest(job=id_or_name)))

    def get_all(
        self, include_dynamic: bool = False, include_finished: bool = False,
        search: str | None = None, user_id: str | None = None,
    ) -> list[JobHandle]:
        """Your jobs, predefined first then by name (every page)."""
        request = jobs_pb2.ListJobsRequest(
            include_dynamic=include_dynamic or bool(user_id), include_finished=include_finished,
            search=search or "", user_id=user_id or "", page_size=_PAGE_SIZE,
        )
        pages = self._pages(self._jobs.ListJobs, request, lambda r: r.jobs)
        return [self._handle(msg) for msg in pages]

    def deploy(self, jobs: Sequence[Job], *, dry_run: bool = False, prune: bool = False) -> list[DeployResult]:
        """Create or update predefined jobs by name; every job is bundled before sending.

        `prune` archives (or removes) your predefined jobs not in `jobs`; `dry_run`
        reports the plan and writes nothing.
        """
        specs = [_definition(job).to_spec() for job in jobs]
        _check_unique_names(specs)
        request = jobs_pb2.DeployJobsRequest(
            jobs=[convert.spec_to_pb(s) for s in specs], dry_run=dry_run, prune=prune,
        )
        response = self._call(self._jobs.DeployJobs, request)
        return [self._deploy_result(r) for r in response.results]

    def trigger(
        self, job: str | JobHandle, version_id: str | None = None, *, version: int | None = None,
        wait: bool = False, force: bool = False, timeout: float = 60.0,
    ) -> Execution:
        """Run a job now (its active version, or `version_id` / `version` number).

        With `wait`, answers when the run (retries included) finished or `timeout`
        passed; check `.finished` on the result. `force` ignores the overlap policy.
        """
        wait = wait and timeout > 0
        first_wait = min(timeout, _MAX_SERVER_WAIT) if wait else 0.0
        request = jobs_pb2.TriggerJobRequest(
            job=_ref(job), version_id=version_id or "", version_number=_version_number(version),
            force=force, wait=wait, wait_timeout_seconds=first_wait,
        )
        deadline = first_wait + _WAIT_MARGIN if wait else None
        record = convert.execution_from_pb(self._call(self._jobs.TriggerJob, request, timeout=deadline).execution)
        if wait and not record.status.finished and timeout > first_wait:
            record = self._wait(record.id, timeout - first_wait)
        return Execution(self, record)

    # -- executions -------------------------------------------------------------------------

    def execution(self, execution_id: str) -> Execution:
        """One execution by id."""
        return Execution(self, self._get_execution(execution_id))

    def history(
        self, job: str | JobHandle | None = None, *, limit: int = 20,
        status: str | Iterable[str] | None = None, since: datetime | None = None,
    ) -> list[Execution]:
        """Executions, newest first: of one job (id or name) or all of yours."""
        if limit < 1:
            raise InvalidArgument(f"limit: must be >= 1, got {limit}")
        request = executions_pb2.ListExecutionsRequest(
            job=_ref(job) if job is not None else "", statuses=_statuses(status), limit=min(limit, 1000),
        )
        if since is not None:
            request.since.CopyFrom(convert.ts_to_pb(_aware(since, "since")))
        pages = self._pages(self._executions.ListExecutions, request, lambda r: r.executions, limit)
        return [Execution(self, convert.execution_from_pb(msg)) for msg in pages]

    def cleanup(self, older_than_days: float, dry_run: bool = False, job: str | JobHandle | None = None) -> tuple[int, int]:
        """Remove finished executions older than `older_than_days`: (executions, bytes)."""
        request = executions_pb2.CleanupExecutionsRequest(
            older_than_days=older_than_days, dry_run=dry_run, job=_ref(job) if job is not None else "",
        )
        response = self._call(self._executions.CleanupExecutions, request)
        return response.executions_removed, response.bytes_removed

    def cleanup_report(self, older_than_days: float, dry_run: bool = False,
                       job: str | JobHandle | None = None) -> model.CleanupReport:
        """`cleanup`, saying job by job what was removed (or, with `dry_run`, would be)."""
        request = executions_pb2.CleanupExecutionsRequest(
            older_than_days=older_than_days, dry_run=dry_run, job=_ref(job) if job is not None else "",
        )
        return convert.cleanup_report_from_pb(self._call(self._executions.CleanupExecutions, request), dry_run)

    # -- messages, schedules, the server ------------------------------------------------------

    def messages(self, user_id: str, *, after_id: str | None = None, follow: bool = False) -> Iterator[model.Message]:
        """A user's messages, oldest first, after `after_id`.

        With `follow`, keeps yielding new messages as jobs send them, until you stop
        iterating (close the generator) or the connection ends.
        """
        request = messages_pb2.ListMessagesRequest(user_id=user_id, after_id=after_id or "")
        if follow:
            return self._stream(self._messages.StreamMessages, request, convert.message_from_pb)
        return self._list_messages(request)

    def preview(self, schedule: Schedule, count: int = 5) -> list[datetime]:
        """The next `count` fire times of a schedule, computed by the engine; stores nothing."""
        request = jobs_pb2.PreviewScheduleRequest(schedule=convert.schedule_to_pb(_schedule(schedule)), count=count)
        return convert.timestamps_from_pb(self._call(self._jobs.PreviewSchedule, request).fire_times)

    def server_info(self) -> dict[str, Any]:
        """version, store_path, listen_address, isolation_layers, owner, admin, started_at,
        python_version."""
        return convert.server_info_from_pb(self._call(self._admin.GetServerInfo, admin_pb2.GetServerInfoRequest()))

    # -- owners and tokens (admin token only) -----------------------------------------------------

    def create_owner(self, name: str, *, trusted: bool = False, max_jobs: int | None = None,
                     max_artifact_bytes: int | None = None,
                     max_messages_per_attempt: int | None = None,
                     max_running: int | None = None) -> model.Owner:
        """Create an owner (a tenant); limits left None take the engine's defaults."""
        limits = model.OwnerLimits(max_jobs, max_artifact_bytes, max_messages_per_attempt, max_running)
        request = admin_pb2.CreateOwnerRequest(name=name, trusted_allowed=trusted,
                                               limits=convert.owner_limits_to_pb(limits))
        return convert.owner_from_pb(self._call(self._admin.CreateOwner, request))

    def list_owners(self) -> list[model.Owner]:
        """Every owner with the limits in force, by name."""
        response = self._call(self._admin.ListOwners, admin_pb2.ListOwnersRequest())
        return [convert.owner_from_pb(o) for o in response.owners]

    def create_token(self, owner: str, label: str = "") -> tuple[str, str]:
        """A new token for `owner`: (token id, secret). The secret is shown only now."""
        response = self._call(self._admin.CreateToken, admin_pb2.CreateTokenRequest(owner=owner, label=label))
        return response.token_id, response.token

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token by id; requests carrying it are refused from now on."""
        self._call(self._admin.RevokeToken, admin_pb2.RevokeTokenRequest(token_id=token_id))

    # -- used by JobHandle and Execution ---------------------------------------------------------

    def _update(self, job_id: str, changes: _Changes) -> JobHandle:
        request = jobs_pb2.UpdateJobRequest(job=job_id)
        if changes.description is not None:
            request.description = changes.description
        if changes.artifact is not None:
            request.artifact.CopyFrom(convert.artifact_to_pb(changes.artifact))
        if changes.schedule is not None:
            request.schedule.CopyFrom(convert.schedule_to_pb(changes.schedule))
        if changes.timeout is not None:
            request.timeout_seconds = changes.timeout
        if changes.retry is not None:
            request.retry.CopyFrom(convert.retry_to_pb(changes.retry))
        if changes.isolation is not None:
            request.isolation = convert.isolation_to_pb(changes.isolation)
        if changes.limits is not None:
            request.limits.CopyFrom(convert.limits_to_pb(changes.limits))
        if changes.retention is not None:
            request.retention.CopyFrom(convert.retention_to_pb(changes.retention))
        return self._handle(self._call(self._jobs.UpdateJob, request).job)

    def _update_metadata(self, job_id: str, metadata: Mapping[str, Any], replace: bool) -> JobHandle:
        text = convert.json_text(_metadata(metadata))
        request = jobs_pb2.UpdateMetadataRequest(job=job_id, metadata_json=text, replace=replace)
        return self._handle(self._call(self._jobs.UpdateMetadata, request))

    def _set_active(self, job_id: str, active: bool) -> JobHandle:
        method = self._jobs.ActivateJob if active else self._jobs.DeactivateJob
        return self._handle(self._call(method, jobs_pb2.JobRef(job=job_id)))

    def _delete(self, job_id: str) -> bool:
        return self._call(self._jobs.DeleteJob, jobs_pb2.JobRef(job=job_id)).archived

    def _versions(self, job_id: str) -> list[model.Version]:
        response = self._call(self._jobs.ListVersions, jobs_pb2.JobRef(job=job_id))
        return [convert.version_from_pb(v) for v in response.versions]

    def _rollback(self, job_id: str, version: int | str) -> JobHandle:
        if isinstance(version, str):
            request = jobs_pb2.ActivateVersionRequest(job=job_id, version_id=version)
        else:
            request = jobs_pb2.ActivateVersionRequest(job=job_id, version_number=_version_number(version))
        return self._handle(self._call(self._jobs.ActivateVersion, request))

    def _get_execution(self, execution_id: str) -> model.Execution:
        request = executions_pb2.GetExecutionRequest(execution_id=execution_id)
        return convert.execution_from_pb(self._call(self._executions.GetExecution, request))

    def _cancel(self, execution_id: str) -> model.Execution:
        request = executions_pb2.GetExecutionRequest(execution_id=execution_id)
        return convert.execution_from_pb(self._call(self._executions.CancelExecution, request))

    def _wait(self, execution_id: str, timeout: float) -> model.Execution:
        """The execution (its last attempt) once finished, or its state after `timeout`."""
        remaining = timeout
        while remaining > 0:
            chunk = min(remaining, _MAX_SERVER_WAIT)
            request = executions_pb2.WaitExecutionRequest(execution_id=execution_id, timeout_seconds=chunk)
            record = convert.execution_from_pb(
                self._call(self._executions.WaitExecution, request, timeout=chunk + _WAIT_MARGIN)
            )
            remaining -= chunk
            if record.status.finished or remaining <= 0:
                return record
            execution_id = record.id
        return self._get_execution(execution_id)

    # -- the wire ----------------------------------------------------------------------------

    def _call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        """One unary call with the bearer token and a deadline; errors become CapsuleError."""
        with self._translate():
            return method(request, timeout=timeout or self.timeout, metadata=self._metadata)

    def _stream(self, method: Callable[..., Any], request: Any, read: Callable[[Any], T]) -> Iterator[T]:
        """A server stream, each item read with `read`; cancelled when the caller stops."""
        call = method(request, metadata=self._metadata)
        try:
            with self._translate():
                for msg in call:
                    yield read(msg)
        finally:
            call.cancel()

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """The one place a grpc.RpcError becomes a typed CapsuleError."""
        try:
            yield
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, address=self.address) from None

    def _pages(self, method: Callable[..., Any], request: Any, items: Callable[[Any], Sequence[T]],
               limit: int | None = None) -> list[T]:
        """Every item of a paged list call (up to `limit`), following next_page_token."""
        out: list[T] = []
        while True:
            response = self._call(method, request)
            out.extend(items(response))
            if not response.next_page_token or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out
            request.page_token = response.next_page_token

    def _list_messages(self, request: messages_pb2.ListMessagesRequest) -> Iterator[model.Message]:
        request.limit = _MESSAGE_PAGE
        while True:
            response = self._call(self._messages.ListMessages, request)
            page = response.messages
            yield from (convert.message_from_pb(m) for m in page)
            if len(page) < _MESSAGE_PAGE and not response.more:
                return
            request.after_id = page[-1].id

    def _handle(self, msg: pb.Job) -> JobHandle:
        schedule, schedule_human, next_fire_times = convert.job_extras_from_pb(msg)
        return JobHandle(self, convert.job_from_pb(msg), schedule, schedule_human, next_fire_times,
                         convert.job_retention_from_pb(msg))

    def _deploy_result(self, msg: jobs_pb2.DeployResult) -> DeployResult:
        job = self._handle(msg.job) if msg.HasField("job") else None
        return DeployResult(msg.name, convert.deploy_action_from_pb(msg.action), job)


# -- a job ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Changes:
    """What `JobHandle.update` changes; None keeps the current value."""

    artifact: model.Artifact | None = None
    schedule: Schedule | None = None
    timeout: float | None = None
    retry: Retry | None = None
    description: str | None = None
    isolation: model.Isolation | None = None
    limits: Limits | None = None
    retention: Retention | None = None


class JobHandle:
    """A job on the engine: its latest known state, and the operations on it.

    Methods that change the job update this handle in place and return it.
    """

    def __init__(self, client: Jobs, job: model.Job, schedule: Schedule | None = None,
                 schedule_human: str = "", next_fire_times: Sequence[datetime] = (),
                 retention: Retention | None = None) -> None:
        self._client = client
        self._job = job
        self._schedule = schedule
        self._schedule_human = schedule_human
        self._next_fire_times = list(next_fire_times)
        self._retention = retention or model.DEFAULT_RETENTION

    def __repr__(self) -> str:
        state = self.status.value if self.status else "?"
        if not self.active:
            state += ", paused"
        nxt = f" next_run={self.next_run:%Y-%m-%dT%H:%M:%SZ}" if self.next_run else ""
        return f"<JobHandle {self.name} id={self.id} v{self.version} {state} ({self.schedule_human}){nxt}>"

    # -- state ------------------------------------------------------------------------------

    @property
    def record(self) -> model.Job:
        """The job as the domain value `engine.model.Job`."""
        return self._job

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def name(self) -> str:
        return self._job.name

    @property
    def description(self) -> str:
        return self._job.description

    @property
    def kind(self) -> model.JobKind:
        return self._job.kind

    @property
    def owner(self) -> str:
        return self._job.owner

    @property
    def user_id(self) -> str | None:
        return self._job.user_id

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._job.metadata

    @property
    def active(self) -> bool:
        return self._job.active

    @property
    def status(self) -> model.JobStatus:
        return self._job.status

    @property
    def active_version_id(self) -> str:
        return self._job.active_version_id

    @property
    def active_version_number(self) -> int:
        return self._job.active_version_number

    @property
    def version(self) -> int:
        """The active version's number (same as `active_version_number`)."""
        return self._job.active_version_number

    @property
    def created_at(self) -> datetime:
        return self._job.created_at

    @property
    def next_run(self) -> datetime | None:
        return self._job.next_run

    @property
    def last_run(self) -> datetime | None:
        return self._job.last_run

    @property
    def last_status(self) -> model.ExecutionStatus | None:
        return self._job.last_status

    @property
    def last_error(self) -> str | None:
        return self._job.last_error

    @property
    def run_count(self) -> int:
        return self._job.run_count

    @property
    def schedule(self) -> Schedule | None:
        """The active version's schedule; None means on demand only."""
        return self._schedule

    @property
    def schedule_human(self) -> str:
        """e.g. "every day at 09:00 America/New_York"."""
        return self._schedule_human

    @property
    def next_fire_times(self) -> list[datetime]:
        return list(self._next_fire_times)

    @property
    def retention(self) -> Retention:
        """How long finished executions are kept (the engine's defaults filled in)."""
        return self._retention

    # -- operations --------------------------------------------------------------------------

    def trigger(self, version_id: str | None = None, *, version: int | None = None, wait: bool = False,
                force: bool = False, timeout: float = 60.0) -> Execution:
        """Run now; see `Jobs.trigger`."""
        return self._client.trigger(self.id, version_id, version=version, wait=wait, force=force, timeout=timeout)

    def update(
        self, *, execute: Execute | None = None, schedule: Schedule | None = None, timeout: float | None = None,
        retry: Retry | None = None, description: str | None = None, isolation: str | None = None,
        limits: Limits | None = None, retention: Retention | None = None,
    ) -> JobHandle:
        """Change code or configuration: a new version, made active. None keeps a value.

        New code is bundled under `isolation`, or under the active version's profile.
        """
        profile = isolation_of(isolation) if isolation is not None else None
        changes = _Changes(
            artifact=self._bundle(execute, profile) if execute is not None else None,
            schedule=_schedule(schedule) if schedule is not None else None,
            timeout=_timeout(timeout), retry=_retry(retry), description=description,
            isolation=profile, limits=_limits(limits), retention=_retention(retention),
        )
        return self._adopt(self._client._update(self.id, changes))

    def update_metadata(self, metadata: Mapping[str, Any], *, replace: bool = False) -> JobHandle:
        """Merge `metadata` key by key into the job's (or replace it); no new version."""
        return self._adopt(self._client._update_metadata(self.id, metadata, replace))

    def activate(self) -> JobHandle:
        """Resume scheduled fires."""
        return self._adopt(self._client._set_active(self.id, True))

    def deactivate(self) -> JobHandle:
        """Pause scheduled fires; manual triggers still work."""
        return self._adopt(self._client._set_active(self.id, False))

    def delete(self) -> bool:
        """Archive the job (True) when it has history, else remove it (False)."""
        return self._client._delete(self.id)

    def history(self, limit: int = 20, status: str | Iterable[str] | None = None) -> list[Execution]:
        """This job's executions, newest first."""
        return self._client.history(self.id, limit=limit, status=status)

    def versions(self) -> list[model.Version]:
        """Every version, newest first."""
        return self._client._versions(self.id)

    def rollback(self, version: int | str) -> JobHandle:
        """Make another version (by number, or by id) the active one."""
        return self._adopt(self._client._rollback(self.id, version))

    def refresh(self) -> JobHandle:
        """Reload the job's state from the engine."""
        return self._adopt(self._client.get_job(self.id))

    def _adopt(self, other: JobHandle) -> JobHandle:
        self._job = other._job
        self._schedule = other._schedule
        self._schedule_human = other._schedule_human
        self._next_fire_times = other._next_fire_times
        self._retention = other._retention
        return self

    def _bundle(self, execute: Execute, profile: model.Isolation | None) -> model.Artifact:
        if profile is None:
            profile = self._active_isolation()
        return bundle(execute, isolation=profile)

    def _active_isolation(self) -> model.Isolation:
        active = [v for v in self.versions() if v.id == self.active_version_id]
        return active[0].isolation if active else model.Isolation.RESTRICTED


# -- an execution ------------------------------------------------------------------------------

class Execution:
    """One attempt of one job: its state when last read, and `wait` / `refresh`."""

    def __init__(self, client: Jobs, record: model.Execution) -> None:
        self._client = client
        self._record = record

    def __repr__(self) -> str:
        return (f"<Execution {self.id} job={self.job_name or self.job_id} v{self.version_number} "
                f"attempt {self.attempt} {self.status}>")

    @property
    def record(self) -> model.Execution:
        """The execution as the domain value `engine.model.Execution`."""
        return self._record

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def job_id(self) -> str:
        return self._record.job_id

    @property
    def job_name(self) -> str:
        return self._record.job_name

    @property
    def version_id(self) -> str:
        return self._record.version_id

    @property
    def version_number(self) -> int:
        return self._record.version_number

    @property
    def trigger(self) -> str:
        return self._record.trigger.value if self._record.trigger else ""

    @property
    def scheduled_for(self) -> datetime | None:
        return self._record.scheduled_for

    @property
    def attempt(self) -> int:
        return self._record.attempt

    @property
    def status(self) -> str:
        """queued, running, succeeded, failed, timed_out, crashed, cancelled, skipped, missed."""
        return self._record.status.value

    @property
    def result(self) -> Any:
        """The JSON value `execute` returned, decoded; None when there is none."""
        text = self._record.result_json
        return json.loads(text) if text is not None else None

    @property
    def result_json(self) -> str | None:
        return self._record.result_json

    @property
    def error(self) -> model.ExecutionError | None:
        return self._record.error

    @property
    def logs(self) -> str:
        return self._record.logs

    @property
    def started_at(self) -> datetime | None:
        return self._record.started_at

    @property
    def finished_at(self) -> datetime | None:
        return self._record.finished_at

    @property
    def duration_ms(self) -> int | None:
        return self._record.duration_ms

    @property
    def reason(self) -> str | None:
        return self._record.reason

    @property
    def retry_of(self) -> str | None:
        return self._record.retry_of

    @property
    def retried_by(self) -> str | None:
        return self._record.retried_by

    @property
    def finished(self) -> bool:
        return self._record.status.finished

    @property
    def succeeded(self) -> bool:
        return self._record.status is model.ExecutionStatus.SUCCEEDED

    def wait(self, timeout: float = 30.0) -> Execution:
        """Wait until the run finished, following retries to the last attempt.

        Returns that attempt as a new Execution and updates this one to it. Raises
        TimeoutError when it has not finished after `timeout` seconds.
        """
        self._record = self._client._wait(self.id, timeout)
        if not self.finished:
            raise TimeoutError(
                f"execution {self.id} of {self.job_name or self.job_id} is still {self.status} after "
                f"{timeout:g} s; wait again, or look at it later with history()"
            )
        return Execution(self._client, self._record)

    def refresh(self) -> Execution:
        """Reload this attempt's state from the engine."""
        self._record = self._client._get_execution(self.id)
        return self

    def cancel(self) -> Execution:
        """Cancel the execution if it is queued (a running one is killed)."""
        self._record = self._client._cancel(self.id)
        return self


# -- values checked before sending ---------------------------------------------------------------

def _spec(
    name: str, execute: Execute, *, kind: model.JobKind, user_id: str | None = None,
    metadata: Mapping[str, Any] | None = None, schedule: Schedule | None = None,
    timeout: float | None = None, retry: Retry | None = None, description: str = "",
    isolation: str | model.Isolation = "restricted", limits: Limits | None = None, paused: bool = False,
    retention: Retention | None = None,
) -> model.JobSpec:
    """A bundled JobSpec; every local check runs here, before anything is sent."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"name: must be a non-empty string such as 'daily-report', got {name!r}")
    profile = isolation_of(isolation)
    return model.JobSpec(
        name=name, artifact=bundle(execute, isolation=profile), kind=kind, description=description or "",
        user_id=user_id, metadata=_metadata(metadata or {}),
        schedule=_schedule(schedule) if schedule is not None else None,
        timeout_seconds=_timeout(timeout), retry=_retry(retry) or Retry(), isolation=profile,
        limits=_limits(limits) or Limits(), paused=paused, retention=_retention(retention) or Retention(),
    )


def _metadata(value: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"metadata: must be a dict (a JSON object), got {type(value).__name__}")
    try:
        convert.json_text(dict(value))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"metadata: is not JSON ({exc}); use str, numbers, bools, None, lists and dicts") from None
    return dict(value)


def _schedule(value: Any) -> Schedule:
    if not isinstance(value, Schedule):
        raise InvalidArgument(
            f"schedule: expected once(at=...), interval(seconds=...) or cron('...'), got {value!r}"
        )
    return value


def _timeout(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidArgument(f"timeout: must be a number of seconds > 0, got {value!r}")
    return float(value)


def _retry(value: Retry | None) -> Retry | None:
    if value is not None and not isinstance(value, Retry):
        raise InvalidArgument(f"retry: expected Retry(max_attempts=..., backoff_seconds=...), got {value!r}")
    return value


def _limits(value: Limits | None) -> Limits | None:
    if value is not None and not isinstance(value, Limits):
        raise InvalidArgument(f"limits: expected Limits(memory_mb=..., cpu_seconds=...), got {value!r}")
    return value


def _retention(value: Retention | None) -> Retention | None:
    if value is not None and not isinstance(value, Retention):
        raise InvalidArgument(f"retention: expected Retention(keep_last=..., max_age_days=...), got {value!r}")
    return value


def _definition(value: Any) -> Job:
    if not isinstance(value, Job):
        raise InvalidArgument(f"deploy takes Job(...) definitions, got {type(value).__name__}: {value!r}")
    return value


def _check_unique_names(specs: Sequence[model.JobSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise InvalidArgument(f"deploy: the name {spec.name!r} is used by two jobs; give each job its own name")
        seen.add(spec.name)


def _statuses(value: str | Iterable[str] | None) -> list[int]:
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    try:
        return [convert.execution_status_to_pb(model.ExecutionStatus(n)) for n in names]
    except ValueError:
        choices = ", ".join(s.value for s in model.ExecutionStatus)
        raise InvalidArgument(f"status: {value!r} is not an execution status; use one of {choices}") from None


def _version_number(value: int | None) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"version: must be a version number >= 1, got {value!r}")
    return value


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidArgument(f"{field}: is a naive datetime; pass an aware one, e.g. datetime.now(timezone.utc)")
    return value


def _ref(job: str | JobHandle) -> str:
    return job.id if isinstance(job, JobHandle) else job


# -- connecting ---------------------------------------------------------------------------------

def _token_from_home() -> str:
    home = Path(os.environ.get("CAPSULE_HOME") or "~/.capsule").expanduser()
    path = home / "admin.token"
    try:
        token = path.read_text().strip()
    except OSError:
        token = ""
    if not token:
        raise Unauthenticated(
            f"no token: set CAPSULE_TOKEN (or pass token=...), or start `capsule serve` on this "
            f"machine, which writes {path}"
        )
    return token


def _open_channel(address: str, ca: str | Path | bytes | None) -> grpc.Channel:
    if ca is None:
        return grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
    credentials = grpc.ssl_channel_credentials(root_certificates=_read_ca(ca))
    return grpc.secure_channel(address, credentials, options=_CHANNEL_OPTIONS)


def _read_ca(ca: str | Path | bytes) -> bytes:
    if isinstance(ca, bytes):
        return ca
    try:
        return Path(ca).expanduser().read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"ca: cannot read the CA certificate {ca} ({exc.strerror}); pass a PEM file") from None
