"""Nomad-compatible HTTP API."""
