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
