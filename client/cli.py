"""The `capsule` command line.

One small function per command (`cmd_*`), each taking the parsed arguments and the
renderer and returning an exit code; one renderer (`Renderer.show`) decides between
aligned plain-text tables and `--json`; one error boundary (`main`) turns a
CapsuleError into one line on stderr and an exit code:

    0  done
    1  a job run failed (or did not finish in time), or the engine refused the request
       (not found, already exists, failed precondition, ...)
    2  usage or connection: bad arguments, invalid values, no token or permission,
       engine unreachable or not answering

`capsule serve` starts an engine (imported lazily); every other command talks gRPC to
one through `client.Jobs`. docs/cli.md documents every command's JSON shape.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import io
import json
import os
import re
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence, TextIO

from client.errors import (
    CapsuleError,
    DeadlineExceeded,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from client.jobs import DEFAULT_ADDRESS, DeployResult, Execution, Job, JobHandle, Jobs
from engine import model
from engine.schedules import Schedule, describe

UTC = timezone.utc
_USAGE_ERRORS = (InvalidArgument, Unauthenticated, PermissionDenied, Unavailable, DeadlineExceeded)
DEFAULT_PARALLEL = 4
_STYLED: ContextVar[bool] = ContextVar("capsule_styled_tables", default=False)
_STATUS_STYLES = {
    "succeeded": "green", "failed": "red", "timed_out": "red", "crashed": "red", "cancelled": "yellow",
    "skipped": "yellow", "missed": "yellow", "running": "cyan", "queued": "cyan", "paused": "yellow",
}
_MAX_CELL = 60
_MAX_LAST_CELL = 200
_ACTION_LABELS = {"created": "created", "new_version": "new version", "unchanged": "unchanged", "pruned": "pruned"}

_EPILOG = """\
environment:
  CAPSULE_ADDRESS  engine address HOST:PORT (default 127.0.0.1:50051)
  CAPSULE_TOKEN    bearer token (default: the token in $CAPSULE_HOME/admin.token)
  CAPSULE_HOME     the engine's home directory (default ~/.capsule)
  CAPSULE_CA       CA certificate (PEM) of an engine serving TLS; makes the connection TLS

