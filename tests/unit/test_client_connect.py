"""Where `Jobs.connect` finds its address and token, and the checks the client makes
before anything is sent (the engine address below is unreachable on purpose: a local
refusal must come first)."""

from __future__ import annotations

from datetime import datetime

import pytest

from client import Job, Jobs, Retry, errors, once
from client.jobs import DEFAULT_ADDRESS

UNREACHABLE = "127.0.0.1:9"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("CAPSULE_ADDRESS", "CAPSULE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAPSULE_HOME", str(tmp_path))
    return tmp_path


def test_the_default_is_the_local_engine_with_the_home_token(clean_env):
    (clean_env / "admin.token").write_text("secret-token\n")
    with Jobs.connect() as jobs:
        assert jobs.address == DEFAULT_ADDRESS


def test_the_environment_is_read(clean_env, monkeypatch):
    monkeypatch.setenv("CAPSULE_ADDRESS", "engine.internal:7000")
    monkeypatch.setenv("CAPSULE_TOKEN", "t")
    with Jobs.connect() as jobs:
        assert jobs.address == "engine.internal:7000"


def test_arguments_win_over_the_environment(clean_env, monkeypatch):
    monkeypatch.setenv("CAPSULE_ADDRESS", "engine.internal:7000")
    with Jobs.connect("other:1", token="t") as jobs:
        assert jobs.address == "other:1"


def test_no_token_anywhere_is_unauthenticated_and_says_what_to_do(clean_env):
    with pytest.raises(errors.Unauthenticated) as info:
        Jobs.connect()
    assert "CAPSULE_TOKEN" in info.value.message and "capsule serve" in info.value.message
    assert str(clean_env / "admin.token") in info.value.message


def test_an_unreadable_ca_file_is_refused(clean_env):
    with pytest.raises(errors.InvalidArgument, match="ca"):
        Jobs.connect(UNREACHABLE, "t", ca=clean_env / "missing.pem")


@pytest.fixture
def jobs():
    with Jobs.connect(UNREACHABLE, "t", timeout=5) as client:
        yield client


def execute(job):
    return 1


@pytest.mark.parametrize("options, words", [
    pytest.param(dict(metadata={"when": datetime(2026, 1, 1)}), "metadata", id="metadata-not-json"),
    pytest.param(dict(metadata=["a"]), "metadata", id="metadata-not-a-dict"),
    pytest.param(dict(schedule="0 9 * * *"), "cron(", id="schedule-as-text"),
    pytest.param(dict(timeout=0), "timeout", id="zero-timeout"),
    pytest.param(dict(retry=3), "Retry(", id="retry-as-number"),
    pytest.param(dict(isolation="sandboxed"), "isolation", id="unknown-isolation"),
    pytest.param(dict(execute=lambda job: 1), "lambda", id="lambda"),
])
def test_create_checks_locally_before_sending(jobs, options, words):
    options = {"execute": execute, **options}
    with pytest.raises(errors.InvalidArgument) as info:
        jobs.create("reminder", **options)
    assert words in info.value.message
    assert info.value.status is None


def test_deploy_refuses_duplicate_names_before_sending(jobs):
    with pytest.raises(errors.InvalidArgument, match="two jobs"):
        jobs.deploy([Job(name="a", execute=execute), Job(name="a", execute=execute)])


def test_deploy_refuses_things_that_are_not_job_definitions(jobs):
    with pytest.raises(errors.InvalidArgument, match="Job"):
        jobs.deploy(["daily-report"])


def test_history_refuses_unknown_statuses_and_naive_times(jobs):
    with pytest.raises(errors.InvalidArgument, match="succeeded"):
        jobs.history(status="exploded")
    with pytest.raises(errors.InvalidArgument, match="naive"):
        jobs.history(since=datetime(2026, 1, 1))


def test_calls_to_an_unreachable_engine_raise_unavailable(jobs):
    with pytest.raises(errors.Unavailable) as info:
        jobs.get_all()
    assert UNREACHABLE in info.value.message


def test_a_job_definition_bundles_as_predefined():
    spec = Job(name="daily-report", execute=execute, metadata={"userId": "u"},
               retry=Retry(max_attempts=2, backoff_seconds=5), timeout=30).to_spec()
    assert spec.kind.value == "predefined"
    assert spec.metadata == {"userId": "u"} and spec.timeout_seconds == 30.0
    assert spec.retry.max_attempts == 2 and spec.artifact.entrypoint == "execute"


def test_naive_once_is_refused_by_the_schedule_itself():
    with pytest.raises(ValueError, match="naive"):
        once(at=datetime(2026, 1, 1))
