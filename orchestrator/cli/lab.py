"""`yurt lab up|down|status`: the netns lab hosts (s1, s2, s3 on 10.250.0.0/24) that `fab deploy` targets."""

from __future__ import annotations

from remote.lab import main as lab_main


def main(args: list[str]) -> int:
    return lab_main(args, prog="yurt lab")
