"""Every SQL statement the store runs, by name, and the schema migrations.

Times are stored as REAL seconds since the epoch (UTC); JSON as TEXT; artifacts
as rows keyed by their sha256. Queried columns are indexed; the rest is opaque.

Parameters are written ``+:name`` (or ``+?``), except in INSERTs and in the listings
named in ``VALUE_AWARE``. A bare parameter lets SQLite's planner look at its value when
it weighs partial indexes and joins, and a statement whose plan looked at a value is
prepared again every time that parameter is bound: on the attempt path that cost
4-10x the statement itself (45 us instead of 6 us for SELECT_ATTEMPT). Unary plus
hides the value and changes nothing else: same comparison, same affinity, same index.
The listings keep bare parameters on purpose: their optional filters
(``:owner IS NULL OR owner = :owner``) choose an index only once the value is known.
"""

# Each migration runs once, in order, inside one transaction; PRAGMA user_version
# records how many have run. Never edit a released migration: append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        secret_sha256 TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL DEFAULT '',
        admin INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE owners (
        name TEXT PRIMARY KEY,
        trusted_allowed INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE artifacts (
        digest TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        entrypoint TEXT NOT NULL,
        payload BLOB,
        payload_encoding TEXT,
        python_version TEXT NOT NULL,
        library_versions TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        kind TEXT NOT NULL,
        user_id TEXT,
        metadata TEXT NOT NULL,
        active INTEGER NOT NULL,
        status TEXT NOT NULL,
        active_version_id TEXT,
        created_at REAL NOT NULL,
        next_run REAL,
        last_run REAL,
        last_status TEXT,
        last_error TEXT,
        run_count INTEGER NOT NULL DEFAULT 0
    );
    -- Names are unique per owner among live (not archived) jobs.
    CREATE UNIQUE INDEX jobs_owner_name ON jobs(owner, name) WHERE status != 'archived';
    -- The due index: the scheduler reads only the head of it.
    CREATE INDEX jobs_due ON jobs(next_run) WHERE next_run IS NOT NULL AND active = 1;
    CREATE INDEX jobs_user ON jobs(owner, user_id);
    CREATE TABLE versions (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        artifact_digest TEXT NOT NULL REFERENCES artifacts(digest),
        config TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (job_id, number)
    );
    CREATE TABLE executions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        version_id TEXT NOT NULL REFERENCES versions(id),
        trigger TEXT NOT NULL,
        scheduled_for REAL NOT NULL,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,
        concurrent INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        logs TEXT NOT NULL DEFAULT '',
        reason TEXT,
        retry_of TEXT,
        retried_by TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        duration_ms INTEGER
    );
    CREATE INDEX executions_job ON executions(job_id, seq);
    CREATE INDEX executions_owner ON executions(owner, seq);
    -- The dispatch index: queued attempts in due order.
    CREATE INDEX executions_queued ON executions(scheduled_for) WHERE status = 'queued';
    CREATE INDEX executions_running ON executions(job_id) WHERE status = 'running';
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        user_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        parts TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_inbox ON messages(owner, user_id, seq);
    """,
    # 2: per-owner limits; NULL means the engine's default.
    """
    ALTER TABLE owners ADD COLUMN max_jobs INTEGER;
    ALTER TABLE owners ADD COLUMN max_artifact_bytes INTEGER;
    ALTER TABLE owners ADD COLUMN max_messages_per_attempt INTEGER;
    -- Live (unfinished) jobs per owner, kept by triggers so that checking max_jobs at
    -- every create is one row read, not a count over the owner's jobs.
    CREATE TABLE owner_usage (
        owner TEXT PRIMARY KEY,
        live_jobs INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO owner_usage (owner, live_jobs)
        SELECT owner, count(*) FROM jobs
        WHERE status NOT IN ('archived', 'completed', 'failed', 'cancelled') GROUP BY owner;
    CREATE TRIGGER jobs_usage_insert AFTER INSERT ON jobs
    WHEN NEW.status NOT IN ('archived', 'completed', 'failed', 'cancelled')
    BEGIN
        INSERT INTO owner_usage (owner, live_jobs) VALUES (NEW.owner, 1)
        ON CONFLICT (owner) DO UPDATE SET live_jobs = live_jobs + 1;
    END;
    CREATE TRIGGER jobs_usage_delete AFTER DELETE ON jobs
    WHEN OLD.status NOT IN ('archived', 'completed', 'failed', 'cancelled')
    BEGIN
        UPDATE owner_usage SET live_jobs = live_jobs - 1 WHERE owner = OLD.owner;
    END;
    CREATE TRIGGER jobs_usage_status AFTER UPDATE OF status ON jobs
    WHEN (OLD.status NOT IN ('archived', 'completed', 'failed', 'cancelled'))
      != (NEW.status NOT IN ('archived', 'completed', 'failed', 'cancelled'))
    BEGIN
        INSERT INTO owner_usage (owner, live_jobs)
        VALUES (NEW.owner, CASE WHEN NEW.status NOT IN ('archived', 'completed', 'failed', 'cancelled')
                                THEN 1 ELSE 0 END)
        ON CONFLICT (owner) DO UPDATE SET live_jobs = live_jobs +
            CASE WHEN NEW.status NOT IN ('archived', 'completed', 'failed', 'cancelled') THEN 1 ELSE -1 END;
    END;
    """,
    # 3: leases on running attempts, and a per-job cap on running attempts.
    """
    -- Who runs an attempt and until when the claim holds (its timeout plus a grace).
    ALTER TABLE executions ADD COLUMN claimed_by TEXT;
    ALTER TABLE executions ADD COLUMN claimed_until REAL;
    CREATE INDEX executions_lease ON executions(claimed_until) WHERE status = 'running';
    -- Copied from the active version's schedule (max_running); NULL or 0: no cap.
    ALTER TABLE jobs ADD COLUMN max_running INTEGER;
    -- Lookups by name (creation's uniqueness check, GetJob by name, the admin's too):
    -- without it each one scans every job, so creating 100k jobs was quadratic.
    CREATE INDEX jobs_name ON jobs(name, created_at);
    """,
    # 4: a per-owner cap on running attempts.
    """
    ALTER TABLE owners ADD COLUMN max_running INTEGER;
    CREATE INDEX executions_owner_running ON executions(owner) WHERE status = 'running';
    """,
    # 5: queued attempts by job and by owner. The overlap and backlog checks at every
    # trigger and fire count a job's or an owner's waiting attempts; without these
    # they read its whole history, row by row.
    """
    CREATE INDEX executions_job_queued ON executions(job_id) WHERE status = 'queued';
    CREATE INDEX executions_owner_queued ON executions(owner) WHERE status = 'queued';
    """,
)

# -- tokens and owners ---------------------------------------------------------------

INSERT_TOKEN = """
INSERT INTO tokens (id, owner, secret_sha256, label, admin, created_at)
VALUES (:id, :owner, :secret_sha256, :label, :admin, :created_at)
"""
SELECT_TOKEN_BY_SECRET = "SELECT id, owner, admin FROM tokens WHERE secret_sha256 = +? AND revoked_at IS NULL"
REVOKE_OTHER_ADMIN_TOKENS = """
UPDATE tokens SET revoked_at = +? WHERE admin = 1 AND secret_sha256 != +? AND revoked_at IS NULL
"""
COUNT_OWNER_QUEUED = "SELECT count(*) FROM executions WHERE status = 'queued' AND owner = +?"
SELECT_TOKEN_ADMIN = "SELECT admin FROM tokens WHERE id = +? AND revoked_at IS NULL"
REVOKE_TOKEN = "UPDATE tokens SET revoked_at = +? WHERE id = +? AND revoked_at IS NULL"
INSERT_OWNER = "INSERT INTO owners (name, trusted_allowed, created_at) VALUES (?, ?, ?)"
SELECT_OWNER = "SELECT name, trusted_allowed, created_at FROM owners WHERE name = +?"
SELECT_OWNERS = "SELECT name, trusted_allowed, created_at FROM owners ORDER BY name"
OWNER_COLUMNS = ("name, trusted_allowed, created_at, max_jobs, max_artifact_bytes, max_messages_per_attempt, "
                 "max_running")
SELECT_OWNER_FULL = f"SELECT {OWNER_COLUMNS} FROM owners WHERE name = +?"
SELECT_OWNERS_FULL = f"SELECT {OWNER_COLUMNS} FROM owners ORDER BY name"
SET_OWNER_LIMITS = """
UPDATE owners SET max_jobs = +:max_jobs, max_artifact_bytes = +:max_artifact_bytes,
                  max_messages_per_attempt = +:max_messages_per_attempt, max_running = +:max_running
WHERE name = +:name
"""
# Jobs that count against an owner's max_jobs: every one not yet finished, counted by
# the triggers of migration 2 (COUNT_LIVE_JOBS_SLOW is what they keep, for tests).
COUNT_LIVE_JOBS = "SELECT coalesce((SELECT live_jobs FROM owner_usage WHERE owner = +?), 0)"
COUNT_LIVE_JOBS_SLOW = """
SELECT count(*) FROM jobs WHERE owner = +? AND status NOT IN ('archived', 'completed', 'failed', 'cancelled')
"""

# -- artifacts --------------------------------------------------------------------------

INSERT_ARTIFACT = """
INSERT OR IGNORE INTO artifacts
    (digest, source, entrypoint, payload, payload_encoding, python_version, library_versions, created_at)
VALUES (:digest, :source, :entrypoint, :payload, :payload_encoding, :python_version, :library_versions, :created_at)
"""
SELECT_ARTIFACT = """
SELECT source, entrypoint, payload, payload_encoding, python_version, library_versions
FROM artifacts WHERE digest = +?
"""
ARTIFACT_EXISTS = "SELECT 1 FROM artifacts WHERE digest = +?"

# -- jobs -------------------------------------------------------------------------------

# A job's columns as the store maps them; `{active}` names the join of its active version.
_JOB_COLUMNS = """
j.id, j.owner, j.name, j.description, j.kind, j.user_id, j.metadata, j.active, j.status,
j.active_version_id, {active}.number, j.created_at, j.next_run, j.last_run, j.last_status,
j.last_error, j.run_count
"""
JOB_COLUMNS = _JOB_COLUMNS.format(active="v")
INSERT_JOB = """
INSERT INTO jobs (id, owner, name, description, kind, user_id, metadata, active, status, created_at, next_run)
VALUES (:id, :owner, :name, :description, :kind, :user_id, :metadata, :active, :status, :created_at, :next_run)
"""
SELECT_JOB_BY_ID = f"""
SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN versions v ON v.id = j.active_version_id
WHERE j.id = +:ref AND (+:owner IS NULL OR j.owner = +:owner)
"""
# By name: the live job first, else the most recently archived one.
SELECT_JOB_BY_NAME = f"""
SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN versions v ON v.id = j.active_version_id
WHERE j.name = +:ref AND (+:owner IS NULL OR j.owner = +:owner)
ORDER BY j.status = 'archived', j.created_at DESC LIMIT 1
"""
SELECT_JOBS = f"""
SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN versions v ON v.id = j.active_version_id
WHERE (:owner IS NULL OR j.owner = :owner)
  AND (:include_dynamic OR j.kind = 'predefined')
  AND (:include_finished OR j.status NOT IN ('completed', 'failed', 'cancelled', 'archived'))
  AND (:search IS NULL OR instr(lower(j.name || ' ' || j.description), lower(:search)) > 0)
  AND (:user_id IS NULL OR j.user_id = :user_id)
  AND (j.kind = 'dynamic', j.name, j.id) > (:after_rank, :after_name, :after_id)
ORDER BY j.kind = 'dynamic', j.name, j.id
LIMIT :limit
"""
SELECT_PREDEFINED_NAMES = "SELECT id, name FROM jobs WHERE owner = +? AND kind = 'predefined' AND status != 'archived'"
SELECT_ACTIVE_VERSION_ID = "SELECT active_version_id FROM jobs WHERE id = +?"
SET_ACTIVE_VERSION = """
UPDATE jobs SET active_version_id = +:version_id, next_run = +:next_run, status = +:status,
    max_running = (SELECT json_extract(config, '$.schedule.max_running') FROM versions WHERE id = +:version_id)
WHERE id = +:id
"""
SELECT_METADATA = "SELECT metadata FROM jobs WHERE id = +?"
SELECT_JOB_STATUS = "SELECT status FROM jobs WHERE id = +?"
SET_METADATA = "UPDATE jobs SET metadata = +? WHERE id = +?"
SET_DESCRIPTION = "UPDATE jobs SET description = +? WHERE id = +?"
SET_ACTIVE = "UPDATE jobs SET active = +:active, next_run = +:next_run, status = +:status WHERE id = +:id"
PAUSE_JOB = "UPDATE jobs SET active = 0 WHERE id = +?"
SET_STATUS = "UPDATE jobs SET status = +?, next_run = CASE WHEN +? THEN NULL ELSE next_run END WHERE id = +?"
SET_NEXT_RUN = "UPDATE jobs SET next_run = +? WHERE id = +?"
SELECT_NEXT_RUN_OWNER = "SELECT next_run, owner FROM jobs WHERE id = +?"
SELECT_NEXT_RUN = "SELECT next_run FROM jobs WHERE id = +?"
DELETE_JOB = "DELETE FROM jobs WHERE id = +?"
DELETE_VERSIONS = "DELETE FROM versions WHERE job_id = +?"
ARCHIVE_JOB = "UPDATE jobs SET status = 'archived', active = 0, next_run = NULL WHERE id = +?"
JOB_HAS_HISTORY = "SELECT 1 FROM executions WHERE job_id = +? LIMIT 1"
# A job's run record and its status after an attempt, in one write. :status is what the
# attempt leaves it in (NULL: unchanged). A job deleted or cancelled meanwhile stays so;
# one with another attempt running is "running" rather than "active"; a completed or
# failed one has no next fire.
RECORD_RUN = """
UPDATE jobs SET last_run = +:last_run, last_status = +:last_status, last_error = +:last_error,
    run_count = run_count + 1,
    status = CASE
        WHEN +:status IS NULL OR status IN ('archived', 'cancelled') THEN status
        WHEN +:status = 'active' AND EXISTS (
            SELECT 1 FROM executions r WHERE r.job_id = jobs.id AND r.status = 'running') THEN 'running'
        ELSE +:status END,
    next_run = CASE
        WHEN +:status IN ('completed', 'failed') AND status NOT IN ('archived', 'cancelled') THEN NULL
        ELSE next_run END
WHERE id = +:id
"""

# -- versions -----------------------------------------------------------------------------

VERSION_COLUMNS = "id, job_id, number, artifact_digest, config, created_at"
INSERT_VERSION = """
INSERT INTO versions (id, job_id, number, artifact_digest, config, created_at)
VALUES (:id, :job_id, (SELECT coalesce(max(number), 0) + 1 FROM versions WHERE job_id = :job_id),
        :artifact_digest, :config, :created_at)
RETURNING number
"""
SELECT_VERSION = f"SELECT {VERSION_COLUMNS} FROM versions WHERE id = +?"
SELECT_VERSION_BY_NUMBER = f"SELECT {VERSION_COLUMNS} FROM versions WHERE job_id = +? AND number = +?"
SELECT_VERSIONS = f"SELECT {VERSION_COLUMNS} FROM versions WHERE job_id = +? ORDER BY number DESC"

# -- the scheduler ----------------------------------------------------------------------------

SELECT_DUE_JOBS = """
SELECT id, active_version_id, next_run FROM jobs
WHERE next_run IS NOT NULL AND active = 1 AND next_run <= +?
ORDER BY next_run LIMIT +?
"""
# The earliest next fire of a job, and of a queued attempt: only of those not yet due,
# since a due one that could not start waits for a wake-up (an attempt finishing, a
# trigger), so a blocked queue never spins the loop.
NEXT_WAKEUP = """
SELECT (SELECT min(next_run) FROM jobs WHERE next_run IS NOT NULL AND active = 1),
       (SELECT min(scheduled_for) FROM executions WHERE status = 'queued' AND scheduled_for > +?)
"""
# (queued, running) attempts of a job: each count reads only its partial index.
JOB_BUSY = """
SELECT (SELECT count(*) FROM executions WHERE job_id = +:job_id AND status = 'queued'),
       (SELECT count(*) FROM executions WHERE job_id = +:job_id AND status = 'running')
"""
# Queued attempts that are due and may start: a job runs one attempt at a time
# unless the attempt was marked concurrent (overlap "allow", or a forced trigger),
# and never more than its max_running at once.
SELECT_STARTABLE = """
SELECT e.id, e.job_id, e.concurrent, coalesce(j.max_running, 0),
       (SELECT count(*) FROM executions r WHERE r.job_id = e.job_id AND r.status = 'running'),
       e.owner, coalesce(o.max_running, 0),
       (SELECT count(*) FROM executions r WHERE r.owner = e.owner AND r.status = 'running')
FROM executions e JOIN jobs j ON j.id = e.job_id LEFT JOIN owners o ON o.name = e.owner
WHERE e.status = 'queued' AND e.scheduled_for <= +:now
  AND (e.concurrent OR NOT EXISTS (
        SELECT 1 FROM executions r WHERE r.job_id = e.job_id AND r.status = 'running'))
  AND (coalesce(j.max_running, 0) = 0 OR j.max_running > (
        SELECT count(*) FROM executions r WHERE r.job_id = e.job_id AND r.status = 'running'))
  -- In the query, not only after it: an owner at its cap at the head of the queue
  -- must not fill the LIMIT and hold back every other owner's attempts.
  AND (coalesce(o.max_running, 0) = 0 OR o.max_running > (
        SELECT count(*) FROM executions r WHERE r.owner = e.owner AND r.status = 'running'))
ORDER BY e.scheduled_for, e.seq
LIMIT +:limit
"""
# The claim: running, by this engine, until the version's timeout plus a grace. An
# attempt claimed ahead of its due time starts at that time.
START_EXECUTION = """
UPDATE executions SET status = 'running', started_at = max(+:now, scheduled_for), claimed_by = +:engine,
    claimed_until = max(+:now, scheduled_for) + +:grace + coalesce(
        (SELECT json_extract(v.config, '$.timeout_seconds') FROM versions v WHERE v.id = executions.version_id), 0)
WHERE id = +:id AND status = 'queued'
"""
SET_JOB_RUNNING = "UPDATE jobs SET status = 'running' WHERE id = +? AND status IN ('pending', 'active')"
# Running attempts whose claim is not this engine's: their engine died (one engine per
# SQLite store). A store shared by several engines would also require an expired lease.
ABANDONED_EXECUTIONS = """
SELECT id FROM executions WHERE status = 'running' AND claimed_by IS NOT +:engine ORDER BY seq
"""

# -- executions -----------------------------------------------------------------------------

EXECUTION_COLUMNS = """
e.id, e.job_id, j.name, e.version_id, v.number, e.trigger, e.scheduled_for, e.attempt, e.status,
e.result, e.error, e.logs, e.started_at, e.finished_at, e.duration_ms, e.reason, e.retry_of, e.retried_by
"""
EXECUTION_FROM = """
FROM executions e JOIN jobs j ON j.id = e.job_id JOIN versions v ON v.id = e.version_id
"""
# What a claimed attempt runs with, but for its version and artifact (immutable, and
# cached): the execution, its owner, its job and the owner's limits, in one read.
SELECT_ATTEMPT = f"""
SELECT {EXECUTION_COLUMNS}, e.owner, {_JOB_COLUMNS.format(active="av")},
       {", ".join("o." + c for c in OWNER_COLUMNS.split(", "))}
{EXECUTION_FROM} LEFT JOIN versions av ON av.id = j.active_version_id LEFT JOIN owners o ON o.name = e.owner
WHERE e.id = +?
"""
# Where each part of a SELECT_ATTEMPT row ends.
EXECUTION_WIDTH = EXECUTION_COLUMNS.count(",") + 1
JOB_WIDTH = _JOB_COLUMNS.count(",") + 1
INSERT_EXECUTION = """
INSERT INTO executions (id, job_id, owner, version_id, trigger, scheduled_for, attempt, status,
                        concurrent, reason, retry_of, created_at, finished_at)
VALUES (:id, :job_id, :owner, :version_id, :trigger, :scheduled_for, :attempt, :status,
        :concurrent, :reason, :retry_of, :created_at, :finished_at)
"""
SELECT_EXECUTION = f"""
SELECT {EXECUTION_COLUMNS} {EXECUTION_FROM}
WHERE e.id = +:id AND (+:owner IS NULL OR e.owner = +:owner)
"""
SELECT_EXECUTIONS = f"""
SELECT {EXECUTION_COLUMNS}, e.seq {EXECUTION_FROM}
WHERE (:owner IS NULL OR e.owner = :owner)
  AND (:job_id IS NULL OR e.job_id = :job_id)
  AND (:since IS NULL OR e.created_at >= :since)
  AND (:statuses IS NULL OR instr(:statuses, ',' || e.status || ',') > 0)
  AND e.seq < :before_seq
ORDER BY e.seq DESC
LIMIT :limit
"""
# Finishes a running attempt; returns nothing if it was not running (finished already).
FINISH_EXECUTION = """
UPDATE executions
SET status = +:status, result = +:result, error = +:error, logs = +:logs,
    finished_at = +:finished_at, duration_ms = +:duration_ms
WHERE id = +:id AND status = 'running'
RETURNING job_id, version_id, attempt, owner
"""
CANCEL_QUEUED_OF_JOB = """
UPDATE executions SET status = 'cancelled', reason = 'job deleted', finished_at = +?
WHERE job_id = +? AND status = 'queued'
"""
CANCEL_QUEUED = """
UPDATE executions SET status = 'cancelled', finished_at = +:now, reason = +:reason
WHERE id = +:id AND status = 'queued'
"""
SET_RETRIED_BY = "UPDATE executions SET retried_by = +? WHERE id = +?"
CLEANUP_WHERE = """
WHERE finished_at IS NOT NULL AND finished_at < :before
  AND (:owner IS NULL OR owner = :owner) AND (:job_id IS NULL OR job_id = :job_id)
"""
CLEANUP_SELECT = f"""
SELECT count(*), coalesce(sum(length(coalesce(result, '')) + length(coalesce(error, '')) + length(logs)), 0)
FROM executions {CLEANUP_WHERE}
"""
CLEANUP_BY_JOB = """
SELECT e.job_id, j.name, count(*),
       coalesce(sum(length(coalesce(e.result, '')) + length(coalesce(e.error, '')) + length(e.logs)), 0)
FROM executions e JOIN jobs j ON j.id = e.job_id
WHERE e.finished_at IS NOT NULL AND e.finished_at < :before
  AND (:owner IS NULL OR e.owner = :owner) AND (:job_id IS NULL OR e.job_id = :job_id)
GROUP BY e.job_id ORDER BY j.name, e.job_id
"""
CLEANUP_UNLINK_RETRIES = f"UPDATE executions SET retry_of = NULL WHERE retry_of IN (SELECT id FROM executions {CLEANUP_WHERE})"
CLEANUP_DELETE = f"DELETE FROM executions {CLEANUP_WHERE}"

# Retention of one job (Store.prune_job_history): its finished executions beyond the
# `keep_last` newest go, and those that finished before `before`. The first three find
# the newest one beyond keep_last, the cutoff, reading the index executions_job and a
# few rows, never the job's whole history. First, the (keep_last + 1)-th newest
# execution of any status (none: nothing is over the count)...
RETENTION_NTH_NEWEST = """
SELECT seq FROM executions WHERE job_id = +:job_id ORDER BY seq DESC LIMIT 1 OFFSET +:keep_last
"""
# ...then how many of the keep_last newer ones are unfinished (queued or running)...
RETENTION_UNFINISHED_AFTER = """
SELECT (SELECT count(*) FROM executions WHERE job_id = +:job_id AND status = 'queued' AND seq > +:seq)
     + (SELECT count(*) FROM executions WHERE job_id = +:job_id AND status = 'running' AND seq > +:seq)
"""
# ...as many finished ones from there down still count among the keep_last newest
# finished; the next one is the cutoff.
RETENTION_CUTOFF = """
SELECT seq FROM executions WHERE job_id = +:job_id AND seq <= +:seq AND finished_at IS NOT NULL
ORDER BY seq DESC LIMIT 1 OFFSET +:unfinished
"""
# The job's oldest execution (by creation) that finished at or after `before`: the
# quick age limit after an attempt removes only older ones (RETENTION_WHERE's below_seq).
RETENTION_OLDEST_KEPT = """
SELECT seq FROM executions WHERE job_id = +:job_id AND finished_at >= +:before ORDER BY seq LIMIT 1
"""
RETENTION_WHERE = """
WHERE job_id = +:job_id AND seq < +:below_seq AND finished_at IS NOT NULL
  AND (seq <= +:cutoff_seq OR finished_at < +:before)
"""
RETENTION_SELECT = f"""
SELECT count(*), coalesce(sum(length(coalesce(result, '')) + length(coalesce(error, '')) + length(logs)), 0)
FROM executions {RETENTION_WHERE}
"""
# Retries that stay no longer point at a removed attempt (found by its retried_by).
RETENTION_UNLINK_RETRIES = f"""
UPDATE executions SET retry_of = NULL
WHERE id IN (SELECT retried_by FROM executions {RETENTION_WHERE} AND retried_by IS NOT NULL)
"""
RETENTION_DELETE = f"DELETE FROM executions {RETENTION_WHERE}"
JOBS_WITH_FINISHED_HISTORY = """
SELECT id FROM jobs j
WHERE EXISTS (SELECT 1 FROM executions e WHERE e.job_id = j.id AND e.finished_at IS NOT NULL)
"""

# -- messages ------------------------------------------------------------------------------

INSERT_MESSAGE = """
INSERT INTO messages (id, owner, user_id, job_id, execution_id, parts, created_at)
VALUES (:id, :owner, :user_id, :job_id, :execution_id, :parts, :created_at)
"""
SELECT_MESSAGE_SEQ = "SELECT seq FROM messages WHERE id = +:id AND (+:owner IS NULL OR owner = +:owner)"
SELECT_MESSAGES = """
SELECT id, owner, user_id, job_id, execution_id, parts, created_at, seq FROM messages
WHERE (:owner IS NULL OR owner = :owner) AND user_id = :user_id AND seq > :after_seq
ORDER BY seq LIMIT :limit
"""

# Listings whose plan depends on which optional filters are set (see the module docstring).
VALUE_AWARE = frozenset({"SELECT_JOBS", "SELECT_EXECUTIONS", "CLEANUP_WHERE", "CLEANUP_BY_JOB", "SELECT_MESSAGES"})
