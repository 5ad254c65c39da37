"""The TensorBoard writer's thread failing on a full disk prints nothing into the
run's output; other threads' failures are still reported."""

from __future__ import annotations

import errno
import threading

from jaxrestore.training import events


def _fail_in(module: str) -> None:
    class Writer(threading.Thread):
        def run(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    Writer.__module__ = module
    thread = Writer()
    thread.start()
    thread.join()


def test_event_writer_thread_fails_quietly(tmp_path, monkeypatch):
    reported = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_value))
    log = events.EventLog(tmp_path, 0, enabled=True)
    try:
        _fail_in("tensorboardX.event_file_writer")
        assert reported == []
        _fail_in("jaxrestore.somewhere")
        assert len(reported) == 1 and reported[0].errno == errno.ENOSPC
        events.EventLog(tmp_path / "again", 0, enabled=True).close()  # one hook, not two
        _fail_in("jaxrestore.somewhere")
        assert len(reported) == 2
    finally:
        log.close()
