"""Checks and naming for dispatching a Nomad parameterized job, with time and randomness injected."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .ports import Rng

__all__ = [
    "DISPATCH_LAUNCH_SUFFIX",
    "DISPATCH_PAYLOAD_SIZE_LIMIT",
    "PAYLOAD_FORBIDDEN",
    "PAYLOAD_MODES",
    "PAYLOAD_OPTIONAL",
    "PAYLOAD_REQUIRED",
    "dispatch_child_id",
    "merge_dispatch_meta",
    "validate_dispatch",
]

# Nomad's DispatchPayloadSizeLimit (nomad/job_endpoint.go): a hard-coded limit, not a setting.
DISPATCH_PAYLOAD_SIZE_LIMIT = 16 * 1024

PAYLOAD_OPTIONAL = "optional"
PAYLOAD_REQUIRED = "required"
PAYLOAD_FORBIDDEN = "forbidden"
PAYLOAD_MODES = (PAYLOAD_OPTIONAL, PAYLOAD_REQUIRED, PAYLOAD_FORBIDDEN)

DISPATCH_LAUNCH_SUFFIX = "/dispatch-"


def validate_dispatch(
    meta: Mapping[str, str],
    meta_required: Iterable[str],
    meta_optional: Iterable[str],
    payload: bytes | None,
    payload_mode: str,
) -> list[str]:
    """Every reason to refuse a dispatch, worded like Nomad; empty when the dispatch is valid.

    The checks run in Nomad's order (payload, size, unpermitted meta, missing meta). Nomad stops at
    the first failure, so the first message is the one `nomad job dispatch` would print.
    """
    required = list(meta_required)
    errors = _payload_errors(payload or b"", payload_mode)
    allowed = set(required) | set(meta_optional)
    unpermitted = sorted(k for k in meta if k not in allowed)
    if unpermitted:
        errors.append(f"Dispatch request included unpermitted metadata keys: {_go_list(unpermitted)}")
    missing = sorted({k for k in required if k not in meta})
    if missing:
        errors.append(f"Dispatch did not provide required meta keys: {_go_list(missing)}")
    return errors


def _payload_errors(payload: bytes, payload_mode: str) -> list[str]:
    # Nomad treats an empty payload the same as none at all.
    mode = payload_mode or PAYLOAD_OPTIONAL
    errors: list[str] = []
    if mode not in PAYLOAD_MODES:
        errors.append(f'Unknown payload requirement: "{payload_mode}"')
    elif mode == PAYLOAD_REQUIRED and not payload:
        errors.append("Payload is not provided but required by parameterized job")
    elif mode == PAYLOAD_FORBIDDEN and payload:
        errors.append("Payload provided but forbidden by parameterized job")
    if len(payload) > DISPATCH_PAYLOAD_SIZE_LIMIT:
        errors.append(f"Payload exceeds maximum size; {len(payload)} > {DISPATCH_PAYLOAD_SIZE_LIMIT}")
    return errors


def _go_list(items: list[str]) -> str:
    """Format like Go's %v of a []string, which is what Nomad's messages show: [a b]."""
    return "[" + " ".join(items) + "]"


def dispatch_child_id(parent_id: str, now_unix: int, rng: Rng) -> str:
    """`<parent>/dispatch-<unix seconds>-<8 hex>`; Nomad takes the hex from a fresh UUID, we from `rng`."""
    return f"{parent_id}{DISPATCH_LAUNCH_SUFFIX}{int(now_unix)}-{rng.getrandbits(32):08x}"


def merge_dispatch_meta(parent_meta: Mapping[str, str] | None, meta: Mapping[str, str]) -> dict[str, str]:
    """The child's meta: the parent's, overridden key by key by the dispatch request's."""
    return {**(parent_meta or {}), **meta}
