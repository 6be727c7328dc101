"""`make images`: Parley's agent, auth and history images, built without an image
registry or network access inside the build.

1. A base image: `PARLEY_BASE_IMAGE` when set (say `python:3.11-slim-bookworm`, where a
   registry is reachable); otherwise `parley-base:bookworm`, Debian bookworm with its
   Python 3.11, made here once with `debootstrap --variant=minbase` from the Debian mirror
   this machine's apt already uses and `docker import`ed.
2. A wheelhouse on the host: every wheel of the hash-pinned locks, downloaded by pip with
   `--require-hashes` into deploy/wheels/{runtime,services} (kept while the locks are
   unchanged), which the builds install from with `--no-index`.
3. `docker build` of deploy/docker/agent.Dockerfile and the `auth` and `history` targets
   of deploy/docker/services.Dockerfile, with the base as `PYTHON_IMAGE`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "deploy" / "wheels"
LOCAL_BASE = "parley-base:bookworm"
PUBLIC_BASE = "python:3.11-slim-bookworm"
# What the base adds to Debian's minimal system: Python 3.11 with venv (pip comes with
# it), and the CA list.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
WHEELHOUSES = {
    "runtime": ("requirements-runtime.lock", "requirements-models.lock",
                "deploy/docker/build-requirements.lock"),
    "services": ("requirements-services.lock",),
}


@dataclass(frozen=True)
class Image:
    tag: str
    dockerfile: str
    target: str | None = None


IMAGES = (
    Image("parley-agent", "deploy/docker/agent.Dockerfile"),
    Image("parley-auth", "deploy/docker/services.Dockerfile", "auth"),
    Image("parley-history", "deploy/docker/services.Dockerfile", "history"),
)


def log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def docker(*args: str, check: bool = False, capture: bool = False,
           stdin: IO[bytes] | None = None) -> subprocess.CompletedProcess[str]:
    # The classic builder: BuildKit would fetch its Dockerfile frontend from a registry.
    env = {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false"}
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.run(["docker", *args], text=stdin is None, env=env, check=check,
                          stdin=stdin, stdout=out, stderr=out)


def have_image(tag: str) -> bool:
    return docker("image", "inspect", tag).returncode == 0


def debian_mirror(sources_dir: Path = Path("/etc/apt/sources.list.d"),
                  sources_list: Path = Path("/etc/apt/sources.list")) -> str:
    """The Debian archive this machine's apt uses (read at run time, never written into
    the repository): the first deb822 `URIs:` or one-line `deb` entry of a main archive
    (not -security). `PARLEY_DEBIAN_MIRROR` overrides it."""
    if mirror := os.environ.get("PARLEY_DEBIAN_MIRROR"):
        return mirror
    candidates: list[str] = []
    for path in sorted(sources_dir.glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.+)$", stanza, re.M))
            suites = fields.get("Suites", "").split()
            if fields.get("Enabled", "yes") == "no" or "deb" not in fields.get("Types", ""):
                continue
            if any(not s.endswith("-security") for s in suites):
                candidates += fields.get("URIs", "").split()
    if sources_list.exists():
        for line in sources_list.read_text(errors="replace").splitlines():
            words = line.split()
            if words[:1] == ["deb"]:
                uri = next((w for w in words[1:] if not w.startswith("[")), "")
                if uri and not any(w.endswith("-security") for w in words):
                    candidates.append(uri)
    debian = [u for u in candidates if "debian" in u and "security" not in u]
    if not (debian or candidates):
        raise SystemExit("no Debian mirror in the apt sources: set PARLEY_DEBIAN_MIRROR")
    return (debian or candidates)[0]


def bootstrap_base(tag: str = LOCAL_BASE) -> None:
    """Debian bookworm (minbase) with Python 3.11, imported as `tag`. Needs root and
    debootstrap; about half a minute to two minutes."""
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.access(debootstrap, os.X_OK):
        raise SystemExit("debootstrap is not installed: `sudo apt-get install -y debootstrap`")
    mirror = debian_mirror()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="parley-base-") as work:
        rootfs = Path(work) / "root"
        log(f"bootstrapping {tag} (Debian bookworm minbase + {' '.join(BASE_PACKAGES)})")
        subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                        "bookworm", str(rootfs), mirror], check=True,
                       stdout=subprocess.DEVNULL)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                     "usr/share/man", "usr/share/info"):
            for path in (rootfs / junk).glob("*"):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.name != "lock":
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        docker("import", "--change", 'CMD ["python3"]', "-", tag, stdin=tar.stdout,
               check=True)
        if tar.wait() != 0:
            raise SystemExit("tar of the bootstrapped root failed")
    log(f"{tag} made in {time.monotonic() - started:.0f} s")


def locks_digest(locks: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for lock in locks:
        digest.update((ROOT / lock).read_bytes())
    return digest.hexdigest()


def fill_wheelhouse(name: str) -> Path:
    """Every wheel the locks pin, hash-checked, in deploy/wheels/<name>; reused while the
    locks are unchanged (a digest of them is kept beside the wheels)."""
    locks = WHEELHOUSES[name]
    folder = WHEELS / name
    stamp = folder / ".locks"
    digest = locks_digest(locks)
    if stamp.exists() and stamp.read_text().strip() == digest:
        return folder
    for wheel in folder.glob("*.whl"):
        wheel.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"wheelhouse {name}: downloading the wheels of {', '.join(locks)}")
    args = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--require-hashes", "--only-binary=:all:", "-d", str(folder)]
    for lock in locks:
        args += ["-r", str(ROOT / lock)]
    subprocess.run(args, check=True)
    stamp.write_text(digest + "\n")
    log(f"wheelhouse {name}: {len(list(folder.glob('*.whl')))} wheels in "
        f"{time.monotonic() - started:.0f} s")
    return folder


def build(image: Image, base: str, *, version: str = "latest", offline: bool = True) -> None:
    started = time.monotonic()
    args = ["build", "--force-rm", "--network", "host", "-f", str(ROOT / image.dockerfile),
            "--build-arg", f"PYTHON_IMAGE={base}", "-t", f"{image.tag}:{version}"]
    if offline:
        args += ["--build-arg", "PIP_NO_INDEX=1"]
    if image.target:
        args += ["--target", image.target]
    result = docker(*args, str(ROOT), capture=True)
    if result.returncode != 0:
        raise SystemExit(f"docker build of {image.tag} failed:\n{result.stdout[-6000:]}"
                         f"\n{result.stderr[-3000:]}")
    log(f"{image.tag}:{version} built in {time.monotonic() - started:.0f} s")


def ensure_base(base: str | None = None) -> str:
    base = base or os.environ.get("PARLEY_BASE_IMAGE") or LOCAL_BASE
    if not have_image(base):
        if base != LOCAL_BASE:
            raise SystemExit(f"base image {base} is not here: `docker pull {base}` first")
        bootstrap_base(base)
    return base


def build_all(base: str | None = None, *, version: str = "latest") -> str:
    """The base (made when missing), the wheelhouses, the three images; returns the base."""
    base = ensure_base(base)
    for name in WHEELHOUSES:
        fill_wheelhouse(name)
    for image in IMAGES:
        build(image, base, version=version)
    return base


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help=f"base image (default: $PARLEY_BASE_IMAGE or "
                        f"{LOCAL_BASE}, bootstrapped when missing; {PUBLIC_BASE} for the "
                        "public one)")
    parser.add_argument("--version", default=os.environ.get("PARLEY_VERSION", "latest"),
                        help="the images' tag (compose.yaml's PARLEY_VERSION)")
    args = parser.parse_args(argv)
    if shutil.which("docker") is None:
        raise SystemExit("docker is not installed: `sudo apt-get install -y docker.io`")
    if docker("info").returncode != 0:
        raise SystemExit("no Docker engine answers: start one (`sudo dockerd &`)")
    started = time.monotonic()
    build_all(args.base, version=args.version)
    for image in IMAGES:
        size = docker("image", "inspect", "-f", "{{.Size}}", f"{image.tag}:{args.version}",
                      capture=True, check=True).stdout.strip()
        log(f"{image.tag}:{args.version}: {int(size) / 1e6:.0f} MB")
    log(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
