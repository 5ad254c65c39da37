"""WORKDIR/tensorboard/: TensorBoard event files of a run (tensorboardX), process 0 only.

Every metric that goes to metrics.jsonl is also a scalar here, under the same name
and step (`eval/psnr_restored_q10`, `loss`, ...), and each held-out evaluation of a
generator adds a few crops as images (`heldout/NAME/qQ`: JPEG | restored | original).
metrics.jsonl stays the run's record (resume, export and the plots read it); the
events are for watching a run:

    tensorboard --logdir runs/

A resumed run purges the events after its checkpoint's step, which it runs again.

Events are written by the training thread itself (tensorboardX's record writer and
summary protos, not its `SummaryWriter`, whose background thread dies on a write
error and leaves every later event, and the close at the end, blocked on its full
queue). A write error (a full disk, a lost mount) ends the events with one warning;
the run goes on, and its checkpoints and metrics report their own errors.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

EVENTS_DIR = "tensorboard"
FLUSH_SECONDS = 30.0


class EventLog:
    """The run's TensorBoard event file (a no-op on processes other than 0)."""

    def __init__(self, workdir, resume_step: int, enabled: bool):
        self.writer = None
        self.directory = os.path.join(str(workdir), EVENTS_DIR)
        self.last_flush = time.monotonic()
        if not enabled:
            return
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        def start():
            os.makedirs(self.directory, exist_ok=True)
            # The suffix keeps a quick restart within the same second from truncating
            # the earlier file, and sorts files of one host in the order written.
            suffix = f".{time.time_ns()}.{os.getpid()}"
            self.writer = EventsWriter(os.path.join(self.directory, "events"), suffix)
            if resume_step:
                # TensorBoard drops the events at or after this step from earlier files.
                purge = resume_step + 1
                self.writer.write_event(
                    Event(step=purge, wall_time=time.time(), file_version="brain.Event:2")
                )
                self.writer.write_event(
                    Event(
                        step=purge,
                        wall_time=time.time(),
                        session_log=SessionLog(status=SessionLog.START),
                    )
                )

        self._guarded(start, starting=True)

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        from tensorboardX import summary

        def write():
            for name, value in metrics.items():
                self._write(step, summary.scalar(name, float(value)))
            if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
                self._flush()

        self._guarded(write)

    def images(self, step: int, images: dict[str, np.ndarray]) -> None:
        """`images`: tag -> uint8 [H, W, 3]."""
        from tensorboardX import summary

        def write():
            for tag, image in images.items():
                self._write(step, summary.image(tag, image, dataformats="HWC"))
            self._flush()

        self._guarded(write)

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self._guarded(self._close)

    def _write(self, step: int, summary) -> None:
        from tensorboardX.proto.event_pb2 import Event

        self.writer.write_event(Event(wall_time=time.time(), step=step, summary=summary))

    def _flush(self) -> None:
        self.writer.flush()
        self.last_flush = time.monotonic()

    def _close(self) -> None:
        writer, self.writer = self.writer, None
        writer.close()

    def _guarded(self, action, starting: bool = False) -> None:
        """Run `action` unless the events have stopped; a write error stops them, with
        one warning (the file is closed, what it could not take is dropped)."""
        if self.writer is None and not starting:
            return
        try:
            action()
        except OSError as error:
            writer, self.writer = self.writer, None
            if writer is not None:
                try:
                    writer.close()
                except OSError:
                    pass  # the same error again; the file object is closed regardless
            reason = error.strerror or str(error)
            print(
                f"warning: TensorBoard events in {self.directory} stopped: {reason} "
                "(metrics.jsonl and checkpoints are written on their own)",
                file=sys.stderr,
                flush=True,
            )
