"""Restore an archive: many files, on many workers, resumable and loss-free.

    python -m jaxrestore.archive IN... --output OUT --workers 4      # this machine
    python -m jaxrestore.archive IN... --output OUT --shard K/N      # one array task
    python -m jaxrestore.archive IN... --output OUT --status         # what is done

IN: folders or files, local or URLs that fsspec reads (`gs://bucket/scans`,
`s3://...`, with gcsfs or s3fs installed); OUT: a folder, local or a URL. Each
input folder's tree is mirrored into OUT as `jaxrestore.restore` mirrors it
(`IN/a/b.jpg` -> `OUT/a/b.png`; several inputs each into `OUT/<name>/`), with the
same checks before anything runs: no output replaces an input, no two inputs
meet in one output, nothing lands outside OUT.

The work is split without any coordinator: every worker lists the inputs the
same way and takes the files whose output path hashes to its shard (K of N), so
no output is ever written by two workers of one run, and the same file goes to
the same shard whatever else is in the listing. A worker is one long-lived
process: it loads the model once and keeps one device busy. `--workers N` starts
N of them on this machine (one GPU each when there are several GPUs) and starts
a shard again (`--retries`) when its worker dies; a scheduler's array job runs
one `--shard K/N` per task (Slurm arrays, Kubernetes indexed jobs, one per TPU
host; see docs/scale_restore.md).

Resumable and loss-free:
- an output that exists is complete (every output is written to a temporary
  beside it and renamed, or uploaded as one object), so a rerun skips it;
- a worker killed mid-file leaves only its hidden temporary
  (`.<name>.partial-XXXXXXXX`), which the shard's next run removes before it
  redoes the file;
- each worker records every file it restored or failed, with the reason, in
  `OUT/.jaxrestore-archive/` (one JSON-lines file per worker run, never
  rewritten by another); `--status` and the end of a `--workers` run read them
  with the outputs: every input is restored, failed (with its reason) or not
  done yet. A rerun tries the failed files again.

Exit status: 0 when every input is restored, 1 when some failed or are not
done, 2 for a bad option or an unsafe plan (one line, before any model loads),
130/143 when interrupted (the file in progress is abandoned, nothing left of it).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import posixpath
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath

from absl import logging

import jaxrestore
from jaxrestore import files
from jaxrestore import restore as restore_cli
from jaxrestore.media import batch, transcode

NAME = "jaxrestore.archive"
STATE = ".jaxrestore-archive"  # inside OUT: the workers' records
LOCAL = ("file", "local")
# Stores where an upload appears whole or not at all (no temporary name needed).
WHOLE_OBJECTS = ("gs", "gcs", "s3", "s3a", "az", "abfs", "abfss", "memory")
RANDOM = re.compile(r"[a-z0-9_]{8}")  # the random part of tempfile's names
FLUSH_SECONDS = 10.0  # a worker's records are written at least this often
LISTED = 20


def _say(message: str, shard: str = "") -> None:
    print(f"{NAME}{shard}: {files.printable(message)}", file=sys.stderr, flush=True)


# --- Where things are: local paths or fsspec URLs ----------------------------


def is_url(location: str | Path) -> bool:
    text = str(location)
    return "://" in text and not text.startswith(("file://", "local://"))


def _local(location: str | Path) -> str:
    text = str(location)
    for prefix in ("file://", "local://"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _filesystem(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:
        protocol = url.split("://", 1)[0]
        raise ValueError(
            f"{files.shown(url)}: cannot open {protocol}:// ({error}); install its fsspec "
            "driver (gcsfs for gs://, s3fs for s3://)"
        ) from None


def _join(folder: str, relative: str) -> str:
    return (
        posixpath.join(folder.rstrip("/"), relative)
        if is_url(folder)
        else str(Path(folder, relative))
    )


def present(output: str) -> set[str]:
    """The keys (paths relative to OUT) of every file in OUT, in one listing (one
    call to a bucket, not one per file), temporaries and records left out."""
    found: set[str] = set()
    if is_url(output):
        fs, root = _filesystem(output)
        root = root.rstrip("/")
        names = fs.find(root) if fs.exists(root) else []
        for name in names:
            found.add(posixpath.relpath(name, root))
    else:
        for top, _folders, names in os.walk(output):
            for name in names:
                found.add(Path(os.path.relpath(os.path.join(top, name), output)).as_posix())
    return {
        key
        for key in found
        if not key.startswith(STATE + "/") and files.PARTIAL not in posixpath.basename(key)
    }


# --- The plan: every input with its output, the same on every worker ---------


@dataclasses.dataclass(frozen=True)
class Task:
    """One input and its output; `key` (the output relative to OUT) picks its shard."""

    key: str
    source: str
    target: str
    fmt: str  # Pillow's format name, or "VIDEO" (as `media.batch.Job`)


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) of an output: a stable hash of its path in OUT."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def plan(
    inputs: list[str], output: str, fmt: str | None, codec: str
) -> tuple[list[Task], list[tuple[str, str]]]:
    """All tasks (done or not), sorted by key, and the entries skipped with why;
    ValueError (one line) when the plan is unsafe."""
    remote = [item for item in inputs if is_url(item)]
    if remote and len(remote) != len(inputs):
        raise ValueError("give either local inputs or URLs, not both")
    if remote or is_url(output):
        return _plan_urls(inputs, output, fmt, codec), []
    output = _local(output)
    local_inputs = [Path(_local(item)) for item in inputs]
    try:
        # "/" on OUT: always a folder, even for one input file.
        whole = batch.plan(local_inputs, output.rstrip("/") + "/", fmt, codec, "overwrite")
    except batch.PlanError as error:
        raise ValueError(str(error)) from None
    state = os.path.realpath(os.path.join(output, STATE))
    tasks = []
    for job in whole.jobs:
        key = Path(os.path.relpath(job.target, output)).as_posix()
        if os.path.realpath(job.target).startswith(state + os.sep):
            raise ValueError(f"{files.shown(job.source)}: its output would be in {STATE}/")
        tasks.append(Task(key, str(job.source), str(job.target), job.fmt))
    skipped = [(str(path), why) for path, why in whole.skipped]
    return sorted(tasks, key=lambda task: task.key), skipped


def _plan_urls(inputs: list[str], output: str, fmt: str | None, codec: str) -> list[Task]:
    """The plan when the inputs or OUT are URLs: each input folder (a prefix) mirrored
    into OUT, each input file into OUT/, by the rules of `media.batch`."""
    try:
        fmt = batch.parse_format(fmt)
    except batch.PlanError as error:
        raise ValueError(str(error)) from None
    out_key = output.rstrip("/")
    jobs: list[batch.Job] = []
    sources: dict[str, str] = {}
    for item in inputs:
        fs, root = _filesystem(item) if is_url(item) else (None, _local(item))
        if fs is None:
            import fsspec

            fs = fsspec.filesystem("file")
            root = os.path.abspath(root)
        protocol = item.split("://", 1)[0] + "://" if is_url(item) else ""
        root = root.rstrip("/")
        if not fs.exists(root):
            raise ValueError(f"{files.shown(item)}: no such file or folder")
        if fs.isfile(root):
            entries, prefix = [root], posixpath.dirname(root)
        else:
            entries, prefix = sorted(fs.find(root)), root
            if len(inputs) > 1:
                prefix = posixpath.dirname(root)  # each folder into OUT/<its name>/
        for entry in entries:
            name = posixpath.basename(entry)
            relative = PurePosixPath(posixpath.relpath(entry, prefix))
            if name.startswith(".") and files.PARTIAL in name:
                continue
            if relative.parts and relative.parts[0] == STATE:
                continue
            if not batch._is_media(Path(name)):
                continue
            url = protocol + entry if protocol else entry
            if _inside_output(url, out_key):
                continue  # OUT inside an input folder: never read back
            base = Path(relative.parent, relative.stem)
            job = batch._folder_target(Path(relative), base, fmt, codec)
            sources[str(relative)] = url
            jobs.append(job)
    tasks, claimed = [], {}
    for job in batch._disambiguate(jobs):
        key = job.target.as_posix()
        source = sources[str(job.source)]
        if key.casefold() in claimed:
            raise ValueError(
                f"{files.shown(claimed[key.casefold()])} and {files.shown(source)} would both "
                f"be written to {files.shown(_join(output, key))}; restore them separately"
            )
        claimed[key.casefold()] = source
        if source.rstrip("/") == _join(output, key):
            raise ValueError(f"{files.shown(source)}: its output would replace this input")
        tasks.append(Task(key, source, _join(output, key), job.fmt))
    return sorted(tasks, key=lambda task: task.key)


def _inside_output(url: str, out_key: str) -> bool:
    return url == out_key or url.startswith(out_key + "/")


# --- The workers' records ------------------------------------------------------


class Records:
    """What one worker run did, one JSON line per file, in its own file under
    OUT/.jaxrestore-archive/ (written whole at least every FLUSH_SECONDS and at the
    end: a worker killed between two writes loses only the lines since, and those
    files are done again or found done by their outputs)."""

    def __init__(self, output: str, shard: tuple[int, int]):
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:40]
        name = f"shard-{shard[0]}-of-{shard[1]}.{stamp}.{host}.{os.getpid()}.jsonl"
        self.location = _join(_join(output, STATE), name)
        self.lines: list[str] = []
        self.written = time.monotonic()

    def add(self, task: Task, status: str, **details) -> None:
        record = {"key": task.key, "source": task.source, "status": status, "time": time.time()}
        record.update(details)
        self.lines.append(json.dumps(record, ensure_ascii=False))
        if time.monotonic() - self.written > FLUSH_SECONDS:
            self.write()

    def write(self) -> None:
        text = "".join(line + "\n" for line in self.lines)
        with files.critical():
            if is_url(self.location):
                fs, path = _filesystem(self.location)
                fs.pipe(path, text.encode())
            else:
                target = Path(self.location)
                with files.atomic_output(target, overwrite=True) as temporary:
                    temporary.write_text(text, encoding="utf-8")
        self.written = time.monotonic()


def read_records(output: str) -> dict[str, dict]:
    """The last record of each output key, over every worker run so far."""
    folder = _join(output, STATE)
    latest: dict[str, dict] = {}
    if is_url(folder):
        fs, path = _filesystem(folder)
        names = fs.glob(posixpath.join(path, "*.jsonl")) if fs.exists(path) else []
        texts = [fs.cat_file(name).decode("utf-8", "replace") for name in names]
    else:
        names = sorted(Path(folder).glob("*.jsonl")) if os.path.isdir(folder) else []
        texts = [name.read_text("utf-8", "replace") for name in names]
    records = []
    for text in texts:
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a record cut short: the output tells
    for record in sorted(records, key=lambda r: r.get("time", 0)):
        latest[record.get("key", "")] = record
    return latest


@dataclasses.dataclass
class Status:
    restored: list[Task]
    failed: list[tuple[Task, str]]
    pending: list[Task]

    @property
    def complete(self) -> bool:
        return not self.failed and not self.pending


def status_of(tasks: list[Task], output: str) -> Status:
    """Every task restored (its output exists), failed (no output; its last record
    says why) or not done yet."""
    records = read_records(output)
    done = present(output)
    result = Status([], [], [])
    for task in tasks:
        if task.key in done:
            result.restored.append(task)
            continue
        record = records.get(task.key)
        if record is not None and record.get("status") == "failed":
            result.failed.append((task, record.get("reason", "failed")))
        else:
            result.pending.append(task)
    return result


def report(status: Status, total: int, listed: int = LISTED) -> None:
    _say(
        f"{len(status.restored)} of {total} restored, {len(status.failed)} failed, "
        f"{len(status.pending)} not done"
    )
    if status.failed:
        _say(f"{len(status.failed)} file(s) failed:")
        for _task, why in status.failed[:listed]:
            print(f"  {files.printable(why)}", file=sys.stderr)
        if len(status.failed) > listed:
            print(f"  ... and {len(status.failed) - listed} more (--status --all)", file=sys.stderr)
    if status.pending:
        _say(
            f"{len(status.pending)} file(s) not done (run the same command again), e.g. "
            + ", ".join(files.shown(task.source) for task in status.pending[:3])
        )


# --- One worker: the files of one shard ---------------------------------------


def remove_partials(task: Task) -> int:
    """Remove what an earlier, killed run left of this task's output: the hidden
    temporaries (`.<name>.partial-XXXXXXXX<suffix>`) beside it. Only this task's
    shard writes there, so nothing live is touched. Returns how many."""
    if is_url(task.target):
        return 0  # uploads are whole objects or temporaries removed by the store
    target = Path(task.target)
    # Images are written as `.<name>.partial-…`, videos as `.<stem>.partial-…`.
    stem = target.stem if task.fmt == "VIDEO" else target.name
    if len(stem) > 80:
        return 0  # the temporary's name is cut: not ours to tell apart
    prefix, suffix = f".{stem}{files.PARTIAL}", target.suffix[:16]
    removed = 0
    try:
        entries = os.listdir(target.parent)
    except OSError:
        return 0
    for name in entries:
        middle = name[len(prefix) : len(name) - len(suffix)] if suffix else name[len(prefix) :]
        if name.startswith(prefix) and name.endswith(suffix) and RANDOM.fullmatch(middle):
            with files.critical():
                Path(target.parent, name).unlink(missing_ok=True)
            removed += 1
    return removed


def _restore_task(restorer, task: Task, args, encoding, warn) -> object:
    """Restore one task: local files directly; URLs through a local scratch folder
    (downloaded, restored, uploaded as one object)."""
    if not is_url(task.source) and not is_url(task.target):
        job = batch.Job(Path(task.source), Path(task.target), task.fmt)
        return restorer.restore_job(
            job, args.quality, max_pixels=args.max_pixels, encoding=encoding, warn=warn
        )
    with tempfile.TemporaryDirectory(prefix="jaxrestore-archive-") as scratch:
        source = Path(task.source)
        if is_url(task.source):
            fs, path = _filesystem(task.source)
            source = Path(scratch, "in" + PurePosixPath(path).suffix.lower())
            fs.get_file(path, str(source))
        target = Path(task.target) if not is_url(task.target) else None
        local = target or Path(scratch, "out", PurePosixPath(task.key).name)
        job = batch.Job(source, local, task.fmt)
        result = restorer.restore_job(
            job, args.quality, max_pixels=args.max_pixels, encoding=encoding, warn=warn
        )
        if target is None:
            _upload(local, task.target)
        return result


def _upload(local: Path, url: str) -> None:
    fs, path = _filesystem(url)
    if fs.exists(path):
        raise files.OutputExists(f"{files.shown(url)}: exists; not replaced")
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    protocol = url.split("://", 1)[0]
    with files.critical():
        if protocol in WHOLE_OBJECTS:
            fs.put_file(str(local), path)
        else:  # a store where a copy can be seen half done: a temporary, then a move
            partial = posixpath.join(
                parent, f".{posixpath.basename(path)}{files.PARTIAL}{os.urandom(4).hex()}"
            )
            fs.put_file(str(local), partial)
            fs.mv(partial, path)


def run_shard(args, tasks: list[Task], index: int, count: int) -> int:
    """Restore the not yet restored tasks of shard `index` of `count`."""
    from jaxrestore.inference.restorer import Restorer

    shard = f"[{index}/{count}]"
    mine = [task for task in tasks if shard_of(task.key, count) == index]
    done = present(args.output)
    todo = [task for task in mine if task.key not in done]
    _say(
        f"{len(mine)} of {len(tasks)} file(s) in this shard, {len(mine) - len(todo)} "
        f"restored before, {len(todo)} to do",
        shard,
    )
    if not todo:
        return 0
    records = Records(args.output, (index, count))
    tiling_args = (args.tile, args.overlap, args.batch)
    restorer = Restorer.from_pretrained(
        args.checkpoint,
        args.predictor if args.quality == "auto" and args.predictor else None,
        *tiling_args,
        args.dtype,
    )
    encoding = transcode.Encoding(args.codec, args.crf, args.preset)
    failed = 0
    current: list[Task] = []

    try:
        for task in todo:
            files.check_interrupted()
            current[:] = [task]
            warnings: list[str] = []
            left = remove_partials(task)
            if left:
                _say(f"{files.shown(task.target)}: removed {left} partial file(s) of a killed run")
            try:
                result = _restore_task(restorer, task, args, encoding, warnings.append)
            except files.OutputExists:
                records.add(task, "restored", note="found written")
            except Exception as error:  # noqa: BLE001 - one file must not stop the rest
                line = restore_cli._failure(Path(task.source), error)
                failed += 1
                records.add(task, "failed", reason=line)
                _say(line, shard)
            else:
                records.add(task, "restored", warnings=warnings, quality=result.quality)
                if not args.quiet:
                    _say(
                        f"{files.shown(task.source)} -> {files.shown(task.target)}: "
                        f"{result.describe()}, {result.seconds:.1f} s",
                        shard,
                    )
            current.clear()
    except files.Interrupted as stop:
        if current:
            _say(f"interrupted: {files.shown(current[0].source)} abandoned", shard)
        records.write()
        return stop.exit_status
    records.write()
    _say(f"done: {len(todo) - failed} restored, {failed} failed", shard)
    return 1 if failed else 0


# --- Several workers on this machine ------------------------------------------


def _gpus() -> list[str]:
    """The GPUs a worker may be given, one each: CUDA_VISIBLE_DEVICES's list, else
    the ones nvidia-smi sees; none on a machine without."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu for gpu in visible.split(",") if gpu.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def _end_with_parent() -> None:
    """In a worker, before it starts (Linux): SIGTERM when the launcher dies, even by
    SIGKILL, so that no orphaned worker goes on beside the next run's (it abandons
    its file in progress as on any SIGTERM). Elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_command(argv: list[str], index: int, count: int) -> list[str]:
    kept, skip = [], False
    for value in argv:
        if skip:
            skip = False
            continue
        if value in ("--workers", "--retries"):
            skip = True
            continue
        if value.startswith(("--workers=", "--retries=")):
            continue
        kept.append(value)
    return [sys.executable, "-m", NAME, *kept, "--shard", f"{index}/{count}"]


def run_workers(args, argv: list[str], tasks: list[Task]) -> int:
    """Start `args.workers` shard processes, start a dead one again up to
    `args.retries` times, and report what the whole run achieved."""
    count = args.workers
    gpus = _gpus()
    processes: dict[int, subprocess.Popen] = {}
    tries = dict.fromkeys(range(count), 0)

    def start(index: int) -> None:
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
            if count > len(gpus):  # workers share a GPU: none may take it all
                env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        tries[index] += 1
        processes[index] = subprocess.Popen(
            _worker_command(argv, index, count), env=env, preexec_fn=_end_with_parent
        )

    _say(f"{len(tasks)} file(s) over {count} worker(s)" + (f" on GPUs {gpus}" if gpus else ""))
    stopped = None
    try:
        with files.interruptible():
            for index in range(count):
                start(index)
            while processes:
                files.check_interrupted()
                for index, process in list(processes.items()):
                    code = process.poll()
                    if code is None:
                        continue
                    del processes[index]
                    if code in (0, 1):
                        continue
                    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
                    if tries[index] <= args.retries:
                        _say(f"worker {index} {how}; starting shard {index} again")
                        start(index)
                    else:
                        _say(f"worker {index} {how}; its unfinished files are not done")
                time.sleep(0.2)
    except files.Interrupted as stop:
        stopped = stop
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait()
    status = status_of(tasks, args.output)
    report(status, len(tasks))
    if stopped is not None:
        return stopped.exit_status
    return 0 if status.complete else 1


# --- The command ----------------------------------------------------------------


def _shard(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", value.strip())
    if not match or not int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"expected K/N with 0 <= K < N, got {value!r}")
    return int(match[1]), int(match[2])


def parser() -> argparse.ArgumentParser:
    p = restore_cli._Parser(prog=NAME, description=__doc__, formatter_class=restore_cli._Help)
    p.add_argument("inputs", nargs="+", help="folders or files: local paths or fsspec URLs")
    p.add_argument("--version", action="version", version=f"%(prog)s {jaxrestore.__version__}")
    p.add_argument("--output", "-o", required=True, help="the output folder (a path or a URL)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--workers",
        type=restore_cli._positive,
        default=1,
        help="worker processes on this machine (one GPU each when there are several)",
    )
    mode.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="K/N",
        help="run only shard K of N (0-based): one task of an array job",
    )
    mode.add_argument(
        "--status",
        action="store_true",
        help="report what is restored, failed and not done; restore nothing",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="with --workers: times a shard whose worker died is started again",
    )
    p.add_argument("--all", action="store_true", help="with --status: list every failed file")
    restore_cli.add_restore_options(p)
    return p


def _check(args) -> list[Task]:
    """Every option and the plan, before any model loads (ValueError: one line)."""
    if not str(args.output).strip():
        raise ValueError("--output is empty; name a folder")
    if args.retries < 0:
        raise ValueError(f"--retries must be 0 or more, got {args.retries}")
    restore_cli.check_restore_options(args)
    tasks, skipped = plan(args.inputs, args.output, args.format, args.codec)
    if skipped and args.shard is None:
        _say(f"skipped {len(skipped)} entries that are not regular files (links are not followed)")
    if not tasks:
        raise ValueError(f"{', '.join(map(files.shown, args.inputs))}: no images or videos found")
    return tasks


def run(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    if not is_url(args.output):
        args.output = _local(args.output)
    logging.set_verbosity(logging.ERROR)
    try:
        tasks = _check(args)
    except ValueError as error:
        _say(str(error))
        return 2
    if args.status:
        status = status_of(tasks, args.output)
        report(status, len(tasks), len(tasks) if args.all else LISTED)
        return 0 if status.complete else 1
    if args.shard is not None:
        with files.interruptible():
            try:
                return run_shard(args, tasks, *args.shard)
            except files.Interrupted as stop:
                return stop.exit_status
            except (ValueError, FileNotFoundError) as error:
                _say(str(error))
                return 2
    return run_workers(args, argv, tasks)


if __name__ == "__main__":
    sys.exit(run())
