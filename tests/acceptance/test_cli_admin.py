"""The admin's path: `capsule serve --tls-cert --tls-key`, then owners and tokens made
with the CLI over TLS (`--ca` and `CAPSULE_CA`), a token used and revoked."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess

import pytest
from support import CAPSULE, serve_env, start_serve



@pytest.fixture(scope="module")
def tls_served(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl binary is needed to make a test certificate")
    base = tmp_path_factory.mktemp("tls")
    cert, key = base / "cert.pem", base / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    log_path = base / "serve.log"
    proc, address = start_serve(base / "home", log_path, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        yield {**serve_env(base / "home"), "CAPSULE_ADDRESS": address}, cert
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()


def capsule(env, *args):
    return subprocess.run([CAPSULE, *args], env=env, capture_output=True, text=True, timeout=60)


def test_owners_and_tokens_over_tls(tls_served):
    env, cert = tls_served
    made = capsule(env, "--ca", str(cert), "owners", "create", "acme", "--max-jobs", "5", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["max_jobs"] == 5
    env = {**env, "CAPSULE_CA": str(cert)}
    listed = json.loads(capsule(env, "owners", "list", "--json").stdout)
    assert [(o["name"], o["trusted_allowed"]) for o in listed] == [("acme", False)]
    token = json.loads(capsule(env, "tokens", "create", "--owner", "acme", "--label", "svc", "--json").stdout)
    assert token["token"].startswith("cap_") and token["owner"] == "acme"
    as_acme = {**env, "CAPSULE_TOKEN": token["token"]}
    doctor = capsule(as_acme, "doctor", "--json")
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["owner"] == "acme"
    refused = capsule(as_acme, "owners", "list")
    assert refused.returncode == 2 and "admin" in refused.stderr
    assert capsule(env, "tokens", "revoke", token["id"]).returncode == 0
    gone = capsule(as_acme, "doctor")
    assert gone.returncode == 2 and "token" in gone.stderr


def test_a_token_for_an_unknown_owner_fails_with_not_found(tls_served):
    env, cert = tls_served
    done = capsule({**env, "CAPSULE_CA": str(cert)}, "tokens", "create", "--owner", "nobody")
    assert done.returncode == 1 and "owner 'nobody' not found" in done.stderr


def test_without_the_ca_the_tls_engine_is_unreachable(tls_served):
    env, _ = tls_served
    done = capsule(env, "doctor")
    assert done.returncode == 2
