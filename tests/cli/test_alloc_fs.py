"""`yurt alloc fs` against the fake agent: Nomad's table layouts for listings and stat, -H, the prefix lookups
and the errors of the client endpoints."""

from __future__ import annotations

from cli_fake_agent import Reply

ALLOC = "5958c01c-447d-0399-fa51-523d563ff9f1"
LISTING = [
    {"Name": "alloc", "IsDir": True, "Size": 4096, "FileMode": "drwxrwxrwx", "ModTime": "2026-11-22T10:24:30.1Z"},
    {"Name": "sleep", "IsDir": True, "Size": 4096, "FileMode": "drwxrwxrwx",
     "ModTime": "2026-11-22T11:24:30.123456789+01:00"},
    {"Name": "big.bin", "IsDir": False, "Size": 25274793984, "FileMode": "-rw-r--r--",
     "ModTime": "2026-11-22T10:25:00Z"},
]
STAT_DIR = {"Name": "/", "IsDir": True, "Size": 4096, "FileMode": "drwxrwxrwx", "ModTime": "2026-11-22T10:24:30Z"}


def test_a_directory_is_listed_with_human_sizes_and_trailing_slashes(agent, yurt):
    agent.on("GET", f"/v1/client/fs/stat/{ALLOC}", STAT_DIR)
    agent.on("GET", f"/v1/client/fs/ls/{ALLOC}", LISTING)
    code, out, err = yurt("alloc fs", "5958c01c")
    assert (code, err) == (0, "")
    assert out == (
        "Mode        Size     Modified Time         Name\n"
        "drwxrwxrwx  4.0 KiB  2026-11-22T10:24:30Z  alloc/\n"
        "drwxrwxrwx  4.0 KiB  2026-11-22T10:24:30Z  sleep/\n"
        "-rw-r--r--  24 GiB   2026-11-22T10:25:00Z  big.bin\n")
    _, machine, _ = yurt("alloc fs", "-H", "5958c01c", "/")
    assert machine.splitlines()[3] == "-rw-r--r--  25274793984  2026-11-22T10:25:00Z  big.bin"
    paths = [(path, query.get("path")) for method, path, query, _ in agent.requests if "/fs/" in path]
    assert paths[:2] == [(f"/v1/client/fs/stat/{ALLOC}", ["/"]), (f"/v1/client/fs/ls/{ALLOC}", ["/"])]


def test_stat_prints_one_row_with_the_content_type(agent, yurt):
    agent.on("GET", f"/v1/client/fs/stat/{ALLOC}", {
        "Name": "sleep.log", "IsDir": False, "Size": 52 * 1024, "FileMode": "-rw-r--r--",
        "ModTime": "2026-11-22T10:24:30Z", "ContentType": "text/plain; charset=utf-8"})
    code, out, _ = yurt("alloc fs", "-stat", ALLOC, "sleep/local/sleep.log")
    assert code == 0
    assert out == ("Mode        Size    Modified Time         Content Type               Name\n"
                   "-rw-r--r--  52 KiB  2026-11-22T10:24:30Z  text/plain; charset=utf-8  sleep.log\n")


def test_errors_of_the_lookup_and_of_the_client_endpoints(agent, yurt):
    agent.on("GET", f"/v1/client/fs/stat/{ALLOC}", Reply(404, "stat nope: no such file or directory"))
    code, out, err = yurt("alloc fs", ALLOC, "nope")
    assert (code, out, err) == (1, "", "Unexpected response code: 404 (stat nope: no such file or directory)\n")
    agent.on("GET", f"/v1/client/fs/stat/{ALLOC}", STAT_DIR)
    agent.on("GET", f"/v1/client/fs/ls/{ALLOC}", Reply(500, "boom"))
    code, _, err = yurt("alloc fs", ALLOC)
    assert (code, err) == (1, "Error listing alloc dir: Unexpected response code: 500 (boom)\n")
    code, _, err = yurt("alloc fs", "5")
    assert (code, err) == (1, "Alloc ID must contain at least two characters.\n")
    code, _, err = yurt("alloc fs", "0000")
    assert (code, err) == (1, 'No allocation(s) with prefix or id "0000" found\n')
    code, _, err = yurt("alloc fs")
    assert (code, err) == (1, "An allocation ID is required\nFor additional help try 'yurt alloc fs -help'\n")
