"""Long jobs in constant memory: a 2,000-frame video through the restore path."""

import json
import subprocess
import sys

from helpers import ROOT, make_video

FRAMES = 2000
WARM_UP = 200  # frames: compiled, thread pools and codec buffers in place
MB = 1_000_000

# A fresh process (pytest's own memory stays out of it) restoring the video as the
# restore command does, with a progress object that samples the resident set.
SCRIPT = """
import functools, json, sys
from pathlib import Path

import psutil

from jaxrestore import inference
from jaxrestore.media import transcode, video

source, target, model = map(Path, sys.argv[1:4])
tiled = inference.Restorer(model, tiling=inference.Tiling(batch=8))
process = psutil.Process()


class Sampler:
    total = 0

    def __init__(self):
        self.done, self.samples = 0, []

    def refresh(self):
        pass

    def update(self, count):
        before, self.done = self.done, self.done + count
        if self.done // 100 > before // 100:  # about every 100 frames
            self.samples.append((self.done, process.memory_info().rss))


sampler = Sampler()
frames = transcode.restore_video(
    source,
    target,
    functools.partial(tiled.restore_frames, quality=40.0),
    transcode.Encoding(preset="veryfast"),
    8,
    sampler,
)
print(json.dumps({"frames": frames, "samples": sampler.samples}))
"""


def test_thousands_of_frames_in_flat_memory(tmp_path, photo, model_dir):
    source = tmp_path / "long.mp4"
    make_video(source, photo, frames=FRAMES, size=(64, 48))  # H.264 + AAC, 67 s
    target = tmp_path / "long_restored.mp4"
    command = [sys.executable, "-c", SCRIPT, str(source), str(target), str(model_dir)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["frames"] == FRAMES
    samples = report["samples"]
    assert len(samples) >= FRAMES // 100 - 1
    warm = next(rss for frames, rss in samples if frames >= WARM_UP)
    later = [rss for frames, rss in samples if frames >= WARM_UP]
    growth = max(later) - warm
    print(f"RSS {warm / MB:.0f} MB after {WARM_UP} frames, {later[-1] / MB:.0f} MB at the end")
    assert growth <= 50 * MB, [(f, round(r / MB)) for f, r in samples]
