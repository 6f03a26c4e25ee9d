"""Identifiers drawn from an injected seeded generator, so simulated runs are reproducible."""

from __future__ import annotations

from .ports import Rng


def new_id(rng: Rng) -> str:
    """A random UUID (version 4 layout) from `rng`, like Nomad's allocation and evaluation IDs."""
    value = rng.getrandbits(128)
    value &= ~(0xF000 << 64)
    value |= 0x4000 << 64
    value &= ~(0xC000 << 48)
    value |= 0x8000 << 48
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
