"""Debian packages, offline: fetched with `apt-get download` into a cache, unpacked
with `dpkg-deb` (whole, or only the members wanted), and the licence of a file read
from the package's machine-readable copyright (DEP-5)."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import tarfile
from pathlib import Path


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def download(package: str, cache: Path) -> Path:
    """The cached .deb of `package`, else one fetched with `apt-get download` (after
    `apt-get update` when the package lists are missing)."""
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if debs:
        return debs[-1]
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{package}: apt-get not found; the photo set needs a Debian system")
    result = _run(["apt-get", "download", package], cache)
    if result.returncode != 0:  # package lists may be missing on a fresh machine
        _run(["apt-get", "update"], cache)
        result = _run(["apt-get", "download", package], cache)
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not debs:
        raise RuntimeError(f"{package}: apt-get download failed: {result.stderr.strip()[-300:]}")
    return debs[-1]


def version(deb: Path) -> str:
    """The version a .deb's control file names."""
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()


def extract(deb: Path, dest: Path) -> str:
    """Unpack a whole .deb into `dest` (once: a finished unpack is reused); its version."""
    if not dest.exists():
        tmp = dest.with_suffix(".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(dest)
    return version(deb)


def extract_members(deb: Path, dest: Path, members: list[str]) -> str:
    """Extract only `members` (paths inside the package) of a .deb: some packages are
    mostly other things (psychtoolbox-3-common unpacks to 650 MB for a few photos).
    Returns the package's version."""
    missing = {m for m in members if not (dest / m).exists()}
    if missing:
        command = ["dpkg-deb", "--fsys-tarfile", str(deb)]
        with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    name = member.name.removeprefix("./")
                    if name in missing and member.isfile():
                        target = dest / name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        partial = target.with_name(target.name + ".partial")
                        partial.write_bytes(archive.extractfile(member).read())
                        partial.rename(target)
                        missing.discard(name)
        if missing:
            raise RuntimeError(f"{deb.name}: no {', '.join(sorted(missing)[:3])} in the package")
    return version(deb)


def parse_dep5(text: str) -> list[tuple[list[str], str]]:
    """(patterns, licence) of each `Files:` stanza of a Debian machine-readable copyright."""
    stanzas = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if "Files" in fields and "License" in fields:
            stanzas.append((fields["Files"].split(), fields["License"].split()[0]))
    return stanzas


def licence_for(path: str, stanzas: list[tuple[list[str], str]]) -> str:
    """The last matching stanza wins (DEP-5); patterns match any tail of the path."""
    parts = path.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    found = "unknown"
    for patterns, licence in stanzas:
        if any(fnmatch.fnmatchcase(tail, p) for p in patterns for tail in tails):
            found = licence
    return found
