"""Every `capsule` command in-process against a real engine, in both forms: the JSON
compared with the engine's state, the text checked for what a human looks for."""

from __future__ import annotations

import json
import textwrap

import pytest

from client import Jobs, cli
from engine.server import EngineServer

MODULE = textwrap.dedent("""
    from client import Job, Retention, cron

    def report(job):
        print("report for", job.metadata["team"])
        return {"team": job.metadata["team"]}

    def flaky(job):
        raise RuntimeError("flaky on purpose")

    report_job = Job(name="report", execute=report, metadata={"team": "core"},
                     schedule=cron("0 9 * * *", timezone="America/New_York"),
                     retention=Retention(keep_last=50))
    nudge = Job(name="nudge", execute=flaky)
""")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = EngineServer(home=tmp_path_factory.mktemp("cli") / "home", listen="127.0.0.1:0").start()
    module = tmp_path_factory.mktemp("ops") / "ops.py"
    module.write_text(MODULE)
    yield server, module
    server.stop(grace=1)


@pytest.fixture(scope="module")
def api(served):
    server, _ = served
    with Jobs.connect(server.address, token=server.admin_token) as client:
        yield client


@pytest.fixture
def capsule(served, capsys):
    server, _ = served

    def run(*argv: str, as_json: bool = True, code: int = 0):
        done = cli.main([*argv, "--address", server.address, "--token", server.admin_token,
                         *(["--json"] if as_json else [])])
        out = capsys.readouterr()
        assert done == code, out.err
        return json.loads(out.out) if as_json else out.out

    return run


@pytest.fixture(scope="module", autouse=True)
def deployed(served, api):
    _, module = served
    assert cli.main(["deploy", str(module), "--address", served[0].address, "--token", served[0].admin_token]) == 0


def test_list_in_both_forms(capsule, api):
    rows = capsule("jobs", "list")
    assert [r["name"] for r in rows] == [j.name for j in api.get_all()] == ["nudge", "report"]
    report = next(r for r in rows if r["name"] == "report")
    assert report["schedule_human"] == "every day at 09:00 America/New_York"
    assert report["next_run"] == api.get_job("report").next_run.isoformat().replace("+00:00", "Z")
    text = capsule("jobs", "list", "--search", "rep", as_json=False).splitlines()
    assert text[0].split()[:3] == ["NAME", "KIND", "STATUS"] and len(text) == 2
    assert text[1].startswith("report") and "every day at 09:00 America/New_York" in text[1]


def test_show_in_both_forms(capsule, api):
    shown = capsule("jobs", "show", "report")
    job = api.get_job("report")
    assert (shown["id"], shown["version"], shown["run_count"]) == (job.id, job.version, job.run_count)
    assert shown["retention"] == {"keep_last": 50, "max_age_days": 30.0}
    assert len(shown["next_fire_times"]) == 5
    text = capsule("jobs", "show", job.id, as_json=False)
    assert "every day at 09:00 America/New_York" in text and "keep the last 50 runs" in text
    assert "next fire times:" in text


def test_run_history_and_logs_in_both_forms(capsule, api):
    run = capsule("jobs", "run", "report")
    assert (run["status"], run["result"]) == ("succeeded", {"team": "core"})
    text = capsule("jobs", "run", "report", as_json=False)
    assert "succeeded" in text and "report for core" in text

    history = capsule("jobs", "history", "--job", "report", "-n", "5")
    assert [h["id"] for h in history] == [e.id for e in api.history("report", limit=5)]
    assert capsule("jobs", "history", "--status", "failed") == []
    table = capsule("jobs", "history", "--job", "report", "--since", "1h", as_json=False).splitlines()
    assert table[0].split()[:3] == ["ID", "JOB", "VER"] and len(table) == 3

    logs = capsule("jobs", "logs", run["id"])
    assert logs == {"execution_id": run["id"], "job_id": run["job_id"], "job_name": "report",
                    "status": "succeeded", "attempt": 1, "logs": "report for core\n"}
    assert capsule("jobs", "logs", run["id"], as_json=False) == "report for core\n"


