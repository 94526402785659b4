"""Owners and tokens through the client: admin-only management, the reserved "admin"
name, per-owner limits (jobs, artifact size, messages per attempt, trusted isolation),
and TLS with a certificate made in the test."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from client import Job, Jobs
from client.errors import (
    AlreadyExists, DeadlineExceeded, NotFound, PermissionDenied, ResourceExhausted, Unavailable,
)
from engine.model import DEFAULT_OWNER_LIMITS


@pytest.fixture
def owner_client(jobs, engine):
    """(create owner with these limits) -> a Jobs connected with a token of it."""
    opened = []

    def make(name: str, **limits) -> Jobs:
        jobs.create_owner(name, **limits)
        _, secret = jobs.create_token(name, "test")
        client = Jobs.connect(engine.address, token=secret)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def test_admin_creates_owners_and_tokens_shown_once(jobs, engine):
    owner = jobs.create_owner("acme", max_jobs=3)
    assert (owner.name, owner.trusted_allowed, owner.limits.max_jobs) == ("acme", False, 3)
    assert owner.limits.max_messages_per_attempt == DEFAULT_OWNER_LIMITS.max_messages_per_attempt
    token_id, secret = jobs.create_token("acme", "billing")
    assert token_id.startswith("tok_") and secret.startswith("cap_")
    with Jobs.connect(engine.address, token=secret) as acme:
        assert acme.server_info()["owner"] == "acme"
        with pytest.raises(PermissionDenied):
            acme.create_owner("other")
        with pytest.raises(PermissionDenied):
            acme.create_token("acme")
    assert [o.name for o in jobs.list_owners()] == ["acme"]
    assert engine.store._one("SELECT count(*) FROM tokens WHERE secret_sha256 = ?", (secret,))[0] == 0


def test_owner_names_are_unique_and_admin_is_reserved(jobs):
    jobs.create_owner("acme")
    with pytest.raises(AlreadyExists):
        jobs.create_owner("acme")
    with pytest.raises(AlreadyExists, match="built in"):
        jobs.create_owner("admin")


def test_a_token_for_an_unknown_owner_is_not_found(jobs):
    with pytest.raises(NotFound, match="owner"):
        jobs.create_token("nobody")
    with pytest.raises(NotFound, match="token"):
        jobs.revoke_token("tok_nope")


def test_max_jobs_counts_live_jobs_at_create_and_deploy(owner_client):
    acme = owner_client("acme", max_jobs=2)
    first = acme.create("one", "def execute(job):\n    return 1\n")
    acme.create("two", "def execute(job):\n    return 2\n")
    with pytest.raises(ResourceExhausted, match="max_jobs"):
        acme.create("three", "def execute(job):\n    return 3\n")
    with pytest.raises(ResourceExhausted, match="max_jobs"):
        acme.deploy([Job(name="report", execute="def execute(job):\n    return 0\n")])
    assert [j.name for j in acme.get_all(include_dynamic=True)] == ["one", "two"]
    first.delete()
    acme.create("three", "def execute(job):\n    return 3\n")


def test_max_artifact_bytes(owner_client):
    acme = owner_client("acme", max_artifact_bytes=200)
    with pytest.raises(ResourceExhausted, match="max_artifact_bytes"):
        acme.create("big", "def execute(job):\n    return '" + "x" * 300 + "'\n")
    acme.create("small", "def execute(job):\n    return 1\n")


def test_max_messages_per_attempt_refuses_the_send_inside_the_job(owner_client):
    acme = owner_client("acme", max_messages_per_attempt=2)
    source = (
        "def execute(job):\n"
        "    u = User.get('u')\n"
        "    u.send('1')\n"
        "    u.send('2')\n"
        "    try:\n"
        "        u.send('3')\n"
        "    except Exception as exc:\n"
        "        return str(exc)\n"
        "    return 'sent three'\n"
    )
    run = acme.create("chatty", source).trigger(wait=True, timeout=30)
    assert run.succeeded and "max_messages_per_attempt" in run.result
    assert [m.parts[0]["text"] for m in acme.messages("u")] == ["1", "2"]


def test_an_owner_may_send_more_than_a_hundred_messages_per_attempt_when_allowed(owner_client):
    acme = owner_client("bulk", max_messages_per_attempt=150)
    source = (
        "def execute(job):\n"
        "    for n in range(120):\n"
        "        User.get('u').send(str(n))\n"
        "    updates = 0\n"
        "    try:\n"
        "        while True:\n"
        "            job.update_metadata({'n': updates})\n"
        "            updates += 1\n"
        "    except (PermissionError, RuntimeError):  # refused, or past the sandbox's cap of all calls\n"
        "        return updates\n"
    )
    run = acme.create("newsletter", source).trigger(wait=True, timeout=60)
    assert run.succeeded, run.error
    assert len(list(acme.messages("u"))) == 120
    assert run.result == 100  # the sends the owner may make are not lent to other calls


def test_trusted_isolation_is_allowed_per_owner(jobs, engine):
    def trusted(job):
        return 1

    for name, allowed in (("plain", False), ("vetted", True)):
        jobs.create_owner(name, trusted=allowed)
        _, secret = jobs.create_token(name)
        with Jobs.connect(engine.address, token=secret) as client:
            if allowed:
                assert client.create("t", trusted, isolation="trusted").trigger(wait=True, timeout=30).succeeded
            else:
                with pytest.raises(PermissionDenied, match="trusted"):
                    client.create("t", trusted, isolation="trusted")


# -- TLS --------------------------------------------------------------------------------------

@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 and localhost, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl binary is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_engine_with_a_client_that_trusts_its_certificate(tmp_path, certificate, monkeypatch):
    from engine.server import EngineServer

    cert, key = certificate
    server = EngineServer(home=tmp_path / "home", listen="127.0.0.1:0", tls_cert=cert, tls_key=key).start()
    try:
        with Jobs.connect(server.address, token=server.admin_token, ca=cert, timeout=10) as client:
            assert client.create("hello", "def execute(job):\n    return 'tls'\n").trigger(
                wait=True, timeout=30).result == "tls"
        monkeypatch.setenv("CAPSULE_CA", str(cert))
        with Jobs.connect(server.address, token=server.admin_token, timeout=10) as client:
            assert client.server_info()["admin"]
        monkeypatch.delenv("CAPSULE_CA")
        with Jobs.connect(server.address, token=server.admin_token, timeout=5) as plain:
            with pytest.raises((Unavailable, DeadlineExceeded)):  # refused handshake, or none at all
                plain.server_info()
    finally:
        server.stop(grace=1)


def test_the_admin_token_cannot_be_revoked_and_a_replaced_one_stops_working(jobs, engine, tmp_path):
    from client.errors import FailedPrecondition, Unauthenticated
    from engine.server import EngineServer

    admin_id = engine.store._one("SELECT id FROM tokens WHERE admin = 1")[0]
    with pytest.raises(FailedPrecondition, match="admin token cannot be revoked"):
        jobs.revoke_token(admin_id)
    old = engine.admin_token
    engine.stop(grace=1)
    (engine.home / "admin.token").unlink()
    again = EngineServer(home=engine.home, listen="127.0.0.1:0").start()
    try:
        assert again.admin_token != old
        with Jobs.connect(again.address, token=old) as stale:
            with pytest.raises(Unauthenticated):
                stale.server_info()
        with Jobs.connect(again.address, token=again.admin_token) as fresh:
            assert fresh.server_info()["admin"]
    finally:
        again.stop(grace=1)
        engine.start()  # the fixture stops it again


@pytest.mark.parametrize("name", ["", "Acme", "a b", "x" * 101, "-acme"])
def test_bad_owner_names_are_invalid_argument_naming_the_field(jobs, name):
    from client.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="^name: .*owner name|^name: is required"):
        jobs.create_owner(name)
    with pytest.raises(InvalidArgument, match="^owner: "):
        jobs.create_token(name)


def test_negative_limits_are_invalid_argument_naming_the_limit(jobs):
    from client.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="limits.max_jobs"):
        jobs.create_owner("acme", max_jobs=-1)


def test_a_trigger_storm_is_capped_per_owner(owner_client, jobs, engine):
    from datetime import timedelta

    from engine import core
    from engine.model import Trigger

    acme = owner_client("acme")
    job = acme.create("stormy", "def execute(job):\n    return 1\n")
    record = engine.store.get_job(None, job.id)
    later = engine.clock.now() + timedelta(days=1)  # queued, not yet due: they stay queued
    for _ in range(core.MAX_QUEUED_PER_OWNER):
        engine.store.enqueue(record, record.active_version_id, Trigger.MANUAL, later, engine.clock.now(),
                             concurrent=True)
    with pytest.raises(ResourceExhausted, match="runs waiting to start"):
        job.trigger(force=True)
    other = jobs.create("calm", "def execute(job):\n    return 2\n")  # another owner (the admin's) is not held up
    assert other.trigger(wait=True, timeout=30).result == 2


def test_an_owner_runs_at_most_its_max_running_attempts_at_once(engine, jobs):
    from client import Jobs

    jobs.create_owner("capped", max_running=1)
    _, token = jobs.create_token("capped")
    source = "def execute(job):\n    import time\n    time.sleep(0.5)\n    return job.name\n"
    with Jobs.connect(engine.address, token=token) as capped:
        runs = [capped.create(name=f"slow-{i}", execute=source).trigger() for i in range(3)]
        done = [run.wait(timeout=60) for run in runs]
    assert [d.status for d in done] == ["succeeded"] * 3
    spans = sorted((d.started_at, d.finished_at) for d in done)
    # One at a time: each run starts only once the one before it has finished.
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), spans
    [owner] = [o for o in jobs.list_owners() if o.name == "capped"]
    assert owner.limits.max_running == 1
