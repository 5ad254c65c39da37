"""WORKDIR/tensorboard/: TensorBoard event files of a run (tensorboardX), process 0 only.

Every metric that goes to metrics.jsonl is also a scalar here, under the same name
and step (`eval/psnr_restored_q10`, `loss`, ...), and each held-out evaluation of a
generator adds a few crops as images (`heldout/NAME/qQ`: JPEG | restored | original).
metrics.jsonl stays the run's record (resume, export and the plots read it); the
events are for watching a run:

    tensorboard --logdir runs/

A resumed run purges the events after its checkpoint's step, which it runs again.
"""

from __future__ import annotations

import numpy as np

EVENTS_DIR = "tensorboard"


class EventLog:
    """The run's TensorBoard writer (a no-op on processes other than 0)."""

    def __init__(self, workdir, resume_step: int, enabled: bool):
        self.writer = None
        if enabled:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(
                str(workdir / EVENTS_DIR),
                purge_step=resume_step + 1 if resume_step else None,
                flush_secs=30,
            )

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        for name, value in metrics.items():
            self.writer.add_scalar(name, float(value), step)

    def images(self, step: int, images: dict[str, np.ndarray]) -> None:
        """`images`: tag -> uint8 [H, W, 3]."""
        if self.writer is None:
            return
        for tag, image in images.items():
            self.writer.add_image(tag, image, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        """Flush and close; on a full disk (or another write error) the events left are
        dropped: the run's own error says what could not be written."""
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        try:
            writer.close()
        except OSError:
            # tensorboardX would try the same flush again at exit and print its
            # traceback after the run's last line; mark its file writer closed.
            file_writer = getattr(writer, "event_writer", None)
            if file_writer is not None and hasattr(file_writer, "_closed"):
                file_writer._closed = True