exit codes: 0 done, 1 a job run failed or the request was refused, 2 usage or connection error
"""


# -- the error boundary -----------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """Run one `capsule` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    out = Renderer(as_json=args.json, stream=sys.stdout)
    styled = _STYLED.set(not args.json and styled_terminal(sys.stdout))
    try:
        return args.run(args, out)
    except CapsuleError as exc:
        print(f"capsule: error: {exc.message}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`capsule ... | head`): stop quietly, as Unix tools do,
        # and keep the interpreter from complaining while it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        _STYLED.reset(styled)


def exit_code(error: CapsuleError) -> int:
    """2 for usage and connection errors, 1 for every other refusal."""
    return 2 if isinstance(error, _USAGE_ERRORS) else 1


# -- the renderer -------------------------------------------------------------------------------

class Column(NamedTuple):
    header: str
    cell: Callable[[Mapping[str, Any]], Any]


def col(header: str, key: str) -> Column:
    return Column(header, lambda row: row.get(key))


class Renderer:
    """Where every command's output goes: JSON data, or the text for humans."""

    def __init__(self, as_json: bool, stream: TextIO) -> None:
        self.as_json = as_json
        self.stream = stream

    def show(self, data: Any, human: str) -> None:
        """Print `data` as JSON with --json, else the human text."""
        text = json.dumps(data, indent=2, default=_json_default, ensure_ascii=False) if self.as_json else human
        print(text, file=self.stream)

    def item(self, data: Any, human: str) -> None:
        """One item of a stream: one JSON line with --json, else one line of text."""
        text = json.dumps(data, default=_json_default, ensure_ascii=False) if self.as_json else human
        print(text, file=self.stream, flush=True)


def styled_terminal(stream: TextIO) -> bool:
    """Tables drawn with rich (bold headers, coloured statuses) only on a terminal, and
    never with NO_COLOR set or TERM=dumb; pipes and files get plain aligned text."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], empty: str = "(none)") -> str:
    """An aligned table (plain text, or rich on a terminal); `empty` when there are no rows."""
    if not rows:
        return empty
    if _STYLED.get():
        return _rich_table(rows, columns)
    lines = [[c.header for c in columns]] + [_row_cells(row, columns) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(_table_line(line, widths) for line in lines)


def _row_cells(row: Mapping[str, Any], columns: Sequence[Column]) -> list[str]:
    """Every cell cut to _MAX_CELL but the last, which cannot break the alignment."""
    last = len(columns) - 1
    return [_cell(c.cell(row), limit=_MAX_CELL if i < last else _MAX_LAST_CELL) for i, c in enumerate(columns)]


def _table_line(cells: list[str], widths: list[int]) -> str:
    padded = [value.ljust(width) for value, width in zip(cells[:-1], widths)] + cells[-1:]
    return "  ".join(padded).rstrip()


def _rich_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for column in columns:
        table.add_column(column.header, overflow="fold")
    for row in rows:
        cells = _row_cells(row, columns)
        table.add_row(*(Text(cell, style=_STATUS_STYLES.get(cell.split(" ")[0], "")) for cell in cells))
    buffer = io.StringIO()
    width = shutil.get_terminal_size((200, 24)).columns
    Console(file=buffer, force_terminal=True, width=width, highlight=False).print(table)
    return buffer.getvalue().rstrip("\n")


def format_fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """`label  value` lines with the values aligned; times absolute and relative."""
    pairs = list(pairs)
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{label.ljust(width)}  {_cell(value, limit=None)}" for label, value in pairs)


def relative_time(moment: datetime, now: datetime | None = None) -> str:
    """`in 3h 5m`, `2d 4h ago`, `now`; the date itself beyond 60 days."""
    seconds = (moment - (now or _now())).total_seconds()
    size = abs(seconds)
    if size < 1:
        return "now"
    if size >= 60 * 86400:
        return absolute_time(moment)
    span = _span(int(size))
    return f"in {span}" if seconds > 0 else f"{span} ago"


def _span(seconds: int) -> str:
    for unit, sub, size, sub_size in (("d", "h", 86400, 3600), ("h", "m", 3600, 60), ("m", "s", 60, 1)):
        if seconds >= size:
            big, rest = divmod(seconds, size)
            small = rest // sub_size
            return f"{big}{unit} {small}{sub}" if small and big < 10 else f"{big}{unit}"
    return f"{seconds}s"


def absolute_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _cell(value: Any, limit: int | None = _MAX_CELL) -> str:
    """One value for humans: tables (with a `limit`) show times relative to now;
    field lists (no limit) show them absolute, then relative."""
    if value is None or value == "":
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, datetime):
        text = relative_time(value) if limit else f"{absolute_time(value)} ({relative_time(value)})"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, default=_json_default, ensure_ascii=False)
    else:
        text = str(value)
    text = " ".join(text.split()) if limit else text
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


# -- JSON shapes (also the rows of the tables) ------------------------------------------------

def job_data(job: JobHandle) -> dict[str, Any]:
    return {
        "id": job.id, "name": job.name, "description": job.description, "kind": job.kind,
        "owner": job.owner, "user_id": job.user_id, "metadata": dict(job.metadata),
        "active": job.active, "status": job.status, "version": job.version,
        "active_version_id": job.active_version_id, "schedule": schedule_data(job.schedule),
        "schedule_human": job.schedule_human, "next_run": job.next_run,
        "next_fire_times": job.next_fire_times, "last_run": job.last_run,
        "last_status": job.last_status, "last_error": job.last_error, "run_count": job.run_count,
        "retention": dataclasses.asdict(job.retention), "created_at": job.created_at,
    }


def schedule_data(schedule: Schedule | None) -> dict[str, Any] | None:
    if schedule is None:
        return None
    when = schedule.when
    policy = dataclasses.asdict(schedule)
    policy.pop("when")
    kind = type(when).__name__.lower() if when is not None else None
    return {"kind": kind, **(dataclasses.asdict(when) if when is not None else {}), **policy}


def execution_data(execution: Execution) -> dict[str, Any]:
    error = execution.error
    return {
        "id": execution.id, "job_id": execution.job_id, "job_name": execution.job_name,
        "version_id": execution.version_id, "version": execution.version_number,
        "trigger": execution.trigger, "status": execution.status, "attempt": execution.attempt,
        "scheduled_for": execution.scheduled_for, "started_at": execution.started_at,
        "finished_at": execution.finished_at, "duration_ms": execution.duration_ms,
        "result": execution.result, "result_json": execution.result_json,
        "error": dataclasses.asdict(error) if error else None,
        "logs": execution.logs, "reason": execution.reason,
        "retry_of": execution.retry_of, "retried_by": execution.retried_by,
    }


def version_data(version: model.Version, active_id: str) -> dict[str, Any]:
    return {
        "id": version.id, "number": version.number, "active": version.id == active_id,
        "artifact_digest": version.artifact_digest, "schedule": schedule_data(version.schedule),
        "schedule_human": describe(version.schedule), "timeout_seconds": version.timeout_seconds,
        "retry": dataclasses.asdict(version.retry), "isolation": version.isolation,
        "limits": dataclasses.asdict(version.limits),
        "retention": dataclasses.asdict(version.retention.effective()), "created_at": version.created_at,
    }


def message_data(message: model.Message) -> dict[str, Any]:
    return {
        "id": message.id, "user_id": message.user_id, "owner": message.owner, "job_id": message.job_id,
        "execution_id": message.execution_id, "parts": list(message.parts), "created_at": message.created_at,
    }


def run_summary_data(executions: Sequence[Execution], waited: bool) -> dict[str, Any]:
    """What `jobs run` with several jobs (or --all) did: counts, then every execution."""
    rows = [execution_data(e) for e in executions]
    succeeded = sum(1 for e in executions if e.succeeded)
    unfinished = sum(1 for e in executions if not e.finished)
    return {
        "total": len(rows), "succeeded": succeeded, "failed": len(rows) - succeeded - unfinished,
        "unfinished": unfinished, "waited": waited, "executions": rows,
    }


def logs_data(execution: Execution) -> dict[str, Any]:
    return {
        "execution_id": execution.id, "job_id": execution.job_id, "job_name": execution.job_name,
        "status": execution.status, "attempt": execution.attempt, "logs": execution.logs,
    }


def cleanup_data(report: model.CleanupReport, days: float) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run, "older_than_days": days, "before": report.before,
        "executions_removed": report.executions_removed, "bytes_removed": report.bytes_removed,
        "jobs": [dataclasses.asdict(j) for j in report.jobs],
    }


def deploy_data(result: DeployResult) -> dict[str, Any]:
    return {"name": result.name, "action": result.action, "job": job_data(result.job) if result.job else None}


# -- human text --------------------------------------------------------------------------------

JOB_COLUMNS = (
    col("NAME", "name"), col("KIND", "kind"),
    Column("STATUS", lambda r: _status_label(r["status"], r["active"])),
    col("VER", "version"), col("SCHEDULE", "schedule_human"), col("NEXT RUN", "next_run"),
    col("LAST", "last_status"), col("RUNS", "run_count"),
)
EXECUTION_COLUMNS = (
    col("ID", "id"), col("JOB", "job_name"), col("VER", "version"), col("TRIGGER", "trigger"),
    col("STATUS", "status"), col("TRY", "attempt"), col("SCHEDULED FOR", "scheduled_for"),
    Column("DURATION", lambda r: f"{r['duration_ms']} ms" if r["duration_ms"] is not None else None),
    Column("NOTE", lambda r: r["reason"] or _error_line(r["error"])),
)
VERSION_COLUMNS = (
    Column("VER", lambda r: f"{r['number']}{' *' if r['active'] else ''}"), col("CREATED", "created_at"),
    Column("DIGEST", lambda r: r["artifact_digest"][:12]), col("ISOLATION", "isolation"),
    col("TIMEOUT", "timeout_seconds"), col("SCHEDULE", "schedule_human"),
)
DEPLOY_COLUMNS = (
    col("NAME", "name"), Column("ACTION", lambda r: _ACTION_LABELS.get(r["action"], r["action"])),
    Column("VER", lambda r: r["job"]["version"] if r["job"] else None),
    Column("SCHEDULE", lambda r: r["job"]["schedule_human"] if r["job"] else None),
    Column("NEXT RUN", lambda r: r["job"]["next_run"] if r["job"] else None),
)
RUN_COLUMNS = (
    col("JOB", "job_name"), col("EXECUTION", "id"), col("STATUS", "status"), col("TRY", "attempt"),
    Column("DURATION", lambda r: f"{r['duration_ms']} ms" if r["duration_ms"] is not None else None),
    Column("NOTE", lambda r: r["reason"] or _error_line(r["error"])),
)
CLEANUP_COLUMNS = (
    Column("JOB", lambda r: r["job_name"] or r["job_id"] or "(all)"), col("EXECUTIONS", "executions_removed"),
    Column("SIZE", lambda r: _size(r["bytes_removed"])),
)
MESSAGE_COLUMNS = (
    col("CREATED", "created_at"), col("JOB", "job_id"), Column("TEXT", lambda r: _message_text(r["parts"])),
)
LAYER_COLUMNS = (col("LAYER", "name"), col("ACTIVE", "active"), col("DETAIL", "detail"))


def job_text(data: Mapping[str, Any]) -> str:
    fields = format_fields([
        ("name", data["name"]), ("id", data["id"]), ("description", data["description"]),
        ("kind", data["kind"]), ("owner", data["owner"]), ("user", data["user_id"]),
        ("status", data["status"]), ("active", data["active"]),
        ("version", f"{data['version']} ({data['active_version_id']})"),
        ("schedule", data["schedule_human"]), ("next run", data["next_run"]),
        ("last run", data["last_run"]), ("last status", data["last_status"]),
        ("last error", data["last_error"]), ("runs", data["run_count"]),
        ("retention", retention_text(data["retention"])),
        ("created", data["created_at"]), ("metadata", data["metadata"]),
    ])
    fires = [f"  {_cell(t, limit=None)}" for t in data["next_fire_times"]]
    return fields + ("\nnext fire times:\n" + "\n".join(fires) if fires else "")


def execution_text(data: Mapping[str, Any]) -> str:
    optional = [
        ("started", data["started_at"]), ("finished", data["finished_at"]),
        ("duration", f"{data['duration_ms']} ms" if data["duration_ms"] is not None else None),
        ("reason", data["reason"]),
        ("result", json.dumps(data["result"], ensure_ascii=False) if data["result_json"] is not None else None),
    ]
    lines = [format_fields([
        ("execution", data["id"]), ("job", f"{data['job_name'] or data['job_id']} (version {data['version']})"),
        ("status", f"{data['status']} (attempt {data['attempt']})"), ("trigger", data["trigger"]),
        *[(label, value) for label, value in optional if value is not None],
    ])]
    if data["error"]:
        lines.append(f"error: {_error_line(data['error'])}")
        lines.extend(f"  {line.rstrip()}" for line in data["error"]["traceback"])
    if data["logs"]:
        lines.append("logs:")
        lines.extend(f"  {line}" for line in data["logs"].rstrip("\n").splitlines())
    return "\n".join(lines)


def retention_text(retention: Mapping[str, Any]) -> str:
    return f"keep the last {retention['keep_last']} runs, for at most {retention['max_age_days']:g} days"


def cleanup_text(data: Mapping[str, Any]) -> str:
    verb = "would remove" if data["dry_run"] else "removed"
    line = (f"{verb} {data['executions_removed']} executions finished more than {data['older_than_days']:g} "
            f"days ago ({_size(data['bytes_removed'])} of logs, results and errors)")
    if not data["jobs"]:
        return line
    table = format_table(data["jobs"], CLEANUP_COLUMNS)
    return f"{table}\n{line}" + ("\n(dry run: nothing was removed)" if data["dry_run"] else "")


def run_summary_text(data: Mapping[str, Any]) -> str:
    table = format_table(data["executions"], RUN_COLUMNS, empty="no jobs to run")
    if not data["waited"]:
        return f"{table}\n{data['total']} queued (not waited for; see `capsule jobs history`)"
    summary = f"{data['total']} total, {data['succeeded']} succeeded, {data['failed']} failed"
    if data["unfinished"]:
        summary += f", {data['unfinished']} still running (see `capsule jobs history`)"
    return f"{table}\n{summary}"


def _status_label(status: model.JobStatus, active: bool) -> str:
    paused = not active and status not in model.FINISHED_JOB_STATUSES
    return f"{status} (paused)" if paused else str(status)


def _error_line(error: Mapping[str, Any] | None) -> str | None:
    return f"{error['type']}: {error['message']}" if error else None


def _message_text(parts: Sequence[Mapping[str, Any]]) -> str:
    return " ".join(str(p.get("text")) if p.get("type") == "text" else json.dumps(p) for p in parts)


# -- commands ---------------------------------------------------------------------------------

def connect(args: argparse.Namespace) -> Jobs:
    return Jobs.connect(args.address, args.token, ca=args.ca)


def cmd_serve(args: argparse.Namespace, out: Renderer) -> int:
    try:
        from engine import server
    except ImportError as exc:
        raise CapsuleError(f"cannot start the engine: {exc}; reinstall capsule-jobs") from None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise InvalidArgument("serve: --tls-cert and --tls-key go together; pass both PEM files, or neither")
    try:
        server.serve_forever(home=args.home, db=args.db, listen=args.listen,
                             tls_cert=args.tls_cert, tls_key=args.tls_key,
                             max_running=args.max_running)
    except OSError as exc:
        raise Unavailable(f"serve: {exc}") from None
    return 0


def cmd_jobs_list(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        found = jobs.get_all(include_dynamic=args.dynamic or args.all, include_finished=args.all,
                             search=args.search, user_id=args.user)
    rows = [job_data(j) for j in found]
    out.show(rows, format_table(rows, JOB_COLUMNS, empty="no jobs (--all shows finished and dynamic ones)"))
    return 0


def cmd_jobs_show(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        data = job_data(jobs.get_job(args.job))
    out.show(data, job_text(data))
    return 0


def cmd_jobs_run(args: argparse.Namespace, out: Renderer) -> int:
    refs = _run_refs(args)
    with connect(args) as jobs:
        targets = [j.name for j in jobs.get_all()] if args.all else refs
        if len(targets) == 1 and not args.all:
            return _run_one(jobs, args, targets[0], out)
        executions = _run_many(jobs, args, targets)
    data = run_summary_data(executions, waited=not args.no_wait)
    out.show(data, run_summary_text(data))
    return 0 if args.no_wait or data["failed"] + data["unfinished"] == 0 else 1


def _run_refs(args: argparse.Namespace) -> list[str]:
    if args.all and args.jobs:
        raise InvalidArgument("jobs run: pass job names or --all, not both")
    if not args.all and not args.jobs:
        raise InvalidArgument("jobs run: name at least one job (NAME|ID ...), or pass --all")
    if args.version is not None and (args.all or len(args.jobs) > 1):
        raise InvalidArgument("jobs run: --version needs exactly one job; run the others separately")
    return list(dict.fromkeys(args.jobs))


def _run_one(jobs: Jobs, args: argparse.Namespace, ref: str, out: Renderer) -> int:
    progress = Progress(1, sys.stderr, waiting=not args.no_wait)
    try:
        execution = jobs.trigger(ref, version=args.version, force=args.force,
                                 wait=not args.no_wait, timeout=args.timeout)
    finally:
        progress.close()
    data = execution_data(execution)
    out.show(data, execution_text(data))
    if args.no_wait or execution.succeeded:
        return 0
    if not execution.finished:
        print(f"capsule: {execution.id} is still {execution.status} after {args.timeout:g} s; "
              f"see `capsule jobs history --job {ref}`", file=sys.stderr)
    return 1


def _run_many(jobs: Jobs, args: argparse.Namespace, refs: Sequence[str]) -> list[Execution]:
    """Triggers every job (each resolved first, so a typo runs nothing), at most
    --parallel at a time (one with --sequential); results in the order given."""
    handles = [jobs.get_job(ref) for ref in refs]
    progress = Progress(len(handles), sys.stderr, waiting=not args.no_wait)

    def run(job: JobHandle) -> Execution:
        execution = jobs.trigger(job.id, force=args.force, wait=not args.no_wait, timeout=args.timeout)
        progress.done(execution)
        return execution

    workers = 1 if args.sequential else max(1, min(args.parallel, len(handles) or 1))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="capsule-run")
    try:
        return list(pool.map(run, handles))
    finally:  # on Ctrl-C, closing the connection (in the caller) ends the waits still going
        pool.shutdown(wait=False, cancel_futures=True)
        progress.close()


class Progress:
    """One live line on a terminal's stderr while runs are going; silent otherwise."""

    def __init__(self, total: int, stream: TextIO, waiting: bool) -> None:
        self.total, self.stream = total, stream
        self.live = waiting and total > 0 and stream.isatty()
        self.counts = {"succeeded": 0, "failed": 0}
        self._finished = 0
        self._lock = threading.Lock()
        self._show()

    def done(self, execution: Execution) -> None:
        with self._lock:
            self._finished += 1
            self.counts["succeeded" if execution.succeeded else "failed"] += 1
            self._show()

    def _show(self) -> None:
        if self.live:
            if self.total == 1:
                line = "running 1 job, waiting for its result..."
            else:
                line = (f"running {self.total} jobs: {self._finished}/{self.total} finished, "
                        f"{self.counts['succeeded']} succeeded, {self.counts['failed']} failed")
            self.stream.write(f"\r{line}\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def cmd_jobs_history(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        found = jobs.history(args.job, limit=args.limit, status=args.status, since=args.since)
    rows = [execution_data(e) for e in found]
    out.show(rows, format_table(rows, EXECUTION_COLUMNS, empty="no executions"))
    return 0


def cmd_jobs_logs(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        execution = jobs.execution(args.execution)
    data = logs_data(execution)
    if not out.as_json and not execution.logs:
        print(f"capsule: {execution.id} ({execution.status}) printed nothing", file=sys.stderr)
        return 0
    out.show(data, execution.logs.rstrip("\n"))
    return 0


def cmd_jobs_enable(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        job = jobs.get_job(args.job).activate()
    out.show(job_data(job), f"{job.name}: enabled; next run {_cell(job.next_run, limit=None)}")
    return 0


def cmd_jobs_disable(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        job = jobs.get_job(args.job).deactivate()
    out.show(job_data(job), f"{job.name}: disabled; scheduled fires are paused, `capsule jobs run` still works")
    return 0


def cmd_jobs_delete(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        job = jobs.get_job(args.job)
        archived = job.delete()
    what = "archived (it has history; its name is free again)" if archived else "removed (it had no history)"
    out.show({"id": job.id, "name": job.name, "archived": archived}, f"{job.name}: {what}")
    return 0


def cmd_jobs_versions(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        job = jobs.get_job(args.job)
        rows = [version_data(v, job.active_version_id) for v in job.versions()]
    out.show(rows, format_table(rows, VERSION_COLUMNS) + "\n(* = active)")
    return 0


def cmd_jobs_rollback(args: argparse.Namespace, out: Renderer) -> int:
    version: int | str = int(args.version) if args.version.isdigit() else args.version
    with connect(args) as jobs:
        job = jobs.get_job(args.job).rollback(version)
    out.show(job_data(job), f"{job.name}: version {job.version} is active; next run {_cell(job.next_run, limit=None)}")
    return 0


def cmd_deploy(args: argparse.Namespace, out: Renderer) -> int:
    definitions = collect_jobs(load_module(args.module), args.module)
    for definition in definitions:  # bundle and check every job before connecting
        definition.to_spec()
    with connect(args) as jobs:
        results = jobs.deploy(definitions, dry_run=args.dry_run, prune=args.prune)
    rows = [deploy_data(r) for r in results]
    note = "\n(dry run: nothing was written)" if args.dry_run else ""
    out.show(rows, format_table(rows, DEPLOY_COLUMNS) + note)
    return 0


def cmd_messages(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        messages = jobs.messages(args.user, after_id=args.after, follow=args.follow)
        if args.follow:
            return _follow(messages, out)
        rows = [message_data(m) for m in messages]
    out.show(rows, format_table(rows, MESSAGE_COLUMNS, empty=f"no messages for {args.user}"))
    return 0


def _follow(messages: Iterable[model.Message], out: Renderer) -> int:
    for message in messages:
        row = message_data(message)
        out.item(row, f"{absolute_time(row['created_at'])}  {row['job_id']}  {_message_text(row['parts'])}")
    return 0


def cmd_log_cleanup(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        report = jobs.cleanup_report(args.days, dry_run=args.dry_run, job=args.job)
    data = cleanup_data(report, args.days)
    out.show(data, cleanup_text(data))
    return 0


def cmd_doctor(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        address = jobs.address
        try:
            info = jobs.server_info()
        except (Unavailable, DeadlineExceeded) as exc:  # unreachable is a finding, reported in both forms
            out.show({"address": address, "reachable": False, "error": exc.message},
                     f"engine  not reachable at {address}: {exc.message}")
            return 2
    data = {"address": address, "reachable": True, **info}
    fields = format_fields([
        ("engine", f"reachable at {address}"), ("version", info["version"]), ("store", info["store_path"]),
        ("listening on", info["listen_address"]), ("python", info["python_version"]),
        ("started", info["started_at"]),
        ("owner", f"{info['owner']}{' (admin)' if info['admin'] else ''}"),
    ])
    out.show(data, fields + "\n\nisolation layers:\n" + format_table(info["isolation_layers"], LAYER_COLUMNS))
    return 0


def owner_data(owner: model.Owner) -> dict[str, Any]:
    limits = owner.limits.resolved()
    return {"name": owner.name, "trusted_allowed": owner.trusted_allowed, "created_at": owner.created_at,
            "max_jobs": limits.max_jobs, "max_artifact_bytes": limits.max_artifact_bytes,
            "max_messages_per_attempt": limits.max_messages_per_attempt, "max_running": limits.max_running}


OWNER_COLUMNS = (
    col("NAME", "name"), col("TRUSTED", "trusted_allowed"), col("MAX JOBS", "max_jobs"),
    Column("MAX ARTIFACT", lambda r: _size(r["max_artifact_bytes"])),
    col("MAX MESSAGES/ATTEMPT", "max_messages_per_attempt"), col("MAX RUNNING", "max_running"),
    col("CREATED", "created_at"),
)


def cmd_owners_create(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        owner = jobs.create_owner(args.name, trusted=args.trusted, max_jobs=args.max_jobs,
                                  max_artifact_bytes=args.max_artifact_bytes,
                                  max_messages_per_attempt=args.max_messages_per_attempt,
                                  max_running=args.max_running)
    data = owner_data(owner)
    out.show(data, f"owner {owner.name} created; give it a token with "
                   f"`capsule tokens create --owner {owner.name}`")
    return 0


def cmd_owners_list(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        rows = [owner_data(o) for o in jobs.list_owners()]
    out.show(rows, format_table(rows, OWNER_COLUMNS, empty="no owners (the admin token's own jobs belong to 'admin')"))
    return 0


def cmd_tokens_create(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        token_id, secret = jobs.create_token(args.owner, args.label or "")
    data = {"id": token_id, "owner": args.owner, "label": args.label or "", "token": secret}
    out.show(data, f"token {token_id} for owner {args.owner}:\n{secret}\n"
                   "(shown once: only its hash is stored; pass it as CAPSULE_TOKEN or --token)")
    return 0


def cmd_tokens_revoke(args: argparse.Namespace, out: Renderer) -> int:
    with connect(args) as jobs:
        jobs.revoke_token(args.token_id)
    out.show({"id": args.token_id, "revoked": True}, f"token {args.token_id} revoked")
    return 0


def _size(n: int) -> str:
    if n < 1024:
        return "1 byte" if n == 1 else f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: an ISO 8601 instant (UTC when it has no offset) or an age (30m, 2h, 3d, 1w)."""
    value = text.strip()
    if m := _AGE.fullmatch(value.lower()):
        return (now or datetime.now(UTC)) - timedelta(**{_AGE_UNITS[m.group(2)]: float(m.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO 8601 time (2026-03-02T09:00:00Z) nor an age (30m, 2h, 3d, 1w)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


# -- deploy modules -----------------------------------------------------------------------------

def load_module(path: str) -> ModuleType:
    """Import a deploy module by its file path."""
    file = Path(path)
    if not file.is_file():
        raise InvalidArgument(f"deploy: {path} is not a file; pass the path of a .py module that defines Job(...)s")
    name = "capsule_deploy_" + re.sub(r"\W", "_", file.stem)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise InvalidArgument(f"deploy: cannot import {path}; pass a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(file.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the operator's module: whatever it raises is theirs to fix
        sys.modules.pop(name, None)
        raise InvalidArgument(f"deploy: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(file.resolve().parent))
    return module


def collect_jobs(module: ModuleType, path: str) -> list[Job]:
    """Module-level Job instances, and those in module-level lists or tuples, in order."""
    found: dict[int, Job] = {}
    for value in vars(module).values():
        candidates = value if isinstance(value, (list, tuple)) else [value]
        found.update((id(c), c) for c in candidates if isinstance(c, Job))
    if not found:
        raise InvalidArgument(
            f"deploy: {path} defines no Job; add e.g. `report = Job(name=\"daily-report\", "
            f"execute=report, schedule=cron(\"0 9 * * *\"))` at module level"
        )
    return list(found.values())


# -- the parser ---------------------------------------------------------------------------------

def _common(sub: bool) -> argparse.ArgumentParser:
    """--address, --token and --json, accepted before or after the command."""
    default = argparse.SUPPRESS if sub else None
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--address", default=default, metavar="HOST:PORT",
                        help=f"the engine (env CAPSULE_ADDRESS; default {DEFAULT_ADDRESS})")
    parser.add_argument("--token", default=default, help="bearer token (env CAPSULE_TOKEN; default the local admin token)")
    parser.add_argument("--ca", default=default, metavar="PEM",
                        help="connect with TLS, trusting this CA certificate (env CAPSULE_CA)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if sub else False,
                        help="print JSON (snake_case keys, ISO 8601 UTC times) instead of tables")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capsule", parents=[_common(False)], epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run small Python functions on a schedule, safely.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_jobs(commands)
    _add_deploy(commands)
    _add_messages(commands)
    _add_log_cleanup(commands)
    _add_owners(commands)
    _add_tokens(commands)
    _add(commands, "doctor", cmd_doctor, "check the engine: reachability, version, store, isolation layers")
    return parser


def _add(commands: Any, name: str, run: Callable[..., int], help: str) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, parents=[_common(True)], help=help, description=help)
    sub.set_defaults(run=run)
    return sub


def _add_serve(commands: Any) -> None:
    sub = _add(commands, "serve", cmd_serve, "start an engine on an embedded SQLite file")
    sub.add_argument("--home", help="home directory (env CAPSULE_HOME; default ~/.capsule)")
    sub.add_argument("--db", help="SQLite file of the store (default HOME/capsule.db)")
    sub.add_argument("--listen", metavar="HOST:PORT", help=f"address to listen on (default {DEFAULT_ADDRESS})")
    sub.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate (chain) file")
    sub.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    sub.add_argument("--max-running", metavar="N", type=_positive_int, default=None,
                     help="most attempts running at once, over all jobs (default 8); the rest wait, queued, in order")


def _add_jobs(commands: Any) -> None:
    jobs = commands.add_parser("jobs", parents=[_common(True)], help="list, inspect, run and change jobs")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = _add(actions, "list", cmd_jobs_list, "list jobs (predefined and live, by default)")
    ls.add_argument("--all", action="store_true", help="also dynamic and finished (archived, completed...) jobs")
    ls.add_argument("--dynamic", action="store_true", help="also dynamic jobs")
    ls.add_argument("--search", metavar="TEXT", help="only jobs whose name or description contains TEXT")
    ls.add_argument("--user", metavar="USER_ID", help="only dynamic jobs acting for this user")
    _add(actions, "show", cmd_jobs_show, "show one job").add_argument("job", metavar="NAME|ID")
    run = _add(actions, "run", cmd_jobs_run, "run jobs now and wait for the results")
    run.add_argument("jobs", nargs="*", metavar="NAME|ID", help="the jobs to run (one, or several)")
    run.add_argument("--all", action="store_true", help="run every live job `capsule jobs list` shows")
    run.add_argument("--sequential", action="store_true", help="one job at a time, in order")
    run.add_argument("--parallel", type=_positive_int, default=DEFAULT_PARALLEL, metavar="N",
                     help=f"at most N jobs at once (default {DEFAULT_PARALLEL})")
    run.add_argument("--version", type=int, metavar="N", help="run version N instead of the active one (one job)")
    run.add_argument("--force", action="store_true", help="run even if the overlap policy would skip it")
    run.add_argument("--no-wait", action="store_true", help="return once the runs are queued")
    run.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                     help="longest wait for each job (default 60)")
    history = _add(actions, "history", cmd_jobs_history, "list executions, newest first")
    history.add_argument("--job", metavar="NAME|ID", help="only this job")
    history.add_argument("--status", choices=[s.value for s in model.ExecutionStatus], help="only this status")
    history.add_argument("-n", "--limit", type=int, default=20, metavar="N", help="at most N (default 20)")
    history.add_argument("--since", type=parse_since, metavar="T",
                         help="only executions created since T: ISO 8601 (2026-03-02T09:00:00Z; no offset "
                              "means UTC) or an age such as 30m, 2h, 3d, 1w")
    logs = _add(actions, "logs", cmd_jobs_logs, "print what one execution printed")
    logs.add_argument("execution", metavar="EXECUTION_ID", help="an execution id (exe_...), from `jobs history`")
    _add(actions, "enable", cmd_jobs_enable, "resume a job's scheduled fires").add_argument("job", metavar="NAME|ID")
    _add(actions, "disable", cmd_jobs_disable, "pause a job's scheduled fires").add_argument("job", metavar="NAME|ID")
    _add(actions, "delete", cmd_jobs_delete, "archive a job (or remove it if it never ran)").add_argument(
        "job", metavar="NAME|ID")
    _add(actions, "versions", cmd_jobs_versions, "list a job's versions").add_argument("job", metavar="NAME|ID")
    rollback = _add(actions, "rollback", cmd_jobs_rollback, "make another version the active one")
    rollback.add_argument("job", metavar="NAME|ID")
    rollback.add_argument("version", metavar="VERSION", help="a version number, or a version id")


def _add_deploy(commands: Any) -> None:
    sub = _add(commands, "deploy", cmd_deploy, "create or update the predefined jobs defined in a module")
    sub.add_argument("module", metavar="MODULE.py", help="a Python file defining Job(...)s at module level")
    sub.add_argument("--dry-run", action="store_true", help="show the plan, write nothing")
    sub.add_argument("--prune", action="store_true", help="archive predefined jobs the module no longer defines")


def _add_messages(commands: Any) -> None:
    sub = _add(commands, "messages", cmd_messages, "read a user's messages")
    sub.add_argument("--user", required=True, metavar="USER_ID", help="whose messages")
    sub.add_argument("--after", metavar="MESSAGE_ID", help="only messages after this one")
    sub.add_argument("--follow", action="store_true", help="keep printing new messages (Ctrl-C to stop)")


def _add_log_cleanup(commands: Any) -> None:
    sub = _add(commands, "log-cleanup", cmd_log_cleanup, "remove finished executions older than N days")
    sub.add_argument("--days", type=float, required=True, metavar="N", help="older than N days")
    sub.add_argument("--dry-run", action="store_true", help="count what would be removed, remove nothing")
    sub.add_argument("--job", metavar="NAME|ID", help="only this job's executions")


def _add_owners(commands: Any) -> None:
    owners = commands.add_parser("owners", parents=[_common(True)], help="manage owners (admin token)")
    actions = owners.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = _add(actions, "create", cmd_owners_create, "create an owner (a tenant) and set its limits")
    create.add_argument("name", metavar="NAME", help="[a-z0-9][a-z0-9_-]*")
    create.add_argument("--trusted", action="store_true", help="allow it jobs with trusted isolation")
    create.add_argument("--max-jobs", type=int, metavar="N", help="live jobs it may have (default 10000)")
    create.add_argument("--max-artifact-bytes", type=int, metavar="N",
                        help="bytes of one job's source plus payload (default 1310720)")
    create.add_argument("--max-messages-per-attempt", type=int, metavar="N",
                        help="messages one attempt may send (default 100)")
    create.add_argument("--max-running", type=int, metavar="N",
                        help="attempts of this owner running at once (default: only the engine's global cap)")
    _add(actions, "list", cmd_owners_list, "list owners and their limits")


def _add_tokens(commands: Any) -> None:
    tokens = commands.add_parser("tokens", parents=[_common(True)], help="manage tokens (admin token)")
    actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = _add(actions, "create", cmd_tokens_create, "create a token for an owner; prints the secret once")
    create.add_argument("--owner", required=True, metavar="NAME", help="the owner the token acts for")
    create.add_argument("--label", metavar="TEXT", help="what the token is for, e.g. billing-service")
    _add(actions, "revoke", cmd_tokens_revoke, "revoke a token by id").add_argument("token_id", metavar="ID")


if __name__ == "__main__":
    sys.exit(main())
