"""Local build of a release: the project's wheel plus a wheelhouse of its dependencies, cached under .build/."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What goes into the project wheel (pyproject's packages.find include) plus the files its metadata reads.
PACKAGES = ("orchestrator", "sim", "remote")
TOP_FILES = ("pyproject.toml", "README.md")
STAMP = ".deps.json"
# Hosts run pip straight from its wheel (`python pip.whl/pip install`) in a venv made --without-pip: ensurepip
# would cost ~3 s per host and pip's copy in the venv is never needed again.
TOOLS = ("pip",)
KEEP_BUILDS = 3


class BuildError(RuntimeError):
    pass


@dataclass(slots=True)
class Release:
    """The wheels a host installs; `id` names the set, so a host holding the same id needs nothing."""

    id: str
    project_wheel: Path
    wheels: list[Path]  # every wheel to upload, the project's included
    digests: dict[str, str] = field(default_factory=dict)  # wheel file name -> sha256

    @property
    def pip_wheel(self) -> Path:
        return next(w for w in self.wheels if w.name.startswith("pip-"))

    @property
    def short_id(self) -> str:
        return self.id[:12]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dependencies(root: Path = ROOT) -> list[str]:
    with (root / "pyproject.toml").open("rb") as f:
        return list(tomllib.load(f)["project"].get("dependencies", []))


def _source_files(root: Path) -> list[Path]:
    files = [root / name for name in TOP_FILES if (root / name).is_file()]
    for package in PACKAGES:
        for dirpath, dirnames, filenames in os.walk(root / package):
            # Sorted in place so the walk (and so the hash) does not depend on directory order.
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.endswith(".egg-info"))
            files += [Path(dirpath) / n for n in sorted(filenames) if not n.endswith((".pyc", ".pyo"))]
    return files


def source_hash(root: Path = ROOT) -> str:
    """sha256 over the packaged sources: the project wheel is rebuilt only when this changes, because wheel
    builds are not byte-reproducible (zip timestamps) and a rebuilt wheel would look like a new release."""
    digest = hashlib.sha256()
    for path in _source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _deps_key(deps: list[str]) -> str:
    # The interpreter's tag is part of the key: compiled wheels (numpy, aiohttp) only fit that Python.
    tag = f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
    return hashlib.sha256(json.dumps({"deps": sorted(deps), "tag": tag}).encode()).hexdigest()


def _pip(args: list[str], out: Callable[[str], None]) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    out("$ pip " + " ".join(args))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"pip {' '.join(args[:2])} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")


def build_wheelhouse(root: Path = ROOT, cache: Path | None = None, out: Callable[[str], None] = print) -> Path:
    """Wheels of every dependency in cache/wheelhouse, rebuilt only when pyproject's dependencies change."""
    house = (cache or root / ".build") / "wheelhouse"
    deps = dependencies(root) + list(TOOLS)
    key = _deps_key(deps)
    stamp = house / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key and any(house.glob("*.whl")):
        return house
    out(f"building the wheelhouse of {len(deps) - len(TOOLS)} dependencies (needs the package index once)")
    tmp = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=house.parent if house.parent.exists() else None))
    try:
        # Hosts install with --no-index, so every transitive dependency must be here as a wheel.
        _pip(["wheel", "--quiet", "--wheel-dir", str(tmp), *deps], out)
        (tmp / STAMP).write_text(json.dumps({"key": key, "deps": deps}, indent=1) + "\n")
        if house.exists():
            shutil.rmtree(house)
        tmp.rename(house)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return house


def build_project_wheel(root: Path = ROOT, cache: Path | None = None, out: Callable[[str], None] = print) -> Path:
    """The project's wheel for the current sources, from cache/dist/<source hash>/ when already built."""
    dist = (cache or root / ".build") / "dist"
    target = dist / source_hash(root)[:16]
    found = sorted(target.glob("*.whl"))
    if found:
        return found[0]
    out("building the project wheel")
    with tempfile.TemporaryDirectory(prefix="yurt-src-") as src:
        # A copy of just the packaged files: building in the checkout would write build/ and egg-info there,
        # and the wheel would then contain exactly what source_hash() hashed.
        for path in _source_files(root):
            dest = Path(src) / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _pip(["wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp), src], out)
        tmp.rename(target)
    _prune(dist, keep=target)
    return sorted(target.glob("*.whl"))[0]


def _prune(dist: Path, keep: Path) -> None:
    # Old builds are only a cache; keep a few so switching branches back and forth stays cheap.
    builds = sorted((p for p in dist.iterdir() if p.is_dir() and p != keep), key=lambda p: p.stat().st_mtime)
    for old in builds[: max(0, len(builds) - (KEEP_BUILDS - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def build_release(root: Path = ROOT, cache: Path | None = None, out: Callable[[str], None] = print) -> Release:
    """Project wheel + wheelhouse, and the release id (sha256 over every wheel's name and content)."""
    cache = cache or root / ".build"
    cache.mkdir(parents=True, exist_ok=True)
    ignore = cache / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")  # a build cache, never to be committed
    house = build_wheelhouse(root, cache, out)
    project = build_project_wheel(root, cache, out)
    project_name = project.name.split("-")[0]
    # A stale wheel of the project in the wheelhouse would shadow the fresh one for --find-links.
    wheels = [w for w in sorted(house.glob("*.whl")) if w.name.split("-")[0] != project_name] + [project]
    digests = {w.name: _sha256_file(w) for w in wheels}
    release_id = hashlib.sha256("".join(f"{n} {d}\n" for n, d in sorted(digests.items())).encode()).hexdigest()
    return Release(release_id, project, wheels, digests)


if __name__ == "__main__":
    release = build_release()
    print(f"release {release.short_id}: {len(release.wheels)} wheels, project {release.project_wheel.name}")
