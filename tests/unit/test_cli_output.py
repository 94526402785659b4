"""The CLI's one renderer, its JSON shapes, its error boundary and deploy-module loading
(all without an engine: the failures here happen before or instead of a connection)."""

from __future__ import annotations

import io
import json
import textwrap
from datetime import datetime, timezone

import pytest

from client import cli, errors
from client.jobs import Job

UTC = timezone.utc
UNREACHABLE = ["--address", "127.0.0.1:9", "--token", "t"]


def test_tables_are_aligned_plain_text():
    rows = [{"name": "daily-report", "runs": 3, "next": datetime(2026, 3, 2, 14, 0, tzinfo=UTC)},
            {"name": "x", "runs": None, "next": None}]
    columns = [cli.col("NAME", "name"), cli.col("RUNS", "runs"), cli.col("NEXT RUN", "next")]
    assert cli.format_table(rows, columns).splitlines() == [
        "NAME          RUNS  NEXT RUN",
        "daily-report  3     2026-03-02 14:00:00Z",
        "x             -     -",
    ]


def test_an_empty_table_says_so():
    assert cli.format_table([], [cli.col("NAME", "name")], empty="no jobs") == "no jobs"


def test_long_cells_are_cut_and_newlines_flattened():
    row = {"note": "a\nb " + "x" * 100, "last": "y" * 100}
    table = cli.format_table([row], [cli.col("NOTE", "note"), cli.col("LAST", "last")])
    note, last = table.splitlines()[1].split("  ")
    assert note.startswith("a b ") and note.endswith("...") and len(note) == 60
    assert last == "y" * 100  # the last column cannot break the alignment: kept longer


@pytest.mark.parametrize("as_json", [pytest.param(True, id="json"), pytest.param(False, id="human")])
def test_the_renderer_prints_json_or_the_human_text(as_json):
    stream = io.StringIO()
    data = [{"name": "r", "next_run": datetime(2026, 3, 2, 14, 0, tzinfo=UTC)}]
    cli.Renderer(as_json, stream).show(data, "human text")
    if as_json:
        assert json.loads(stream.getvalue()) == [{"name": "r", "next_run": "2026-03-02T14:00:00Z"}]
    else:
        assert stream.getvalue() == "human text\n"


def test_stream_items_are_json_lines():
    stream = io.StringIO()
    renderer = cli.Renderer(True, stream)
    renderer.item({"id": "m1"}, "one")
    renderer.item({"id": "m2"}, "two")
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [{"id": "m1"}, {"id": "m2"}]


@pytest.mark.parametrize("error, code", [
    pytest.param(errors.InvalidArgument("x"), 2, id="invalid-argument"),
    pytest.param(errors.Unavailable("x"), 2, id="unavailable"),
    pytest.param(errors.Unauthenticated("x"), 2, id="unauthenticated"),
    pytest.param(errors.PermissionDenied("x"), 2, id="permission-denied"),
    pytest.param(errors.DeadlineExceeded("x"), 2, id="deadline-exceeded"),
    pytest.param(errors.SelfContainmentError("x", ["A"]), 2, id="self-containment"),
    pytest.param(errors.NotFound("x"), 1, id="not-found"),
    pytest.param(errors.FailedPrecondition("x"), 1, id="failed-precondition"),
    pytest.param(errors.CapsuleError("x"), 1, id="other"),
])
def test_exit_codes(error, code):
    assert cli.exit_code(error) == code


