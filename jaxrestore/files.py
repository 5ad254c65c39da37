"""Writing a user's files safely: race-free temporaries, no-clobber renames, and
signals that never leave half a file behind.

    with files.atomic_output(Path("out/photo.png")) as temporary:
        image.save(temporary, "PNG")

`atomic_output` creates the temporary in the target's own folder with
`tempfile.mkstemp` (a random name, created exclusively: a link planted there by
someone else is never followed), hands it to the writer, and on success renames
it onto the target in one step; on any exception, Ctrl-C or SIGTERM included,
the temporary is removed and the target is untouched. Without `overwrite` the
rename is a hard link (which fails rather than replace a file that appeared in
the meantime), so an existing file is never replaced unasked.

`interruptible()` turns SIGINT and SIGTERM into `Interrupted` (exit status
128 + the signal), raised at the next safe point: never inside the few lines
that rename or remove a temporary (`critical()`), so a signal cannot strand one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

PARTIAL = ".partial-"  # in every temporary's name: `.{target name}.partial-{random}`


class OutputExists(FileExistsError):
    """The target exists and `overwrite` was not given; the message names it."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: a BaseException like KeyboardInterrupt, so that the
    `except Exception` of a per-file loop does not swallow it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


_state = threading.local()  # `depth`: critical blocks the thread is in
_signal: dict[str, int | None] = {"pending": None, "received": None}
_finished: list[Path] = []  # the last target `finish` completed (see `last_finished`)


def _critical_depth() -> int:
    return getattr(_state, "depth", 0)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """A block a signal must not cut short: `interruptible` raises after it."""
    _state.depth = _critical_depth() + 1
    try:
        yield
    finally:
        _state.depth -= 1
        pending = _signal["pending"]
        if _state.depth == 0 and pending is not None and _in_main_thread():
            _signal["pending"] = None
            raise Interrupted(pending)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def check_interrupted() -> None:
    """Raise `Interrupted` if a signal came and its exception was lost (raised inside
    a finalizer or a garbage-collector callback, where Python only prints it): long
    loops call this between their steps."""
    received = _signal["received"]
    if received is not None and _in_main_thread() and not _critical_depth():
        raise Interrupted(received)


@contextlib.contextmanager
def interruptible(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Within the block, the signals raise `Interrupted` in the main thread (after any
    `critical()` block in progress); `check_interrupted` raises it again where it was
    lost. Outside the main thread it does nothing (Python delivers signals only
    there). The previous handlers are put back on exit."""
    if not _in_main_thread():
        yield
        return

    def handler(signum, frame):
        _signal["received"] = signum
        if _critical_depth():
            _signal["pending"] = signum
            return
        raise Interrupted(signum)

    previous = {number: signal.signal(number, handler) for number in signals}
    _signal["pending"] = _signal["received"] = None
    _finished.clear()
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
        _signal["pending"] = _signal["received"] = None


def last_finished() -> Path | None:
    """The target `finish` last completed: the file a signal raised just after its
    rename (from the end of the critical block) belongs to is whole, not abandoned."""
    return _finished[-1] if _finished else None


def temporary_in(folder: Path, name: str, suffix: str = "") -> Path:
    """A new, empty file (mode 0600 until `finish`) with an unpredictable name in
    `folder`, created exclusively. Long names are cut so the temporary's fits."""
    descriptor, path = tempfile.mkstemp(
        dir=folder, prefix=f".{name[:80]}{PARTIAL}", suffix=suffix[:16]
    )
    os.close(descriptor)
    return Path(path)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import, before any thread could create a file


def _permissions(path: Path) -> None:
    """What a new file of the user's gets (0666 less the umask), not mkstemp's 0600."""
    os.chmod(path, 0o666 & ~_UMASK)


def finish(temporary: Path, target: Path, overwrite: bool) -> None:
    """`temporary` becomes `target` in one step; without `overwrite` an existing
    target (a file, a link or anything else) is never replaced (OutputExists)."""
    with critical():
        _permissions(temporary)
        if overwrite:
            os.replace(temporary, target)
        else:
            _rename_no_clobber(temporary, target)
        _finished[:] = [target]


def _exists(target: Path) -> OutputExists:
    return OutputExists(f"{shown(target)}: exists; not replaced (--overwrite replaces)")


def _rename_no_clobber(temporary: Path, target: Path) -> None:
    try:
        os.link(temporary, target, follow_symlinks=False)
    except FileExistsError:
        raise _exists(target) from None
    except OSError as error:
        no_links = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS)
        if error.errno not in no_links:
            raise
        # A file system without hard links: the check and the rename are two steps.
        if os.path.lexists(target):
            raise _exists(target) from None
        os.replace(temporary, target)
        return
    os.unlink(temporary)


@contextlib.contextmanager
def atomic_output(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """A temporary file beside `target` to write; it becomes `target` when the block
    ends normally, and is removed whatever else happens (see the module docstring).
    The target's folder is created when missing."""
    target = Path(target)
    if not overwrite and os.path.lexists(target):
        raise _exists(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = None
    try:
        with critical():  # created and remembered, or neither
            temporary = temporary_in(target.parent, target.name, target.suffix)
        yield temporary
        finish(temporary, target, overwrite)
    finally:
        with critical():
            if temporary is not None:
                temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """A new temporary folder beside `target` to fill; renamed to `target` (which must
    not exist) when the block ends normally, removed whatever else happens."""
    import shutil

    target = Path(target)
    if os.path.lexists(target):
        raise OutputExists(f"{shown(target)}: already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = None
    try:
        with critical():
            temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{PARTIAL}"))
        yield temporary
        with critical():
            _permissions_folder(temporary)
            if os.path.lexists(target):  # rename(2) would replace an empty folder
                raise OutputExists(f"{shown(target)}: already exists")
            os.rename(temporary, target)
    finally:
        with critical():
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)


def _permissions_folder(path: Path) -> None:
    os.chmod(path, 0o777 & ~_UMASK)


def is_regular(path: Path) -> bool:
    """A regular file, links followed (not a FIFO, device, socket or folder)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def shown(path: str | Path) -> str:
    """A file name as printed: quoted, with newlines and other control characters
    escaped, so that no name can forge or break a line of output."""
    return repr(str(path))


def printable(text: str) -> str:
    """`text` with control characters escaped: one line, whatever it quotes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
