"""A small synchronous client for the agent's HTTP API (Nomad's /v1 routes), as the `yurt` command uses it."""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_ADDRESS = "http://127.0.0.1:4646"
# yurt's own variables win over Nomad's, so both CLIs can point at different clusters from one shell.
ENV = {"address": ("YURT_ADDR", "NOMAD_ADDR"), "region": ("YURT_REGION", "NOMAD_REGION"),
       "namespace": ("YURT_NAMESPACE", "NOMAD_NAMESPACE"), "token": ("YURT_TOKEN", "NOMAD_TOKEN")}


class ApiError(Exception):
    """The agent answered with a status other than 200; printed as Nomad's client prints it."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body

    def __str__(self) -> str:
        return f"Unexpected response code: {self.status} ({self.body})"


class TransportError(ApiError):
    """No answer at all (refused, unknown host, timeout), worded as Go's net/http error: status 0."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)

    def __str__(self) -> str:
        return self.body


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded answer and its X-Nomad-Index (0 when the route sends none)."""

    data: Any
    index: int = 0


def _env(name: str, env: Mapping[str, str]) -> str:
    return next((env[key] for key in ENV[name] if env.get(key)), "")


def job_path(job_id: str, suffix: str = "") -> str:
    # Dispatched and periodic children have "/" in their IDs; Nomad's client escapes it (%2F) as here.
    return f"/v1/job/{quote(job_id, safe='')}{suffix}"


class ApiClient:
    """One agent address plus the region, namespace and ACL token every request carries."""

    def __init__(self, address: str = "", *, region: str = "", namespace: str = "", token: str = "",
                 env: Mapping[str, str] | None = None, timeout: float = 60.0) -> None:
        env = os.environ if env is None else env
        address = (address or _env("address", env) or DEFAULT_ADDRESS).rstrip("/")
        if "://" not in address:
            address = "http://" + address
        parts = urlsplit(address)
        self.address = address
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 4646)
        self.region = region or _env("region", env)
        self.namespace = namespace or _env("namespace", env)
        self.token = token or _env("token", env)
        self.timeout = timeout
        self.tls_skip_verify = False

    # -- transport -------------------------------------------------------------------------------------

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            import ssl  # only HTTPS pays for importing ssl

            context = ssl.create_default_context()
            if self.tls_skip_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _target(self, path: str, params: list[tuple[str, str]] | None) -> str:
        query = list(params or [])
        if self.region:
            query.append(("region", self.region))
        if self.namespace:
            query.append(("namespace", self.namespace))
        return path + ("?" + urlencode(query) if query else "")

    def _transport_error(self, method: str, target: str, exc: BaseException) -> TransportError:
        hostport = f"{self.host}:{self.port}"
        if isinstance(exc, socket.gaierror):
            detail = f"dial tcp: lookup {self.host}: no such host"
        elif isinstance(exc, TimeoutError | socket.timeout):
            detail = f"dial tcp {hostport}: i/o timeout"
        elif isinstance(exc, ConnectionRefusedError):
            detail = f"dial tcp {hostport}: connect: connection refused"
        elif isinstance(exc, ConnectionResetError):
            detail = f"read tcp {hostport}: read: connection reset by peer"
        elif isinstance(exc, http.client.RemoteDisconnected | http.client.IncompleteRead):
            detail = "EOF"
        elif isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            detail = f"dial tcp {hostport}: connect: {os.strerror(exc.errno).lower()}"
        else:
            detail = str(exc)
        return TransportError(f'{method.capitalize()} "{self.address}{target}": {detail}')

    def open(self, method: str, path: str, *, params: list[tuple[str, str]] | None = None, body: Any = None,
             raw_body: bytes | None = None, timeout: float | None = None) -> http.client.HTTPResponse:
        """Send a request and return the open response (status 200), for streams; ApiError otherwise."""
        target = self._target(path, params)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["X-Nomad-Token"] = self.token
        payload = raw_body
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._connection(self.timeout if timeout is None else timeout)
        try:
            conn.request(method, target, body=payload, headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self._transport_error(method, target, exc) from None
        if response.status != 200:
            text = response.read().decode(errors="replace")
            conn.close()
            raise ApiError(response.status, text)
        return response

    def request(self, method: str, path: str, *, params: list[tuple[str, str]] | None = None, body: Any = None,
                raw_body: bytes | None = None, timeout: float | None = None) -> Response:
        response = self.open(method, path, params=params, body=body, raw_body=raw_body, timeout=timeout)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._transport_error(method, self._target(path, params), exc) from None
        finally:
            response.close()
        index = int(response.getheader("X-Nomad-Index") or 0)
        text = data.decode(errors="replace")
        try:
            return Response(json.loads(text) if text.strip() else None, index)
        except ValueError:
            return Response(text, index)

    def get(self, path: str, params: list[tuple[str, str]] | None = None, *, index: int = 0,
            wait: float = 0.0) -> Response:
        """A read; with `index` it is a blocking query answered when the data passes that index or after `wait`."""
        query = list(params or [])
        if index:
            query += [("index", str(index)), ("wait", f"{max(1, int((wait or 300) * 1000))}ms")]
        return self.request("GET", path, params=query, timeout=self.timeout + (wait or 300) if index else None)

    def put(self, path: str, body: Any = None, params: list[tuple[str, str]] | None = None) -> Any:
        return self.request("PUT", path, params=params, body=body).data

    def delete(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        return self.request("DELETE", path, params=params).data

    # -- jobs --------------------------------------------------------------------------------------------

    def jobs(self, prefix: str = "") -> list[dict]:
        data = self.get("/v1/jobs", [("prefix", prefix)] if prefix else None).data or []
        return sorted(data, key=lambda j: j["ID"])

    def job(self, job_id: str) -> dict:
        return self.get(job_path(job_id)).data

    def register_job(self, job: dict, *, check_index: int | None = None, policy_override: bool = False,
                     preserve_counts: bool = False) -> dict:
        body: dict[str, Any] = {"Job": job, "PolicyOverride": policy_override, "PreserveCounts": preserve_counts}
        if check_index is not None:
            body.update(EnforceIndex=True, JobModifyIndex=check_index)
        return self.put("/v1/jobs", body)

    def plan_job(self, job: dict, *, diff: bool = True, policy_override: bool = False) -> dict:
        return self.put(job_path(job["ID"], "/plan"), {"Job": job, "Diff": diff, "PolicyOverride": policy_override})

    def deregister_job(self, job_id: str, *, purge: bool = False) -> dict:
        return self.delete(job_path(job_id), [("purge", "true")] if purge else None) or {}

    def job_versions(self, job_id: str, *, diffs: bool = False) -> dict:
        return self.get(job_path(job_id, "/versions"), [("diffs", "true")] if diffs else None).data

    def job_allocations(self, job_id: str, *, all_allocs: bool = False) -> list[dict]:
        data = self.get(job_path(job_id, "/allocations"), [("all", "true")] if all_allocs else None).data
        return newest_first(data)

    def job_evaluations(self, job_id: str) -> list[dict]:
        return newest_first(self.get(job_path(job_id, "/evaluations")).data)

    def job_deployments(self, job_id: str) -> list[dict]:
        return newest_first(self.get(job_path(job_id, "/deployments")).data)

    def job_latest_deployment(self, job_id: str) -> dict | None:
        return self.get(job_path(job_id, "/deployment")).data

    def job_summary(self, job_id: str) -> dict | None:
        return self.get(job_path(job_id, "/summary")).data

    def revert_job(self, job_id: str, version: int) -> dict:
        return self.put(job_path(job_id, "/revert"), {"JobID": job_id, "JobVersion": version})

    def dispatch_job(self, job_id: str, meta: dict[str, str], payload: bytes | None) -> dict:
        import base64

        body = {"JobID": job_id, "Meta": meta, "Payload": base64.b64encode(payload).decode() if payload else None}
        return self.put(job_path(job_id, "/dispatch"), body)

    def force_periodic(self, job_id: str) -> dict:
        return self.put(job_path(job_id, "/periodic/force"))

    def scale_job(self, job_id: str, group: str, count: int, message: str) -> dict:
        body = {"Count": count, "Target": {"Job": job_id, "Group": group}, "Message": message}
        return self.put(job_path(job_id, "/scale"), body)

    # -- nodes -------------------------------------------------------------------------------------------

    def nodes(self, prefix: str = "") -> list[dict]:
        return newest_first(self.get("/v1/nodes", [("prefix", prefix)] if prefix else None).data)

    def node(self, node_id: str, *, index: int = 0, wait: float = 0.0) -> Response:
        return self.get(f"/v1/node/{node_id}", index=index, wait=wait)

    def node_allocations(self, node_id: str, *, index: int = 0, wait: float = 0.0) -> Response:
        response = self.get(f"/v1/node/{node_id}/allocations", index=index, wait=wait)
        return Response(newest_first(response.data), response.index)

    def update_drain(self, node_id: str, spec: dict | None, *, mark_eligible: bool) -> dict:
        body = {"NodeID": node_id, "DrainSpec": spec, "MarkEligible": mark_eligible}
        return self.put(f"/v1/node/{node_id}/drain", body)

    def update_eligibility(self, node_id: str, eligible: bool) -> dict:
        body = {"NodeID": node_id, "Eligibility": "eligible" if eligible else "ineligible"}
        return self.put(f"/v1/node/{node_id}/eligibility", body)

    def node_stats(self, node_id: str) -> dict:
        return self.get("/v1/client/stats", [("node_id", node_id)]).data

    # -- allocations, evaluations, deployments -------------------------------------------------------

    def allocations(self, prefix: str = "") -> list[dict]:
        return newest_first(self.get("/v1/allocations", [("prefix", prefix)] if prefix else None).data)

    def allocation(self, alloc_id: str) -> dict:
        return self.get(f"/v1/allocation/{alloc_id}").data

    def stop_allocation(self, alloc_id: str) -> dict:
        return self.put(f"/v1/allocation/{alloc_id}/stop")

    def allocation_stats(self, alloc_id: str) -> dict:
        return self.get(f"/v1/client/allocation/{alloc_id}/stats").data

    def restart_allocation(self, alloc_id: str, task: str) -> dict:
        return self.put(f"/v1/client/allocation/{alloc_id}/restart", {"TaskName": task})

    def signal_allocation(self, alloc_id: str, task: str, signal: str) -> dict:
        return self.put(f"/v1/client/allocation/{alloc_id}/signal", {"Task": task, "Signal": signal})

    def alloc_logs(self, alloc_id: str, task: str, *, stderr: bool, follow: bool, origin: str = "start",
                   offset: int = 0) -> Iterator[bytes]:
        """The task's log as plain bytes, chunk by chunk; with `follow` it ends only when the agent hangs up."""
        params = [("task", task), ("type", "stderr" if stderr else "stdout"), ("origin", origin),
                  ("offset", str(offset)), ("plain", "true"), ("follow", "true" if follow else "false")]
        response = self.open("GET", f"/v1/client/fs/logs/{alloc_id}", params=params, timeout=None if follow else 60)
        try:
            while chunk := response.read1(65536):
                yield chunk
        finally:
            response.close()

    def evaluations(self, prefix: str = "", *, job: str = "", status: str = "") -> list[dict]:
        params = [(k, v) for k, v in (("prefix", prefix), ("job", job), ("status", status)) if v]
        return newest_first(self.get("/v1/evaluations", params).data)

    def evaluation(self, eval_id: str) -> dict:
        return self.get(f"/v1/evaluation/{eval_id}").data

    def evaluation_allocations(self, eval_id: str) -> list[dict]:
        return self.get(f"/v1/evaluation/{eval_id}/allocations").data or []

    def deployments(self, prefix: str = "") -> list[dict]:
        return newest_first(self.get("/v1/deployments", [("prefix", prefix)] if prefix else None).data)

    def deployment(self, deployment_id: str, *, index: int = 0, wait: float = 0.0) -> Response:
        return self.get(f"/v1/deployment/{deployment_id}", index=index, wait=wait)

    def deployment_allocations(self, deployment_id: str) -> list[dict]:
        return newest_first(self.get(f"/v1/deployment/allocations/{deployment_id}").data)

    def promote_deployment(self, deployment_id: str, groups: list[str]) -> dict:
        body = {"DeploymentID": deployment_id, "All": not groups, "Groups": groups or None}
        return self.put(f"/v1/deployment/promote/{deployment_id}", body)

    def fail_deployment(self, deployment_id: str) -> dict:
        return self.put(f"/v1/deployment/fail/{deployment_id}", {"DeploymentID": deployment_id})

    def pause_deployment(self, deployment_id: str, pause: bool) -> dict:
        return self.put(f"/v1/deployment/pause/{deployment_id}", {"DeploymentID": deployment_id, "Pause": pause})

    # -- agent, status, operator, system, search ---------------------------------------------------

    def agent_self(self) -> dict:
        return self.get("/v1/agent/self").data

    def agent_members(self) -> dict:
        return self.get("/v1/agent/members").data

    def agent_join(self, addresses: list[str]) -> dict:
        return self.put("/v1/agent/join", params=[("address", a) for a in addresses])

    def status_leader(self, region: str = "") -> str:
        return self.get("/v1/status/leader", [("region", region)] if region else None).data or ""

    def status_peers(self) -> list[str]:
        return self.get("/v1/status/peers").data or []

    def raft_configuration(self, *, stale: bool = False) -> dict:
        return self.get("/v1/operator/raft/configuration", [("stale", "true")] if stale else None).data

    def raft_remove_peer(self, *, address: str = "", peer_id: str = "") -> None:
        self.delete("/v1/operator/raft/peer", [("address", address)] if address else [("id", peer_id)])

    def system_gc(self) -> None:
        self.put("/v1/system/gc")

    def search(self, prefix: str, context: str = "all") -> dict:
        return self.put("/v1/search", {"Prefix": prefix, "Context": context})


def newest_first(items: list[dict] | None) -> list[dict]:
    """Nomad's API package orders lists by CreateIndex, newest first; ties keep the server's (ID) order."""
    return sorted(items or [], key=lambda item: -int(item.get("CreateIndex") or 0))
