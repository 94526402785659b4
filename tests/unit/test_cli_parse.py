"""The shape of the `capsule` command line: every command parses, `--json` and the
connection options are accepted everywhere, and bad usage exits 2."""

from __future__ import annotations

import pytest

from client import cli

COMMANDS = [
    pytest.param(["serve"], cli.cmd_serve, id="serve"),
    pytest.param(["serve", "--home", "/tmp/h", "--db", "/tmp/h/x.db", "--listen", "0.0.0.0:6000",
                  "--max-running", "16"], cli.cmd_serve, id="serve-options"),
    pytest.param(["jobs", "list"], cli.cmd_jobs_list, id="jobs-list"),
    pytest.param(["jobs", "list", "--all", "--dynamic", "--search", "report", "--user", "u1"], cli.cmd_jobs_list,
                 id="jobs-list-options"),
    pytest.param(["jobs", "show", "daily-report"], cli.cmd_jobs_show, id="jobs-show"),
    pytest.param(["jobs", "run", "daily-report"], cli.cmd_jobs_run, id="jobs-run"),
    pytest.param(["jobs", "run", "daily-report", "--version", "2", "--force", "--no-wait", "--timeout", "5"],
                 cli.cmd_jobs_run, id="jobs-run-options"),
    pytest.param(["jobs", "history"], cli.cmd_jobs_history, id="jobs-history"),
    pytest.param(["jobs", "history", "--job", "daily-report", "--status", "failed", "-n", "5"], cli.cmd_jobs_history,
                 id="jobs-history-options"),
    pytest.param(["jobs", "enable", "daily-report"], cli.cmd_jobs_enable, id="jobs-enable"),
    pytest.param(["jobs", "disable", "daily-report"], cli.cmd_jobs_disable, id="jobs-disable"),
    pytest.param(["jobs", "delete", "daily-report"], cli.cmd_jobs_delete, id="jobs-delete"),
    pytest.param(["jobs", "versions", "daily-report"], cli.cmd_jobs_versions, id="jobs-versions"),
    pytest.param(["jobs", "rollback", "daily-report", "2"], cli.cmd_jobs_rollback, id="jobs-rollback"),
    pytest.param(["deploy", "jobs.py"], cli.cmd_deploy, id="deploy"),
    pytest.param(["deploy", "jobs.py", "--dry-run", "--prune"], cli.cmd_deploy, id="deploy-options"),
    pytest.param(["messages", "--user", "user_42"], cli.cmd_messages, id="messages"),
    pytest.param(["messages", "--user", "user_42", "--follow", "--after", "msg_1"], cli.cmd_messages,
                 id="messages-follow"),
    pytest.param(["log-cleanup", "--days", "30"], cli.cmd_log_cleanup, id="log-cleanup"),
    pytest.param(["log-cleanup", "--days", "0.5", "--dry-run", "--job", "x"], cli.cmd_log_cleanup,
                 id="log-cleanup-options"),
    pytest.param(["doctor"], cli.cmd_doctor, id="doctor"),
    pytest.param(["serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"], cli.cmd_serve, id="serve-tls"),
    pytest.param(["owners", "create", "acme"], cli.cmd_owners_create, id="owners-create"),
    pytest.param(["owners", "create", "acme", "--trusted", "--max-jobs", "5", "--max-artifact-bytes", "1000",
                  "--max-messages-per-attempt", "3"], cli.cmd_owners_create, id="owners-create-options"),
    pytest.param(["owners", "list"], cli.cmd_owners_list, id="owners-list"),
    pytest.param(["tokens", "create", "--owner", "acme"], cli.cmd_tokens_create, id="tokens-create"),
    pytest.param(["tokens", "create", "--owner", "acme", "--label", "billing"], cli.cmd_tokens_create,
                 id="tokens-create-label"),
    pytest.param(["tokens", "revoke", "tok_1"], cli.cmd_tokens_revoke, id="tokens-revoke"),
    pytest.param(["--ca", "ca.pem", "doctor"], cli.cmd_doctor, id="ca-before"),
    pytest.param(["doctor", "--ca", "ca.pem"], cli.cmd_doctor, id="ca-after"),
]


def parse(argv):
    return cli.build_parser().parse_args(argv)


@pytest.mark.parametrize("argv, run", COMMANDS)
def test_every_command_parses_to_its_function(argv, run):
    args = parse(argv)
    assert args.run is run
    assert args.json is False
    assert args.address is None and args.token is None


@pytest.mark.parametrize("argv, run", COMMANDS)
def test_json_is_accepted_after_every_command(argv, run):
    assert parse([*argv, "--json"]).json is True


@pytest.mark.parametrize("argv, run", COMMANDS)
def test_global_options_are_accepted_before_the_command(argv, run):
    args = parse(["--json", "--address", "h:1", "--token", "t", *argv])
    assert (args.json, args.address, args.token) == (True, "h:1", "t")


def test_connection_options_after_the_command_win():
    args = parse(["--address", "a:1", "jobs", "list", "--address", "b:2", "--token", "t"])
    assert (args.address, args.token) == ("b:2", "t")


def test_parsed_values_have_their_types():
    args = parse(["jobs", "run", "r", "--version", "3", "--timeout", "2.5"])
    assert (args.version, args.timeout, args.no_wait, args.force) == (3, 2.5, False, False)
    assert parse(["jobs", "history", "-n", "7"]).limit == 7
    assert parse(["log-cleanup", "--days", "1.5"]).days == 1.5
    assert parse(["serve", "--max-running", "16"]).max_running == 16
    assert parse(["serve"]).max_running is None


@pytest.mark.parametrize("argv", [
    pytest.param([], id="no-command"),
    pytest.param(["jobs"], id="jobs-without-action"),
    pytest.param(["nope"], id="unknown-command"),
    pytest.param(["jobs", "show"], id="missing-name"),
    pytest.param(["jobs", "run", "r", "--version", "two"], id="non-integer-version"),
    pytest.param(["jobs", "history", "--status", "exploded"], id="unknown-status"),
    pytest.param(["messages"], id="messages-without-user"),
    pytest.param(["log-cleanup"], id="cleanup-without-days"),
    pytest.param(["deploy"], id="deploy-without-module"),
    pytest.param(["jobs", "list", "--bogus"], id="unknown-option"),
    pytest.param(["serve", "--max-running", "0"], id="max-running-zero"),
])
def test_bad_usage_exits_2(argv, capsys):
    assert cli.main(argv) == 2
    assert "usage: capsule" in capsys.readouterr().err


def test_help_exits_0_and_names_the_environment(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "CAPSULE_ADDRESS" in out and "CAPSULE_TOKEN" in out and "CAPSULE_HOME" in out


def test_serve_needs_both_tls_files(capsys):
    assert cli.main(["serve", "--tls-cert", "c.pem"]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