def test_an_unreachable_engine_is_one_line_and_exit_2(capsys):
    assert cli.main(["jobs", "list", *UNREACHABLE]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("capsule: error: cannot reach the Capsule engine at 127.0.0.1:9")
    assert "capsule serve" in err


def test_no_token_anywhere_says_what_to_do(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("CAPSULE_TOKEN", raising=False)
    monkeypatch.setenv("CAPSULE_HOME", str(tmp_path))
    assert cli.main(["doctor", "--address", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "CAPSULE_TOKEN" in err and "capsule serve" in err


# -- deploy modules -----------------------------------------------------------------------------

def write(tmp_path, text, name="deploy_jobs.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_module_level_jobs_and_lists_of_jobs_are_collected_in_order(tmp_path):
    path = write(tmp_path, """
        from client import Job, cron

        def report(job):
            return {"ok": True}

        daily = Job(name="daily-report", execute=report, schedule=cron("0 9 * * *"))
        more = [Job(name="a", execute=report), Job(name="b", execute=report)]
        again = daily
    """)
    found = cli.collect_jobs(cli.load_module(path), path)
    assert [j.name for j in found] == ["daily-report", "a", "b"]
    assert all(isinstance(j, Job) for j in found)
    assert found[0].to_spec().artifact.source.startswith("def report(job):")


def test_a_module_without_jobs_is_refused(tmp_path):
    path = write(tmp_path, "X = 1\n")
    with pytest.raises(errors.InvalidArgument, match="defines no Job"):
        cli.collect_jobs(cli.load_module(path), path)


def test_a_module_that_fails_to_import_is_one_line_and_exit_2(tmp_path, capsys):
    path = write(tmp_path, "raise RuntimeError('broken config')\n")
    assert cli.main(["deploy", path, *UNREACHABLE]) == 2
    assert "RuntimeError: broken config" in capsys.readouterr().err


def test_a_missing_module_is_exit_2(tmp_path, capsys):
    assert cli.main(["deploy", str(tmp_path / "nope.py"), *UNREACHABLE]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_deploy_checks_every_job_before_connecting(tmp_path, capsys):
    path = write(tmp_path, """
        from client import Job

        SECRET = "s"

        def fine(job):
            return 1

        def leaky(job):
            return SECRET

        jobs = [Job(name="fine", execute=fine), Job(name="leaky", execute=leaky)]
    """)
    # The engine address is unreachable: the refusal must come from the local check.
    assert cli.main(["deploy", path, *UNREACHABLE]) == 2
    err = capsys.readouterr().err
    assert "SECRET" in err and "metadata" in err and "cannot reach" not in err


NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("moment, text", [
    pytest.param(NOW, "now", id="now"),
    pytest.param(datetime(2026, 3, 2, 11, 59, 18, tzinfo=UTC), "42s ago", id="seconds-ago"),
    pytest.param(datetime(2026, 3, 2, 11, 55, tzinfo=UTC), "5m ago", id="minutes-ago"),
    pytest.param(datetime(2026, 3, 2, 15, 5, tzinfo=UTC), "in 3h 5m", id="hours-ahead"),
    pytest.param(datetime(2026, 3, 4, 16, 0, tzinfo=UTC), "in 2d 4h", id="days-ahead"),
    pytest.param(datetime(2026, 3, 14, 12, 0, tzinfo=UTC), "in 12d", id="many-days-ahead"),
    pytest.param(datetime(2025, 1, 1, tzinfo=UTC), "2025-01-01 00:00:00Z", id="far-past-is-a-date"),
])
def test_relative_times_for_humans(moment, text):
    assert cli.relative_time(moment, now=NOW) == text


def test_tables_show_relative_times_and_fields_show_both(monkeypatch):
    monkeypatch.setattr(cli, "_now", lambda: NOW)
    row = {"name": "r", "next": datetime(2026, 3, 2, 13, 0, tzinfo=UTC)}
    assert cli.format_table([row], [cli.col("NAME", "name"), cli.col("NEXT", "next")]).splitlines()[1] == "r     in 1h"
    assert cli.format_fields([("next run", row["next"])]) == "next run  2026-03-02 13:00:00Z (in 1h)"


def test_on_a_terminal_tables_are_drawn_by_rich(monkeypatch):
    token = cli._STYLED.set(True)
    try:
        table = cli.format_table([{"s": "failed"}], [cli.col("STATUS", "s")])
    finally:
        cli._STYLED.reset(token)
    assert "\x1b[" in table and "failed" in table


def test_pipes_and_no_color_get_plain_text(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert cli.styled_terminal(Tty()) and not cli.styled_terminal(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli.styled_terminal(Tty())


@pytest.mark.parametrize("text, expected", [
    pytest.param("2h", datetime(2026, 3, 2, 10, 0, tzinfo=UTC), id="hours"),
    pytest.param("3d", datetime(2026, 2, 27, 12, 0, tzinfo=UTC), id="days"),
    pytest.param("90m", datetime(2026, 3, 2, 10, 30, tzinfo=UTC), id="minutes"),
    pytest.param("1w", datetime(2026, 2, 23, 12, 0, tzinfo=UTC), id="weeks"),
    pytest.param("2026-03-01T08:00:00Z", datetime(2026, 3, 1, 8, 0, tzinfo=UTC), id="iso-utc"),
    pytest.param("2026-03-01T08:00:00+01:00", datetime(2026, 3, 1, 7, 0, tzinfo=UTC), id="iso-offset"),
    pytest.param("2026-03-01 08:00", datetime(2026, 3, 1, 8, 0, tzinfo=UTC), id="naive-is-utc"),
])
def test_since_takes_iso_8601_or_an_age(text, expected):
    assert cli.parse_since(text, now=NOW) == expected


def test_a_bad_since_is_a_usage_error(capsys):
    assert cli.main(["jobs", "history", "--since", "last tuesday", *UNREACHABLE]) == 2
    assert "neither an ISO 8601 time" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    pytest.param(["jobs", "run"], "name at least one job", id="nothing-to-run"),
    pytest.param(["jobs", "run", "a", "--all"], "not both", id="names-and-all"),
    pytest.param(["jobs", "run", "a", "b", "--version", "2"], "--version needs exactly one job", id="version-many"),
])
def test_run_usage_errors_exit_2_before_connecting(argv, message, capsys):
    assert cli.main([*argv, *UNREACHABLE]) == 2
    assert message in capsys.readouterr().err


def _summary(waited=True, unfinished=0):
    executions = [
        {"id": "exe_1", "job_name": "a", "status": "succeeded", "attempt": 1, "duration_ms": 12,
         "reason": None, "error": None},
        {"id": "exe_2", "job_name": "b", "status": "failed", "attempt": 2, "duration_ms": 30, "reason": None,
         "error": {"type": "ValueError", "message": "nope", "traceback": []}},
    ]
    return {"total": 2, "succeeded": 1, "failed": 1 - unfinished, "unfinished": unfinished, "waited": waited,
            "executions": executions}


def test_the_run_summary_in_text():
    lines = cli.run_summary_text(_summary()).splitlines()
    assert lines[0].split() == ["JOB", "EXECUTION", "STATUS", "TRY", "DURATION", "NOTE"]
    assert lines[2].split()[:3] == ["b", "exe_2", "failed"] and lines[2].endswith("ValueError: nope")
    assert lines[-1] == "2 total, 1 succeeded, 1 failed"
    assert cli.run_summary_text(_summary(waited=False)).splitlines()[-1].startswith("2 queued")


def test_the_progress_line_is_only_for_terminals():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    quiet, live = io.StringIO(), Tty()
    for stream in (quiet, live):
        progress = cli.Progress(2, stream, waiting=True)
        progress.done(type("E", (), {"succeeded": True})())
        progress.close()
    assert quiet.getvalue() == ""
    assert "1/2 finished, 1 succeeded, 0 failed" in live.getvalue()


def test_the_cleanup_report_in_both_forms():
    from engine.model import CleanupReport, JobCleanup

    report = CleanupReport(before=NOW, dry_run=True, jobs=(JobCleanup("job_1", "daily", 3, 2048),))
    data = cli.cleanup_data(report, 7)
    assert json.loads(json.dumps(data, default=cli._json_default)) == {
        "dry_run": True, "older_than_days": 7, "before": "2026-03-02T12:00:00Z",
        "executions_removed": 3, "bytes_removed": 2048,
        "jobs": [{"job_id": "job_1", "job_name": "daily", "executions_removed": 3, "bytes_removed": 2048}],
    }
    text = cli.cleanup_text(data).splitlines()
    assert text[1].split() == ["daily", "3", "2.0", "KiB"]
    assert text[2] == "would remove 3 executions finished more than 7 days ago (2.0 KiB of logs, results and errors)"
    assert text[3] == "(dry run: nothing was removed)"


def test_doctor_reports_an_unreachable_engine_in_both_forms(capsys):
    assert cli.main(["doctor", "--json", *UNREACHABLE]) == 2
    data = json.loads(capsys.readouterr().out)
    assert (data["reachable"], data["address"]) == (False, "127.0.0.1:9")
    assert cli.main(["doctor", *UNREACHABLE]) == 2
    assert capsys.readouterr().out.startswith("engine  not reachable at 127.0.0.1:9")


def _commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, cli.argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name)) if any(
                    isinstance(a, cli.argparse._SubParsersAction) for a in sub._actions) else [(*prefix, name)]


def test_every_command_is_in_the_cli_reference():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    missing = [" ".join(c) for c in _commands(cli.build_parser())
               if f"capsule {' '.join(c)}" not in doc and f"`{' '.join(c[1:])}`" not in doc]
    assert not missing, f"docs/cli.md does not describe: {missing}"
