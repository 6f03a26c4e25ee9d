"""Errors as Nomad words them: unreachable agent, usage, flags, help; and the formatting helpers underneath."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from orchestrator.api.client import ApiClient
from orchestrator.cli.flags import FlagSet
from orchestrator.cli.format import columnize, format_kv, ibytes, pretty_time_diff
from orchestrator.cli.main import main

JOBS = Path(__file__).resolve().parents[1] / "fixtures" / "jobs"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_nomads_message(yurt):
    port = closed_port()
    address = f"http://127.0.0.1:{port}"
    refused = f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    assert yurt("job status", address=address) == (1, "", f'Error querying jobs: Get "{address}/v1/jobs": {refused}\n')
    assert yurt("job run", str(JOBS / "batch.nomad"), address=address) == (
        1, "", f'Error submitting job: Put "{address}/v1/jobs": {refused}\n')


def test_address_comes_from_flag_then_yurt_then_nomad_env(monkeypatch):
    assert ApiClient(env={}).address == "http://127.0.0.1:4646"
    assert ApiClient(env={"NOMAD_ADDR": "http://n:1"}).address == "http://n:1"
    assert ApiClient(env={"NOMAD_ADDR": "http://n:1", "YURT_ADDR": "http://y:2"}).address == "http://y:2"
    assert ApiClient("http://f:3", env={"YURT_ADDR": "http://y:2"}).address == "http://f:3"
    client = ApiClient(env={"NOMAD_TOKEN": "secret", "NOMAD_REGION": "eu", "NOMAD_NAMESPACE": "ops"})
    assert (client.token, client.region, client.namespace) == ("secret", "eu", "ops")
    assert client._target("/v1/jobs", [("prefix", "a")]) == "/v1/jobs?prefix=a&region=eu&namespace=ops"


def test_token_and_region_travel_with_requests(agent, yurt):
    yurt("job status", "-token", "s3cret", "-region", "global")
    assert agent.requests[-1][2] == {"region": ["global"]} and agent.tokens[-1] == "s3cret"
    assert yurt("node status", "-token=abc")[0] == 0


def test_usage_errors_exit_1(yurt, capsys):
    assert yurt("job status", "a", "b") == (1, "", "This command takes either no arguments or one: <job>\n"
                                                   "For additional help try 'yurt job status -help'\n")
    code, _, err = yurt("node drain", "cb6f504b")
    assert code == 1
    assert err.startswith("Either the '-enable' or '-disable' flag must be set, unless using '-monitor'\n")
    code, _, err = yurt("node drain", "-enable", "-force", "-deadline", "1m", "cb6f504b")
    assert code == 1 and err.startswith("-deadline can't be combined with -force or -no-deadline")
    code, _, err = yurt("job status", "-bogus")
    assert code == 1 and err.startswith("flag provided but not defined: -bogus\nUsage: yurt job status")
    code, _, err = yurt("job run")
    assert code == 1 and err.startswith("This command takes one argument: <path>")
    code, out, _ = yurt("job status", "-help")
    assert code == 0 and out.startswith("Usage: yurt job status [options] <job>") and "-address=<addr>" in out
    capsys.readouterr()
    assert main(["job"]) == 1 and "Subcommands:" in capsys.readouterr().err
    assert main(["job", "bogus"]) == 1
    assert main(["frobnicate"]) == 127
    assert main(["operator", "raft"]) == 1 and "list-peers" in capsys.readouterr().err


def test_go_style_flags():
    flags = FlagSet("job run", "Usage: x\n{general}").bool("detach").string("check-index").strings("var")
    opts = flags.parse(["-detach=false", "--check-index", "5", "-var=a=1", "-var", "b=2", "file.nomad", "-x"])
    assert (opts.detach, opts.check_index, opts.var, opts.args) == (False, "5", ["a=1", "b=2"], ["file.nomad", "-x"])
    assert flags.parse(["-address=http://h:1", "--", "-detach"]).args == ["-detach"]
    assert flags.parse(["-", "x"]).args == ["-", "x"]


def test_formatting_helpers():
    assert columnize(["a|bb|c", "ddd||e"], empty="<none>") == "a    bb      c\nddd  <none>  e"
    assert format_kv(["ID|x", "Longer Key|"]) == "ID         = x\nLonger Key = <none>"
    assert [pretty_time_diff(1000.0 - d, 1000.0) for d in (0.2, 4, 231, 3600 * 27 + 5)] == [
        "0s ago", "4s ago", "3m51s ago", "1d3h ago"]
    assert pretty_time_diff(2000.0 + 3 * 86400 + 7 * 3600, 2000.0) == "3d7h from now"
    assert pretty_time_diff(None) == "" and pretty_time_diff(0) == ""
    assert [ibytes(n) for n in (0, 9, 52 * 1024, 16 * 2**20, 25274793984, 1536 * 1024)] == [
        "0 B", "9 B", "52 KiB", "16 MiB", "24 GiB", "1.5 MiB"]


@pytest.mark.parametrize("words", ["alloc logs", "alloc restart", "alloc signal"])
def test_client_endpoints_report_the_agent_error(yurt, words):
    code, _, err = yurt(words, "5958c01c", "sleep")
    assert code == 1 and "Unexpected response code: 404" in err