def test_run_several_in_both_forms(capsule, api):
    summary = capsule("jobs", "run", "report", "nudge", "--sequential", code=1)
    assert {k: summary[k] for k in ("total", "succeeded", "failed", "unfinished")} == \
        {"total": 2, "succeeded": 1, "failed": 1, "unfinished": 0}
    failed = summary["executions"][1]
    assert failed["error"] == {"type": "RuntimeError", "message": "flaky on purpose",
                               "traceback": failed["error"]["traceback"]}
    assert api.execution(failed["id"]).status == "failed"
    text = capsule("jobs", "run", "--all", as_json=False, code=1)
    assert text.splitlines()[-1] == "2 total, 1 succeeded, 1 failed"


def test_disable_enable_versions_rollback_in_both_forms(capsule, api):
    assert capsule("jobs", "disable", "report")["active"] is False
    assert api.get_job("report").active is False
    assert "enabled; next run 20" in capsule("jobs", "enable", "report", as_json=False)
    api.get_job("report").update(timeout=30)
    versions = capsule("jobs", "versions", "report")
    assert [(v["number"], v["active"]) for v in versions] == [(2, True), (1, False)]
    assert versions[0]["retention"] == {"keep_last": 50, "max_age_days": 30.0}
    assert "(* = active)" in capsule("jobs", "versions", "report", as_json=False)
    assert capsule("jobs", "rollback", "report", "1")["version"] == 1
    assert api.get_job("report").version == 1
    assert "version 2 is active" in capsule("jobs", "rollback", "report", "2", as_json=False)
    capsule("jobs", "rollback", "report", "1")  # back to what the module says


def test_deploy_plan_idempotence_and_prune(capsule, served, api, tmp_path):
    _, module = served
    assert [(r["name"], r["action"]) for r in capsule("deploy", str(module))] == \
        [("report", "unchanged"), ("nudge", "unchanged")]
    smaller = tmp_path / "smaller.py"
    smaller.write_text(MODULE.replace("keep_last=50", "keep_last=60").split("nudge =")[0])
    plan = capsule("deploy", str(smaller), "--dry-run", "--prune")
    assert [(r["name"], r["action"]) for r in plan] == [("report", "new_version"), ("nudge", "pruned")]
    assert sorted(j.name for j in api.get_all()) == ["nudge", "report"]  # a dry run writes nothing
    text = capsule("deploy", str(smaller), "--prune", as_json=False)
    assert "new version" in text and "pruned" in text
    assert [j.name for j in api.get_all()] == ["report"]
    assert api.get_job("report").retention.keep_last == 60
    capsule("deploy", str(module))  # bring nudge back for the other tests


def test_messages_in_both_forms(capsule, api):
    api.create(name="greeter", execute="def execute(job):\n    job.user().send('hello there')\n",
               user_id="user_9").trigger(wait=True, timeout=30)
    [message] = capsule("messages", "--user", "user_9")
    assert message["parts"] == [{"type": "text", "text": "hello there"}]
    assert [m.id for m in api.messages("user_9")] == [message["id"]]
    assert "hello there" in capsule("messages", "--user", "user_9", as_json=False)
    assert capsule("messages", "--user", "nobody", as_json=False).strip() == "no messages for nobody"


def test_log_cleanup_in_both_forms(capsule, api):
    before = [e.id for e in api.history(limit=100)]
    dry = capsule("log-cleanup", "--days", "0", "--dry-run")
    assert dry["executions_removed"] == len(before) and dry["dry_run"] is True
    assert sum(j["executions_removed"] for j in dry["jobs"]) == len(before)
    assert [e.id for e in api.history(limit=100)] == before
    text = capsule("log-cleanup", "--days", "3650", as_json=False)
    assert text.strip().startswith("removed 0 executions finished more than 3650 days ago")


def test_doctor_in_both_forms(capsule, served):
    server, _ = served
    info = capsule("doctor")
    assert (info["reachable"], info["address"], info["store_path"]) == \
        (True, server.address, str(server.store.path))
    text = capsule("doctor", as_json=False)
    assert f"reachable at {server.address}" in text and "isolation layers:" in text


def test_delete_in_both_forms(capsule, api):
    short = api.create(name="short", execute="def execute(job):\n    return 1\n")
    assert capsule("jobs", "delete", "short") == {"id": short.id, "name": "short", "archived": False}
    api.create(name="kept", execute="def execute(job):\n    return 1\n").trigger(wait=True, timeout=30)
    assert "kept: archived" in capsule("jobs", "delete", "kept", as_json=False)
    assert api.get_job("kept").status == "archived"
