"""A fake agent for CLI tests: Nomad 1.0.18's recorded API answers over real HTTP, plus scripted writes."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

REFERENCE = Path(__file__).resolve().parent / "reference"
NODE_ID = "cb6f504b-a5aa-734e-87e3-69e28fa88f85"

Handler = Callable[[dict[str, list[str]], Any], Any]


def load(name: str) -> Any:
    return json.loads((REFERENCE / name).read_text())


class Reply:
    """A non-200 answer (Nomad's errors are plain text)."""

    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text


class FakeAgent:
    """Serves /v1 routes from the reference captures; `on()` scripts answers, `requests` records what came."""

    def __init__(self) -> None:
        self.job_stubs: list[dict] = load("jobs.json")
        self.jobs: dict[str, dict] = {j["ID"]: j for j in (load("job-hello-batch.json"), load("job-sleeper.json"))}
        self.summaries = {s["ID"]: s["JobSummary"] for s in self.job_stubs}
        self.summaries["sleeper"] = load("job-sleeper-summary.json")
        self.allocs: list[dict] = load("allocations.json")
        detail = load("allocation-detail.json")
        self.alloc_details = {detail["ID"]: detail}
        self.evals: list[dict] = load("evaluations.json")
        self.deployments: list[dict] = load("deployments.json")
        self.nodes: list[dict] = load("nodes.json")
        self.node_details = {NODE_ID: load("node-detail.json")}
        self.node_allocs: dict[str, list[dict]] | None = None
        self.members = load("agent-members.json")
        self.leader = "127.0.0.1:4647"
        self.raft = {"Index": 1, "Servers": [{"ID": "127.0.0.1:4647", "Node": "vm.global", "Address": "127.0.0.1:4647",
                                              "Leader": True, "Voter": True, "RaftProtocol": "2"}]}
        self.scripts: dict[tuple[str, str], list[Any]] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.raw_paths: list[str] = []
        self.tokens: list[str | None] = []
        self.index = 1000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeAgent:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def on(self, method: str, path: str, *answers: Any) -> None:
        """Answer `method path` with `answers` in turn (the last one repeats); a callable gets (query, body)."""
        self.scripts[(method, path)] = list(answers)

    def writes(self, method: str = "PUT") -> list[tuple[str, Any]]:
        return [(path, body) for m, path, _q, body in self.requests if m == method]

    # -- dispatch ------------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        with self._lock:
            self.requests.append((method, path, query, body))
            script = self.scripts.get((method, path))
            if script:
                answer = script.pop(0) if len(script) > 1 else script[0]
                return answer(query, body) if callable(answer) else copy.deepcopy(answer)
        for pattern, route_method, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return handler(query, *match.groups())
        return Reply(404, "Invalid URL")

    def _routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        return [
            (r"/v1/jobs", "GET", lambda q: self._prefixed(self.job_stubs, q)),
            (r"/v1/job/([^/]+(?:/(?:dispatch|periodic)-[^/]+)?)", "GET", lambda q, j: self._job(j)),
            (r"/v1/job/(.+)/summary", "GET", lambda q, j: self.summaries.get(j)),
            (r"/v1/job/(.+)/allocations", "GET", lambda q, j: [a for a in self.allocs if a["JobID"] == j]),
            (r"/v1/job/(.+)/evaluations", "GET", lambda q, j: [e for e in self.evals if e["JobID"] == j]),
            (r"/v1/job/(.+)/deployments", "GET", lambda q, j: [d for d in self.deployments if d["JobID"] == j]),
            (r"/v1/job/(.+)/deployment", "GET", lambda q, j: self._latest_deployment(j)),
            (r"/v1/nodes", "GET", lambda q: self._prefixed(self.nodes, q)),
            (r"/v1/node/([^/]+)", "GET", lambda q, n: self.node_details.get(n) or Reply(404, "node not found")),
            (r"/v1/node/([^/]+)/allocations", "GET", lambda q, n: self._node_allocs(n)),
            (r"/v1/allocations", "GET", lambda q: self._prefixed(self.allocs, q)),
            (r"/v1/allocation/([^/]+)", "GET", lambda q, a: self._alloc(a)),
            (r"/v1/evaluations", "GET", lambda q: self._prefixed(self.evals, q)),
            (r"/v1/evaluation/([^/]+)", "GET", lambda q, e: self._by_id(self.evals, e, "eval not found")),
            (r"/v1/evaluation/([^/]+)/allocations", "GET", lambda q, e: [a for a in self.allocs if a["EvalID"] == e]),
            (r"/v1/deployments", "GET", lambda q: self._prefixed(self.deployments, q)),
            (r"/v1/deployment/([^/]+)", "GET", lambda q, d: self._by_id(self.deployments, d, "deployment not found")),
            (r"/v1/agent/members", "GET", lambda q: self.members),
            (r"/v1/status/leader", "GET", lambda q: self.leader),
            (r"/v1/operator/raft/configuration", "GET", lambda q: self.raft),
        ]

    def _prefixed(self, items: list[dict], query: dict[str, list[str]]) -> list[dict]:
        prefix = query.get("prefix", [""])[0]
        return [item for item in items if item["ID"].startswith(prefix)]

    def _by_id(self, items: list[dict], wanted: str, missing: str) -> Any:
        return next((item for item in items if item["ID"] == wanted), None) or Reply(404, missing)

    def _job(self, job_id: str) -> Any:
        if job_id in self.jobs:
            return self.jobs[job_id]
        stub = next((s for s in self.job_stubs if s["ID"] == job_id), None)
        if stub is None:
            return Reply(404, "job not found")
        return {**stub, "Namespace": "default", "Periodic": None, "ParameterizedJob": None, "TaskGroups": []}

    def _latest_deployment(self, job_id: str) -> dict | None:
        found = [d for d in self.deployments if d["JobID"] == job_id]
        return max(found, key=lambda d: d["CreateIndex"]) if found else None

    def _node_allocs(self, node_id: str) -> list[dict]:
        if self.node_allocs is not None:
            return self.node_allocs.get(node_id, [])
        return [a for a in self.allocs if a["NodeID"] == node_id]

    def _alloc(self, alloc_id: str) -> Any:
        if alloc_id in self.alloc_details:
            return self.alloc_details[alloc_id]
        return self._by_id(self.allocs, alloc_id, "alloc not found")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                agent.raw_paths.append(parts.path)
                agent.tokens.append(self.headers.get("X-Nomad-Token"))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                # Job IDs arrive percent-encoded ("%2F" for "/"), as Nomad's client sends them.
                result = agent.answer(self.command, unquote(parts.path), parse_qs(parts.query), body)
                with agent._lock:
                    agent.index += 1
                    index = agent.index
                if isinstance(result, Reply):
                    payload, status, kind = result.text.encode(), result.status, "text/plain; charset=utf-8"
                else:
                    payload, status, kind = json.dumps(result).encode(), 200, "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Nomad-Index", str(index))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = _serve

        return Handler
