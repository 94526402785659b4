"""The operator's path, as a new user runs it: `capsule serve` and the `capsule`
commands as subprocesses, with their JSON output read back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from support import CAPSULE, serve_env, start_serve



@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real `capsule serve` on an OS-chosen port; yields the environment to reach it."""
    home = tmp_path_factory.mktemp("home")
    log_path = home.parent / "serve.log"
    proc, address = start_serve(home, log_path)
    try:
        yield {**serve_env(home), "CAPSULE_ADDRESS": address}, home
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()


def capsule(env, *args, check=True):
    done = subprocess.run([CAPSULE, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def as_json(env, *args):
    return json.loads(capsule(env, *args, "--json").stdout)


def test_home_is_private_and_the_token_file_is_0600(served):
    _, home = served
    assert (home / "admin.token").stat().st_mode & 0o777 == 0o600
    assert (home / "capsule.db").exists()


def test_deploy_run_history_versions_and_rollback(served, tmp_path):
    env, _ = served
    module = tmp_path / "ops_jobs.py"
    module.write_text(textwrap.dedent("""
        from client import Job, cron

        def daily_report(job):
            print("report for", job.metadata["team"])
            return {"team": job.metadata["team"]}

        daily = Job(name="daily-report", execute=daily_report, metadata={"team": "core"},
                    schedule=cron("0 9 * * *", timezone="America/New_York"))
    """))
    assert [r["action"] for r in as_json(env, "deploy", str(module))] == ["created"]
    assert [r["action"] for r in as_json(env, "deploy", str(module))] == ["unchanged"]

    shown = as_json(env, "jobs", "show", "daily-report")
    assert shown["schedule_human"] == "every day at 09:00 America/New_York"
    assert len(shown["next_fire_times"]) == 5

    run = as_json(env, "jobs", "run", "daily-report")
    assert run["status"] == "succeeded" and run["result"] == {"team": "core"}
    assert "report for core" in run["logs"]

    history = as_json(env, "jobs", "history", "--job", "daily-report")
    assert [h["id"] for h in history] == [run["id"]]

    module.write_text(module.read_text().replace("0 9 * * *", "0 10 * * *"))
    assert [r["action"] for r in as_json(env, "deploy", str(module))] == ["new_version"]
    assert [v["number"] for v in as_json(env, "jobs", "versions", "daily-report")] == [2, 1]
    capsule(env, "jobs", "rollback", "daily-report", "1")
    assert as_json(env, "jobs", "show", "daily-report")["version"] == 1


def test_a_failed_run_exits_1_and_bad_usage_exits_2(served, tmp_path):
    env, _ = served
    module = tmp_path / "failing.py"
    module.write_text("from client import Job\n\ndef boom(job):\n    raise ValueError('nope')\n\n"
                      "failing = Job(name='failing', execute=boom)\n")
    capsule(env, "deploy", str(module))
    done = capsule(env, "jobs", "run", "failing", check=False)
    assert done.returncode == 1
    assert "ValueError" in done.stdout + done.stderr
    assert capsule(env, "jobs", "frobnicate", check=False).returncode == 2
    unreachable = {**env, "CAPSULE_ADDRESS": "127.0.0.1:1"}
    done = capsule(unreachable, "jobs", "list", check=False)
    assert done.returncode == 2 and "127.0.0.1:1" in done.stderr


def test_disable_enable_and_delete(served, tmp_path):
    env, _ = served
    module = tmp_path / "toggled.py"
    module.write_text("from client import Job, interval\n\ndef tick(job):\n    return 1\n\n"
                      "t = Job(name='toggled', execute=tick, schedule=interval(3600))\n")
    capsule(env, "deploy", str(module))
    capsule(env, "jobs", "disable", "toggled")
    assert as_json(env, "jobs", "show", "toggled")["active"] is False
    capsule(env, "jobs", "enable", "toggled")
    assert as_json(env, "jobs", "show", "toggled")["active"] is True
    capsule(env, "jobs", "delete", "toggled")
    assert "toggled" not in [j["name"] for j in as_json(env, "jobs", "list")]


def test_doctor_reports_the_store_and_isolation_layers(served):
    env, home = served
    info = as_json(env, "doctor")
    assert info["store_path"] == str(home / "capsule.db")
    assert any(layer["name"] == "rlimits" and layer["active"] for layer in info["isolation_layers"])


def test_messages_of_a_user(served, tmp_path):
    env, _ = served
    script = tmp_path / "make_reminder.py"
    script.write_text(textwrap.dedent("""
        from client import Jobs

        def remind(job):
            job.user().send(job.metadata["message"])
            return True

        jobs = Jobs.connect()
        jobs.create(name="nudge", execute=remind, user_id="user_5",
                    metadata={"message": "stand up"}).trigger(wait=True)
    """))
    subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=120)
    [message] = as_json(env, "messages", "--user", "user_5")
    assert message["parts"] == [{"type": "text", "text": "stand up"}]


def test_several_jobs_run_in_parallel_with_a_summary(served, tmp_path):
    env, _ = served
    module = tmp_path / "batch.py"
    module.write_text(textwrap.dedent("""
        from client import Job

        def ok(job):
            print("ran", job.name)
            return job.name

        def bad(job):
            raise RuntimeError("broken on purpose")

        batch = [Job(name="batch-a", execute=ok), Job(name="batch-b", execute=ok),
                 Job(name="batch-bad", execute=bad)]
    """))
    capsule(env, "deploy", str(module))
    done = capsule(env, "jobs", "run", "batch-a", "batch-b", "--json")
    summary = json.loads(done.stdout)
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (2, 2, 0)
    assert [e["job_name"] for e in summary["executions"]] == ["batch-a", "batch-b"]

    done = capsule(env, "jobs", "run", "batch-a", "batch-bad", "--sequential", check=False)
    assert done.returncode == 1
    assert "2 total, 1 succeeded, 1 failed" in done.stdout and "RuntimeError" in done.stdout

    first = summary["executions"][0]
    logs = as_json(env, "jobs", "logs", first["id"])
    assert logs["logs"] == "ran batch-a\n" and logs["execution_id"] == first["id"]
    assert capsule(env, "jobs", "logs", first["id"]).stdout == "ran batch-a\n"
    assert capsule(env, "jobs", "logs", "exe_missing", check=False).returncode == 1

    recent = as_json(env, "jobs", "history", "--job", "batch-a", "--since", "10m")
    assert len(recent) == 2
    assert as_json(env, "jobs", "history", "--job", "batch-a", "--since", "2199-01-01T00:00:00Z") == []
    assert capsule(env, "jobs", "history", "--since", "yesterday", check=False).returncode == 2


def test_run_all_runs_every_listed_job(served, tmp_path):
    env, _ = served
    listed = [j["name"] for j in as_json(env, "jobs", "list")]
    done = capsule(env, "jobs", "run", "--all", "--no-wait", "--json")
    summary = json.loads(done.stdout)
    assert sorted(e["job_name"] for e in summary["executions"]) == sorted(listed)
    assert summary["waited"] is False
    assert capsule(env, "jobs", "run", check=False).returncode == 2


def test_log_cleanup_dry_run_changes_nothing_then_removes(served, tmp_path):
    env, _ = served
    module = tmp_path / "cleaned.py"
    module.write_text("from client import Job\n\ndef noisy(job):\n    print('x' * 100)\n    return 1\n\n"
                      "cleaned = Job(name='cleaned', execute=noisy)\n")
    capsule(env, "deploy", str(module))
    for _ in range(2):
        capsule(env, "jobs", "run", "cleaned")
    before = as_json(env, "jobs", "history", "--job", "cleaned")
    assert len(before) == 2

    dry = as_json(env, "log-cleanup", "--days", "0", "--dry-run", "--job", "cleaned")
    assert (dry["dry_run"], dry["executions_removed"]) == (True, 2) and dry["bytes_removed"] > 200
    assert [(j["job_name"], j["executions_removed"]) for j in dry["jobs"]] == [("cleaned", 2)]
    assert as_json(env, "jobs", "history", "--job", "cleaned") == before

    done = capsule(env, "log-cleanup", "--days", "0", "--job", "cleaned")
    assert "removed 2 executions" in done.stdout
    assert as_json(env, "jobs", "history", "--job", "cleaned") == []


def test_messages_follow_streams_json_lines_until_interrupted(served, tmp_path):
    env, _ = served
    script = tmp_path / "send.py"
    script.write_text(textwrap.dedent("""
        from client import Jobs

        with Jobs.connect() as jobs:
            jobs.create(name="follower", execute="def execute(job):\\n    job.user().send('live')\\n",
                        user_id="user_f").trigger(wait=True)
    """))
    with subprocess.Popen([CAPSULE, "messages", "--user", "user_f", "--follow", "--json"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as follow:
        try:
            subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=120)
            line = follow.stdout.readline()  # bounded by the per-test timeout
            assert json.loads(line)["parts"] == [{"type": "text", "text": "live"}]
        finally:
            follow.send_signal(signal.SIGINT)
            assert follow.wait(timeout=30) == 130


def test_output_piped_into_a_reader_that_stops_early_is_not_an_error(served):
    env, _ = served
    # `true` exits before the CLI has even connected, so its first write meets a closed pipe.
    done = subprocess.run(["bash", "-c", f"'{CAPSULE}' doctor | true; echo \"${{PIPESTATUS[0]}}\""],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "0"
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
