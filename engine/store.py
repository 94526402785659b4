"""The store: every durable fact of the engine, behind methods that speak the domain.

One SQLite file through apsw, in WAL mode with foreign keys on. Each thread gets its
own connection; every write happens inside `transaction()` (BEGIN IMMEDIATE), so a
method either commits all it changes or nothing. The SQL lives in engine/queries.py.

Durability: `synchronous=NORMAL` under WAL. COMMIT returns once the transaction's
pages are written to the WAL file, that is handed to the operating system, which
keeps them whatever happens to our process; the WAL is fsynced at checkpoints, not at
every commit. So every acknowledged write survives a crash of the engine process
(SIGKILL included: tests/integration/test_durability.py), and the database is never
corrupted; only an operating-system crash or power loss can lose the last commits
(never corrupt the file). That trade buys ~10x cheaper commits (38 us vs 427 us with
FULL, which fsyncs the WAL at every commit, on our disks).

Owner scoping: methods that read on behalf of a caller take `owner`; None means the
admin, who sees every owner's rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import apsw

from engine import queries as q
from engine import schedules
from engine.errors import AlreadyExists, FailedPrecondition, NotFound, QuotaExceeded
from engine.model import (
    Artifact, CleanupReport, Execution, ExecutionError, ExecutionStatus, Isolation, Job, JobCleanup, JobKind,
    JobSpec, JobStatus, Limits, Message, Owner, OwnerLimits, Retention, Retry, Trigger, Version,
)
from engine.validation import MAX_METADATA_BYTES, metadata_bytes

log = logging.getLogger("capsule.store")
UTC = timezone.utc
BUSY_TIMEOUT_MS = 10_000
ADMIN_OWNER = "admin"  # the owner of the admin token's own jobs; never a row in `owners`
VERSION_CACHE = 4096
ARTIFACT_CACHE_BYTES = 16 * 1024 * 1024  # the engine's RSS budget is 40 MiB for 100k jobs
CALLER_CACHE = 10_000
_SEQ_END = 2**62  # above every execution's seq


def new_id(prefix: str) -> str:
    """A time-ordered opaque id such as `job_0193a1b2c3d4e5f6a7b8c9d0`."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


def _ts(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _dt(x: float | None) -> datetime | None:
    return None if x is None else datetime.fromtimestamp(x, UTC)


@dataclass(frozen=True)
class Caller:
    """Who a bearer token belongs to."""

    token_id: str
    owner: str
    admin: bool

    @property
    def scope(self) -> str | None:
        """The owner filter for reads: None lets the admin see every owner."""
        return None if self.admin else self.owner


@dataclass(frozen=True)
class FireRecord:
    """One history row of a fire: QUEUED to run it; SKIPPED / MISSED with the reason why not."""

    scheduled_for: datetime
    status: ExecutionStatus
    reason: str | None = None
    concurrent: bool = False


@dataclass(frozen=True)
class Fire:
    """What the scheduler decided for the fires a job owed from its `due` next_run:
    the rows to record (oldest first) and where its grid continues."""

    job_id: str
    version_id: str
    due: datetime
    next_run: datetime | None
    records: tuple[FireRecord, ...]
    complete_job: bool = False  # a one-off whose only fire was not run


@dataclass(frozen=True)
class AttemptResult:
    """What an attempt produced and what follows from it, ready to commit at once."""

    execution_id: str
    status: ExecutionStatus
    finished_at: datetime
    duration_ms: int
    result_json: str | None = None
    error: ExecutionError | None = None
    logs: str = ""
    effects: tuple[Mapping[str, Any], ...] = ()  # applied only when status is SUCCEEDED
    retry_at: datetime | None = None              # schedule another attempt then
    job_status: JobStatus | None = None           # the job's status afterwards


@dataclass(frozen=True)
class AttemptContext:
    """Everything the executor needs to run one claimed execution."""

    execution: Execution
    job: Job
    version: Version
    artifact: Artifact
    owner: str
    owner_limits: OwnerLimits = OwnerLimits().resolved()


class _ImmutableCache:
    """Rows that never change once written (versions by id, artifacts by digest), kept
    in memory up to a total weight, then dropped all at once: simple, and always right,
    since a cached row cannot go stale."""

    def __init__(self, max_weight: int, weigh: Callable[[Any], int] = lambda _: 1) -> None:
        self._items: dict[str, Any] = {}
        self._weight = 0
        self._max_weight = max_weight
        self._weigh = weigh
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        weight = self._weigh(value)
        with self._lock:
            if self._weight + weight > self._max_weight:
                self._items.clear()
                self._weight = 0
            if key not in self._items:
                self._items[key] = value
                self._weight += weight


class _Local(threading.local):
    """Per-thread state: the thread's connection and its transaction depth."""

    def __init__(self) -> None:
        self.conn: apsw.Connection | None = None
        self.depth = 0
        self.touched_messages = False


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = _Local()
        self._connections: list[apsw.Connection] = []
        self._lock = threading.Lock()
        # Writers of this process queue here rather than in SQLite's busy handler, which
        # sleeps in steps of up to 100 ms and made p99 of concurrent writes spike.
        self._write_lock = threading.Lock()
        self._versions = _ImmutableCache(VERSION_CACHE)
        self._artifacts = _ImmutableCache(ARTIFACT_CACHE_BYTES, _artifact_bytes)
        # Resolved tokens by secret, so an RPC costs no SQL or hash to authenticate. Any
        # token or owner change this process commits empties it (`_forget_callers`), so a
        # revoked token is refused from the very next call. Only one engine uses a store;
        # its tokens change only through it.
        self._callers: dict[str, Caller] = {}
        self._callers_generation = 0
        self._callers_lock = threading.Lock()
        self._migrate()

    # -- connections and transactions ----------------------------------------------------

    def _conn(self) -> apsw.Connection:
        conn = self._local.conn
        if conn is None:
            conn = apsw.Connection(str(self.path))
            conn.set_busy_timeout(BUSY_TIMEOUT_MS)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[apsw.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception. Nests flatly."""
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            self._local.depth = 1
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                self._local.depth = 0

    def _one(self, sql: str, params: Any = ()) -> tuple | None:
        return self._conn().execute(sql, params).fetchone()

    def _all(self, sql: str, params: Any = ()) -> list[tuple]:
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def _migrate(self) -> None:
        with self.transaction() as conn:
            done = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(q.MIGRATIONS[done:], start=done + 1):
                conn.execute(script)
                conn.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return self._one("PRAGMA user_version")[0]

    # -- tokens and owners ------------------------------------------------------------------

    def ensure_admin_token(self, secret: str, now: datetime) -> None:
        """Registers the admin token's hash unless it is already known, and revokes any
        other admin token (an admin.token that was replaced no longer works)."""
        digest = _secret_hash(secret)
        with self.transaction() as conn:
            conn.execute(q.REVOKE_OTHER_ADMIN_TOKENS, (_ts(now), digest))
            if conn.execute(q.SELECT_TOKEN_BY_SECRET, (digest,)).fetchone() is None:
                conn.execute(q.INSERT_TOKEN, dict(id=new_id("tok"), owner="admin", secret_sha256=digest,
                                                  label="admin", admin=1, created_at=_ts(now)))
        self._forget_callers()

    def resolve_token(self, secret: str) -> Caller | None:
        caller = self._callers.get(secret)
        if caller is not None:
            return caller
        generation = self._callers_generation
        row = self._one(q.SELECT_TOKEN_BY_SECRET, (_secret_hash(secret),))
        if row is None:
            return None  # unknown secrets are not kept: they cannot fill the cache
        caller = Caller(row[0], row[1], bool(row[2]))
        with self._callers_lock:
            # Kept only if no token or owner changed since the read, which may predate it.
            if generation == self._callers_generation:
                if len(self._callers) >= CALLER_CACHE:
                    self._callers.clear()
                self._callers[secret] = caller
        return caller

    def _forget_callers(self) -> None:
        """Empties the resolved-token cache; called once a token or owner change committed."""
        with self._callers_lock:
            self._callers_generation += 1
            self._callers.clear()

    def create_owner(self, name: str, trusted_allowed: bool, now: datetime,
                     limits: OwnerLimits = OwnerLimits()) -> Owner:
        """Inserts an owner with its limits (None = the engine's default). Raises
        AlreadyExists for a known name or the reserved name "admin"."""
        if name == ADMIN_OWNER:
            raise AlreadyExists("owner 'admin' is built in (the admin token's own jobs); pick another name")
        with self.transaction() as conn:
            if conn.execute(q.SELECT_OWNER, (name,)).fetchone():
                raise AlreadyExists(f"owner {name!r} already exists; pick another name")
            conn.execute(q.INSERT_OWNER, (name, int(trusted_allowed), _ts(now)))
            conn.execute(q.SET_OWNER_LIMITS, dict(name=name, **limits.__dict__))
        self._forget_callers()
        return self.get_owner(name)

    def get_owner(self, name: str) -> Owner:
        row = self._one(q.SELECT_OWNER_FULL, (name,))
        if row is None:
            raise NotFound("owner", name)
        return _owner_from_row(row)

    def owners(self) -> list[Owner]:
        """Every owner, by name (the built-in "admin" is not listed)."""
        return [_owner_from_row(r) for r in self._all(q.SELECT_OWNERS_FULL)]

    def owner_limits(self, owner: str) -> OwnerLimits:
        """The owner's limits with defaults filled in; the admin gets the defaults."""
        row = self._one(q.SELECT_OWNER_FULL, (owner,))
        return (_owner_from_row(row).limits if row else OwnerLimits()).resolved()

    def live_job_count(self, owner: str) -> int:
        """The owner's jobs that count against its `max_jobs` (not yet finished)."""
        return self._one(q.COUNT_LIVE_JOBS, (owner,))[0]

    def queued_count(self, owner: str) -> int:
        """The owner's attempts waiting to run."""
        return self._one(q.COUNT_OWNER_QUEUED, (owner,))[0]

    def _check_job_quota(self, conn: apsw.Connection, owner: str) -> None:
        cap = self.owner_limits(owner).max_jobs
        (count,) = conn.execute(q.COUNT_LIVE_JOBS, (owner,)).fetchone()
        if count >= cap:
            raise QuotaExceeded("max_jobs", f"owner {owner!r} has {count} live jobs, its limit is {cap}; "
                                            "delete finished jobs or ask an admin to raise the limit")

    def list_owners(self) -> list[tuple[str, bool, datetime]]:
        return [(r[0], bool(r[1]), _dt(r[2])) for r in self._all(q.SELECT_OWNERS)]

    def owner_trusted(self, owner: str) -> bool:
        row = self._one(q.SELECT_OWNER, (owner,))
        return owner == "admin" or bool(row and row[1])

    def create_token(self, owner: str, label: str, now: datetime) -> tuple[str, str]:
        """Returns (token id, secret); only the secret's hash is stored."""
        with self.transaction() as conn:
            if conn.execute(q.SELECT_OWNER, (owner,)).fetchone() is None:
                raise NotFound("owner", owner)
            token_id, secret = new_id("tok"), "cap_" + secrets.token_urlsafe(32)
            conn.execute(q.INSERT_TOKEN, dict(id=token_id, owner=owner, secret_sha256=_secret_hash(secret),
                                              label=label, admin=0, created_at=_ts(now)))
        self._forget_callers()
        return token_id, secret

    def revoke_token(self, token_id: str, now: datetime) -> None:
        """Revokes an owner's token. Raises NotFound for an unknown or already revoked
        token, FailedPrecondition for the admin token (the engine re-reads it from
        admin.token at start)."""
        with self.transaction() as conn:
            row = conn.execute(q.SELECT_TOKEN_ADMIN, (token_id,)).fetchone()
            if row is not None and row[0]:
                raise FailedPrecondition("the admin token cannot be revoked; to replace it, stop the engine, "
                                         "delete $CAPSULE_HOME/admin.token and start it again")
            conn.execute(q.REVOKE_TOKEN, (_ts(now), token_id))
            if conn.changes() == 0:
                raise NotFound("token", token_id)
        self._forget_callers()  # after the commit: a lookup before it may have seen the token live

    # -- artifacts ------------------------------------------------------------------------------

    def has_artifact(self, digest: str) -> bool:
        return self._one(q.ARTIFACT_EXISTS, (digest,)) is not None

    def get_artifact(self, digest: str) -> Artifact:
        artifact = self._artifacts.get(digest)
        if artifact is None:
            row = self._one(q.SELECT_ARTIFACT, (digest,))
            if row is None:
                raise NotFound("artifact", digest)
            artifact = Artifact(source=row[0], entrypoint=row[1], payload=row[2], payload_encoding=row[3],
                                python_version=row[4], library_versions=json.loads(row[5]))
            self._artifacts.put(digest, artifact)
        return artifact

    def _put_artifact(self, conn: apsw.Connection, a: Artifact, now: datetime) -> None:
        conn.execute(q.INSERT_ARTIFACT, dict(
            digest=a.digest, source=a.source, entrypoint=a.entrypoint, payload=a.payload,
            payload_encoding=a.payload_encoding, python_version=a.python_version,
            library_versions=json.dumps(dict(a.library_versions)), created_at=_ts(now)))

    # -- jobs ------------------------------------------------------------------------------------

    def create_job(self, owner: str, spec: JobSpec, timeout_seconds: float, now: datetime,
                   next_run: datetime | None) -> tuple[Job, Version]:
        """Inserts the job, its artifact (once per digest) and version 1, and activates it.

        Raises AlreadyExists when a live job of `owner` has the name, QuotaExceeded when
        the owner is at its `max_jobs`.
        """
        job_id = new_id("job")
        with self.transaction() as conn:
            self._check_job_quota(conn, owner)
            if conn.execute(q.SELECT_JOB_BY_NAME, dict(ref=spec.name, owner=owner)).fetchone() is not None:
                existing = self.get_job(owner, spec.name)
                if existing.status is not JobStatus.ARCHIVED:
                    raise AlreadyExists(
                        f"name: a job named {spec.name!r} already exists ({existing.id}); "
                        "pick another name, or update or delete that job")
            conn.execute(q.INSERT_JOB, dict(
                id=job_id, owner=owner, name=spec.name, description=spec.description, kind=spec.kind.value,
                user_id=spec.user_id, metadata=json.dumps(dict(spec.metadata)), active=int(not spec.paused),
                status=JobStatus.PENDING.value, created_at=_ts(now), next_run=_ts(next_run)))
            version = self._insert_version(conn, job_id, spec, timeout_seconds, now)
            conn.execute(q.SET_ACTIVE_VERSION, dict(version_id=version.id, next_run=_ts(next_run),
                                                    status=JobStatus.PENDING.value, id=job_id))
        return self.get_job(owner, job_id), version

    def _insert_version(self, conn: apsw.Connection, job_id: str, spec: JobSpec,
                        timeout_seconds: float, now: datetime) -> Version:
        self._put_artifact(conn, spec.artifact, now)
        version_id = new_id("ver")
        config = _version_config(spec.schedule, timeout_seconds, spec.retry, spec.isolation, spec.limits,
                                 spec.retention)
        (number,) = conn.execute(q.INSERT_VERSION, dict(
            id=version_id, job_id=job_id, artifact_digest=spec.artifact.digest, config=config,
            created_at=_ts(now))).fetchone()
        return _version_from_row((version_id, job_id, number, spec.artifact.digest, config, _ts(now)))

    def add_version(self, job_id: str, spec: JobSpec, timeout_seconds: float, now: datetime,
                    next_run: datetime | None, status: JobStatus) -> Version:
        """Adds the next version of a job (its spec's artifact, schedule and config) and
        makes it the active one, with the job's next fire moved to `next_run`."""
        with self.transaction() as conn:
            version = self._insert_version(conn, job_id, spec, timeout_seconds, now)
            conn.execute(q.SET_ACTIVE_VERSION, dict(version_id=version.id, next_run=_ts(next_run),
                                                    status=status.value, id=job_id))
        return version

    def activate_version(self, job_id: str, version_id: str, next_run: datetime | None,
                         status: JobStatus) -> None:
        with self.transaction() as conn:
            conn.execute(q.SET_ACTIVE_VERSION, dict(version_id=version_id, next_run=_ts(next_run),
                                                    status=status.value, id=job_id))

    def get_job(self, owner: str | None, ref: str) -> Job:
        """A job by id or name (the live one first); raises NotFound."""
        sql = q.SELECT_JOB_BY_ID if ref.startswith("job_") else q.SELECT_JOB_BY_NAME
        row = self._one(sql, dict(ref=ref, owner=owner))
        if row is None:
            raise NotFound("job", ref)
        return _job_from_row(row)

    def list_jobs(self, owner: str | None, *, include_dynamic: bool, include_finished: bool,
                  search: str | None, user_id: str | None, limit: int,
                  after: str | None = None) -> list[Job]:
        """Jobs ordered predefined first, then by name; `after` is a `list_cursor`
        token of the previous page's last job. Raises ValueError on a bad token."""
        rows = self._all(q.SELECT_JOBS, dict(
            owner=owner, include_dynamic=int(include_dynamic), include_finished=int(include_finished),
            search=search or None, user_id=user_id or None, limit=limit,
            **_list_cursor(after)))
        return [_job_from_row(r) for r in rows]

    def next_run(self, job_id: str) -> datetime | None:
        """The job's next fire as stored now; raises NotFound."""
        row = self._one(q.SELECT_NEXT_RUN, (job_id,))
        if row is None:
            raise NotFound("job", job_id)
        return _dt(row[0])

    def active_version_id(self, job_id: str) -> str:
        """The id of the job's active version ("" if none); raises NotFound."""
        row = self._one(q.SELECT_ACTIVE_VERSION_ID, (job_id,))
        if row is None:
            raise NotFound("job", job_id)
        return row[0] or ""

    def predefined_jobs(self, owner: str) -> dict[str, str]:
        """name -> id of the owner's live predefined jobs."""
        return {name: job_id for job_id, name in self._all(q.SELECT_PREDEFINED_NAMES, (owner,))}

    def set_metadata(self, job_id: str, metadata: Mapping[str, Any]) -> None:
        with self.transaction() as conn:
            conn.execute(q.SET_METADATA, (json.dumps(dict(metadata)), job_id))

    def set_description(self, job_id: str, description: str) -> None:
        with self.transaction() as conn:
            conn.execute(q.SET_DESCRIPTION, (description, job_id))

    def set_active(self, job_id: str, active: bool, next_run: datetime | None, status: JobStatus,
                   fire: Fire | None = None, now: datetime | None = None) -> None:
        """Pauses or resumes a job; on resume, `fire` records the fires it owes from the
        pause (its `due` must be `next_run`), in the same transaction."""
        with self.transaction() as conn:
            conn.execute(q.SET_ACTIVE, dict(active=int(active), next_run=_ts(next_run),
                                            status=status.value, id=job_id))
            if fire is not None:
                self._record_fire(conn, fire, now or fire.due)

    def delete_job(self, job_id: str, now: datetime) -> bool:
        """Archives a job with history (returns True) or removes one without (False).
        Queued attempts of an archived job are cancelled."""
        with self.transaction() as conn:
            if conn.execute(q.JOB_HAS_HISTORY, (job_id,)).fetchone() is None:
                conn.execute(q.DELETE_VERSIONS, (job_id,))
                conn.execute(q.DELETE_JOB, (job_id,))
                return False
            conn.execute(q.ARCHIVE_JOB, (job_id,))
            conn.execute(q.CANCEL_QUEUED_OF_JOB, (_ts(now), job_id))
            return True

    # -- versions --------------------------------------------------------------------------------

    def get_version(self, job_id: str, *, version_id: str | None = None, number: int | None = None) -> Version:
        version = self._versions.get(version_id) if version_id else None
        if version is None:
            if version_id:
                row = self._one(q.SELECT_VERSION, (version_id,))
            else:
                row = self._one(q.SELECT_VERSION_BY_NUMBER, (job_id, number))
            if row is None:
                raise NotFound("version", version_id or str(number))
            version = _version_from_row(row)
            self._versions.put(version.id, version)
        if version.job_id != job_id:
            raise NotFound("version", version_id or str(number))
        return version

    def list_versions(self, job_id: str) -> list[Version]:
        return [_version_from_row(r) for r in self._all(q.SELECT_VERSIONS, (job_id,))]

    # -- the scheduler ---------------------------------------------------------------------------

    def due_jobs(self, now: datetime, limit: int) -> list[tuple[str, str, datetime]]:
        """(job id, active version id, next_run) of active jobs due at `now`, earliest first."""
        return [(r[0], r[1], _dt(r[2])) for r in self._all(q.SELECT_DUE_JOBS, (_ts(now), limit))]

    def job_busy(self, job_id: str) -> tuple[int, int]:
        """(queued or running attempts, queued attempts) of a job."""
        queued, running = self._one(q.JOB_BUSY, dict(job_id=job_id))
        return queued + running, queued

    def record_fires(self, fires: list[Fire], now: datetime) -> list[str]:
        """Claims and records due fires in one transaction: for each, the job's next_run
        moves on and every record becomes an execution row (queued, or skipped/missed
        with its reason). A fire whose job no longer has `due` as its next_run (fired or
        changed meanwhile) is left out, so a fire is recorded at most once. Returns the
        ids of the queued executions, in order."""
        queued: list[str] = []
        with self.transaction() as conn:
            for fire in fires:
                queued += self._record_fire(conn, fire, now)
        return queued

    def _record_fire(self, conn: apsw.Connection, fire: Fire, now: datetime) -> list[str]:
        row = conn.execute(q.SELECT_NEXT_RUN_OWNER, (fire.job_id,)).fetchone()
        if row is None or row[0] != _ts(fire.due):
            return []
        queued = []
        for record in fire.records:
            execution_id = self._insert_execution(
                conn, job_id=fire.job_id, owner=row[1], version_id=fire.version_id,
                trigger=Trigger.SCHEDULE, scheduled_for=record.scheduled_for, attempt=1, status=record.status,
                concurrent=record.concurrent, reason=record.reason, now=now)
            if record.status is ExecutionStatus.QUEUED:
                queued.append(execution_id)
        conn.execute(q.SET_NEXT_RUN, (_ts(fire.next_run), fire.job_id))
        if fire.complete_job:
            conn.execute(q.SET_STATUS, (JobStatus.COMPLETED.value, 1, fire.job_id))
        return queued

    def enqueue(self, job: Job, version_id: str, trigger: Trigger, scheduled_for: datetime, now: datetime,
                *, attempt: int = 1, concurrent: bool = False) -> str:
        """Records an attempt that will run at `scheduled_for`; returns its id."""
        with self.transaction() as conn:
            return self._insert_execution(conn, job_id=job.id, owner=job.owner, version_id=version_id,
                                          trigger=trigger, scheduled_for=scheduled_for, attempt=attempt,
                                          status=ExecutionStatus.QUEUED, concurrent=concurrent, now=now)

    def record_skipped(self, job: Job, version_id: str, trigger: Trigger, now: datetime, reason: str) -> str:
        with self.transaction() as conn:
            return self._insert_execution(conn, job_id=job.id, owner=job.owner, version_id=version_id,
                                          trigger=trigger, scheduled_for=now, attempt=1,
                                          status=ExecutionStatus.SKIPPED, reason=reason, now=now)

    def _insert_execution(self, conn: apsw.Connection, *, job_id: str, owner: str, version_id: str,
                          trigger: Trigger, scheduled_for: datetime, attempt: int, status: ExecutionStatus,
                          now: datetime, concurrent: bool = False, reason: str | None = None,
                          retry_of: str | None = None) -> str:
        execution_id = new_id("exe")
        conn.execute(q.INSERT_EXECUTION, dict(
            id=execution_id, job_id=job_id, owner=owner, version_id=version_id, trigger=trigger.value,
            scheduled_for=_ts(scheduled_for), attempt=attempt, status=status.value,
            concurrent=int(concurrent), reason=reason, retry_of=retry_of, created_at=_ts(now),
            finished_at=_ts(now) if status.finished else None))
        return execution_id

    def start_ready(self, now: datetime, limit: int, engine_id: str = "", grace_seconds: float = 60.0,
                    ahead_seconds: float = 0.0) -> list[str]:
        """Claims up to `limit` queued attempts due by `now` + `ahead_seconds` for
        `engine_id`, in due order, and returns their ids: each becomes running, started
        at now or at its due time if that is later, with a lease until its start + its
        timeout + `grace_seconds`. A job runs one attempt at a time unless an attempt
        is concurrent, never more than its max_running at once, and an owner never more
        than its own max_running; attempts over a cap stay queued, in order."""
        started = []
        running: dict[str, int] = {}
        owner_running: dict[str, int] = {}
        with self.transaction() as conn:
            rows = conn.execute(q.SELECT_STARTABLE, dict(now=_ts(now) + ahead_seconds, limit=limit)).fetchall()
            for execution_id, job_id, concurrent, cap, already, owner, owner_cap, owner_already in rows:
                count = running.setdefault(job_id, already)
                owner_count = owner_running.setdefault(owner, owner_already)
                if (count and not concurrent) or (cap and count >= cap) or (owner_cap and owner_count >= owner_cap):
                    continue  # the job's or the owner's slots are taken (perhaps earlier in this batch)
                conn.execute(q.START_EXECUTION, dict(now=_ts(now), id=execution_id, engine=engine_id,
                                                     grace=grace_seconds))
                conn.execute(q.SET_JOB_RUNNING, (job_id,))
                running[job_id] = count + 1
                owner_running[owner] = owner_count + 1
                started.append(execution_id)
        return started

    def next_wakeup(self, now: datetime) -> datetime | None:
        """The earliest instant something becomes due: a job's next fire, or a queued
        attempt scheduled after `now` (due ones that could not start wait for a wake)."""
        known = [t for t in self._one(q.NEXT_WAKEUP, (_ts(now),)) if t is not None]
        return _dt(min(known)) if known else None

    def abandoned_executions(self, engine_id: str) -> list[str]:
        """Running attempts not claimed by `engine_id`: with one engine per store, those
        of an engine that died (SIGKILL, power loss) before finishing them."""
        return [r[0] for r in self._all(q.ABANDONED_EXECUTIONS, dict(engine=engine_id))]

    def attempt_context(self, execution_id: str) -> AttemptContext:
        row = self._one(q.SELECT_ATTEMPT, (execution_id,))
        if row is None:
            raise NotFound("execution", execution_id)
        execution = _execution_from_row(row[:q.EXECUTION_WIDTH])
        owner = row[q.EXECUTION_WIDTH]
        job = _job_from_row(row[q.EXECUTION_WIDTH + 1:q.EXECUTION_WIDTH + 1 + q.JOB_WIDTH])
        owner_row = row[q.EXECUTION_WIDTH + 1 + q.JOB_WIDTH:]
        limits = _owner_from_row(owner_row).limits if owner_row[0] is not None else OwnerLimits()
        version = self.get_version(job.id, version_id=execution.version_id)
        return AttemptContext(execution, job, version, self.get_artifact(version.artifact_digest), owner,
                              limits.resolved())

    def finish_attempt(self, result: AttemptResult, now: datetime) -> str | None:
        """Commits an attempt's outcome, its effects (only if it succeeded), the job's
        run record and status, and the retry (if any), all at once. Returns the retry's
        execution id. Does nothing if the attempt was not running (already finished)."""
        with self.transaction() as conn:
            finished = conn.execute(q.FINISH_EXECUTION, dict(
                id=result.execution_id, status=result.status.value, result=result.result_json,
                error=_error_json(result.error), logs=result.logs, finished_at=_ts(result.finished_at),
                duration_ms=result.duration_ms)).fetchall()
            if not finished:
                return None
            [(job_id, version_id, attempt, owner)] = finished
            # Deleted while the attempt ran (the delete was acknowledged): nothing it did
            # is delivered or stored after that, and it is not retried.
            deleted = (bool(result.effects or result.retry_at is not None)  # else nothing to drop
                       and conn.execute(q.SELECT_JOB_STATUS, (job_id,)).fetchone()[0] == JobStatus.ARCHIVED.value)
            if deleted:
                log.info("dropped the effects and retry of an attempt of deleted job %s", job_id,
                         extra={"action": "effects_dropped", "job_id": job_id, "execution_id": result.execution_id})
            if result.status is ExecutionStatus.SUCCEEDED and not deleted:
                self._apply_effects(conn, job_id, owner, result.execution_id, result.effects, now)
            retry_id = None
            if result.retry_at is not None and not deleted:
                retry_id = self._insert_execution(
                    conn, job_id=job_id, owner=owner, version_id=version_id, trigger=Trigger.RETRY,
                    scheduled_for=result.retry_at, attempt=attempt + 1, status=ExecutionStatus.QUEUED,
                    now=now, retry_of=result.execution_id)
                conn.execute(q.SET_RETRIED_BY, (retry_id, result.execution_id))
            # After the effects: a job deleted by its own attempt stays deleted.
            conn.execute(q.RECORD_RUN, dict(
                id=job_id, last_run=_ts(result.finished_at), last_status=result.status.value,
                last_error=_error_line(result.error),
                status=result.job_status.value if result.job_status is not None else None))
            return retry_id

    def _apply_effects(self, conn: apsw.Connection, job_id: str, owner: str, execution_id: str,
                       effects: tuple[Mapping[str, Any], ...], now: datetime) -> None:
        updates = [effect["metadata"] for effect in effects if effect["op"] == "update_metadata"]
        if updates:
            (current,) = conn.execute(q.SELECT_METADATA, (job_id,)).fetchone()
            merged = json.loads(current)
            for update in updates:
                merged.update(update)
            if metadata_bytes(merged) <= MAX_METADATA_BYTES:
                conn.execute(q.SET_METADATA, (json.dumps(merged), job_id))
            else:
                # The attempt's updates were checked as it ran; metadata set through the
                # API meanwhile made the sum too big. All or none: the stored metadata stands.
                log.warning("the metadata updates of an attempt of job %s were dropped: the result would exceed "
                            "%d bytes", job_id, MAX_METADATA_BYTES,
                            extra={"action": "effects_dropped", "job_id": job_id, "execution_id": execution_id})
        for effect in effects:
            op = effect["op"]
            if op == "send":
                conn.execute(q.INSERT_MESSAGE, dict(
                    id=new_id("msg"), owner=owner, user_id=effect["user_id"], job_id=job_id,
                    execution_id=execution_id, parts=json.dumps(effect["parts"]), created_at=_ts(now)))
                self._local.touched_messages = True
            elif op == "deactivate":
                conn.execute(q.PAUSE_JOB, (job_id,))  # keeps next_run: a resume goes on from the grid
            elif op == "delete":
                conn.execute(q.ARCHIVE_JOB, (job_id,))

    def take_message_flag(self) -> bool:
        """True once after this thread committed a message (to wake inbox streams)."""
        flag, self._local.touched_messages = self._local.touched_messages, False
        return flag

    def cancel_queued(self, execution_id: str, now: datetime, reason: str) -> bool:
        with self.transaction() as conn:
            conn.execute(q.CANCEL_QUEUED, dict(id=execution_id, now=_ts(now), reason=reason))
            return conn.changes() > 0

    # -- executions ---------------------------------------------------------------------------------

    def get_execution(self, owner: str | None, execution_id: str) -> Execution:
        row = self._one(q.SELECT_EXECUTION, dict(id=execution_id, owner=owner))
        if row is None:
            raise NotFound("execution", execution_id)
        return _execution_from_row(row)

    def list_executions(self, owner: str | None, *, job_id: str | None, statuses: list[ExecutionStatus],
                        since: datetime | None, limit: int, before_seq: int | None = None
                        ) -> list[tuple[Execution, int]]:
        """Executions newest first, each with its sequence number (the page cursor)."""
        rows = self._all(q.SELECT_EXECUTIONS, dict(
            owner=owner, job_id=job_id, since=_ts(since),
            statuses=("," + ",".join(s.value for s in statuses) + ",") if statuses else None,
            before_seq=before_seq if before_seq is not None else _SEQ_END, limit=limit))
        return [(_execution_from_row(r[:-1]), r[-1]) for r in rows]

    def cleanup_executions(self, owner: str | None, before: datetime, *, job_id: str | None,
                           dry_run: bool) -> tuple[int, int]:
        """Removes finished executions that finished before `before`; returns (count, bytes)."""
        params = dict(before=_ts(before), owner=owner, job_id=job_id)
        with self.transaction() as conn:
            count, size = conn.execute(q.CLEANUP_SELECT, params).fetchone()
            if not dry_run:
                conn.execute(q.CLEANUP_UNLINK_RETRIES, params)
                conn.execute(q.CLEANUP_DELETE, params)
        return count, size

    def cleanup_report(self, owner: str | None, before: datetime, *, job_id: str | None,
                       dry_run: bool) -> CleanupReport:
        """`cleanup_executions`, reporting job by job (by name) what was removed, or
        would be with `dry_run`, in one transaction."""
        with self.transaction():
            rows = self._all(q.CLEANUP_BY_JOB, dict(before=_ts(before), owner=owner, job_id=job_id))
            if rows and not dry_run:
                self.cleanup_executions(owner, before, job_id=job_id, dry_run=False)
        return CleanupReport(before=before, dry_run=dry_run, jobs=tuple(JobCleanup(*r) for r in rows))

    def prune_job_history(self, job_id: str, *, keep_last: int, before: datetime,
                          dry_run: bool = False, exact_age: bool = True) -> tuple[int, int]:
        """Applies a retention to one job: removes its finished executions beyond the
        `keep_last` most recent (by creation order) and those that finished before
        `before`. Queued and running ones are kept. Returns (count, bytes) removed, or
        that would be with `dry_run`.

        `exact_age=False` (after each attempt) makes the age limit cheap: it removes only
        executions created before the job's oldest one that finished at or after
        `before`. One that finished before an older one did waits for an exact pass."""
        # A read first, outside any write transaction: after most attempts nothing goes.
        count, size = self._one(q.RETENTION_SELECT, self._retention_bounds(job_id, keep_last, before, exact_age))
        if count and not dry_run:
            with self.transaction() as conn:
                params = self._retention_bounds(job_id, keep_last, before, exact_age)  # as of now
                count, size = conn.execute(q.RETENTION_SELECT, params).fetchone()
                if count:
                    conn.execute(q.RETENTION_UNLINK_RETRIES, params)
                    conn.execute(q.RETENTION_DELETE, params)
        return count, size

    def _retention_bounds(self, job_id: str, keep_last: int, before: datetime, exact_age: bool
                          ) -> dict[str, Any]:
        """The parameters of queries.RETENTION_WHERE: `cutoff_seq`, the newest finished
        execution beyond the `keep_last` newest (0: none), and `below_seq`, under which
        the age limit applies."""
        cutoff_seq, below_seq = 0, _SEQ_END
        nth = self._one(q.RETENTION_NTH_NEWEST, dict(job_id=job_id, keep_last=keep_last))
        if nth is not None:
            (unfinished,) = self._one(q.RETENTION_UNFINISHED_AFTER, dict(job_id=job_id, seq=nth[0]))
            row = self._one(q.RETENTION_CUTOFF, dict(job_id=job_id, seq=nth[0], unfinished=unfinished))
            cutoff_seq = row[0] if row else 0
        if not exact_age:
            row = self._one(q.RETENTION_OLDEST_KEPT, dict(job_id=job_id, before=_ts(before)))
            if row is not None:
                below_seq = max(row[0], cutoff_seq + 1)
        return dict(job_id=job_id, before=_ts(before), cutoff_seq=cutoff_seq, below_seq=below_seq)

    def jobs_with_finished_history(self) -> list[str]:
        """Ids of every job that has at least one finished execution (for a retention sweep)."""
        return [r[0] for r in self._all(q.JOBS_WITH_FINISHED_HISTORY)]

    # -- messages -------------------------------------------------------------------------------------

    def list_messages(self, owner: str | None, user_id: str, after_id: str | None, limit: int) -> list[Message]:
        after_seq = 0
        if after_id:
            row = self._one(q.SELECT_MESSAGE_SEQ, dict(id=after_id, owner=owner))
            if row is None:
                raise NotFound("message", after_id)
            after_seq = row[0]
        rows = self._all(q.SELECT_MESSAGES, dict(owner=owner, user_id=user_id, after_seq=after_seq, limit=limit))
        return [Message(id=r[0], owner=r[1], user_id=r[2], job_id=r[3], execution_id=r[4],
                        parts=tuple(json.loads(r[5])), created_at=_dt(r[6])) for r in rows]

    def integrity_check(self) -> str:
        return self._one("PRAGMA integrity_check")[0]


# -- row mapping ---------------------------------------------------------------------------------------

def list_cursor(job: Job) -> str:
    """The opaque page token that continues a job listing after `job`."""
    return f"{int(job.kind is JobKind.DYNAMIC)}:{job.id}:{job.name}"


def _list_cursor(token: str | None) -> dict[str, Any]:
    if not token:
        return dict(after_rank=-1, after_name="", after_id="")
    rank, job_id, name = token.split(":", 2)
    return dict(after_rank=int(rank), after_name=name, after_id=job_id)


def _owner_from_row(r: tuple) -> Owner:
    return Owner(name=r[0], trusted_allowed=bool(r[1]), created_at=_dt(r[2]),
                 limits=OwnerLimits(max_jobs=r[3], max_artifact_bytes=r[4], max_messages_per_attempt=r[5],
                                   max_running=r[6]))


def _artifact_bytes(artifact: Artifact) -> int:
    return len(artifact.source) + len(artifact.payload or b"") + 512


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _version_config(schedule, timeout_seconds, retry: Retry, isolation: Isolation, limits: Limits,
                    retention: Retention = Retention()) -> str:
    config = {
        "schedule": schedules.to_dict(schedule), "timeout_seconds": timeout_seconds,
        "retry": retry.__dict__, "isolation": isolation.value, "limits": limits.__dict__,
    }
    if retention != Retention():  # versions without a choice keep the engine's defaults
        config["retention"] = retention.__dict__
    return json.dumps(config, sort_keys=True)


def _version_from_row(row: tuple) -> Version:
    config = json.loads(row[4])
    return Version(
        id=row[0], job_id=row[1], number=row[2], artifact_digest=row[3],
        schedule=schedules.from_dict(config["schedule"]), timeout_seconds=config["timeout_seconds"],
        retry=Retry(**config["retry"]), isolation=Isolation(config["isolation"]),
        limits=Limits(**config["limits"]), created_at=_dt(row[5]),
        retention=Retention(**config.get("retention", {})))


def _job_from_row(r: tuple) -> Job:
    return Job(
        id=r[0], owner=r[1], name=r[2], description=r[3], kind=JobKind(r[4]), user_id=r[5],
        metadata=json.loads(r[6]), active=bool(r[7]), status=JobStatus(r[8]), active_version_id=r[9] or "",
        active_version_number=r[10] or 0, created_at=_dt(r[11]), next_run=_dt(r[12]), last_run=_dt(r[13]),
        last_status=ExecutionStatus(r[14]) if r[14] else None, last_error=r[15], run_count=r[16])


def _execution_from_row(r: tuple) -> Execution:
    error = None
    if r[10]:
        e = json.loads(r[10])
        error = ExecutionError(e["type"], e["message"], tuple(e.get("traceback", ())))
    return Execution(
        id=r[0], job_id=r[1], job_name=r[2], version_id=r[3], version_number=r[4], trigger=Trigger(r[5]),
        scheduled_for=_dt(r[6]), attempt=r[7], status=ExecutionStatus(r[8]), result_json=r[9], error=error,
        logs=r[11] or "", started_at=_dt(r[12]), finished_at=_dt(r[13]), duration_ms=r[14], reason=r[15],
        retry_of=r[16], retried_by=r[17])


def _error_json(error: ExecutionError | None) -> str | None:
    if error is None:
        return None
    return json.dumps({"type": error.type, "message": error.message, "traceback": list(error.traceback)})


def _error_line(error: ExecutionError | None) -> str | None:
    return None if error is None else f"{error.type}: {error.message}"[:500]
