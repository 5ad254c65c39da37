"""What several test modules share: the project root, small real models, clips,
the restore command run in or out of process, and bad image files."""

import fractions
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import av
import numpy as np
from PIL import Image

from jaxrestore import restore

ROOT = Path(__file__).resolve().parents[1]
# The hand-made hostile files (tests/bad_inputs/README.md says what each is).
CORPUS = ROOT / "tests" / "bad_inputs"


NTSC = fractions.Fraction(30000, 1001)


def make_video(
    path: Path,
    photo: np.ndarray,
    frames: int = 10,
    size: tuple[int, int] = (96, 64),
    rate: fractions.Fraction = NTSC,
    audio: bool = True,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: list[int] | None = None,
) -> None:
    """A clip panning over the photo (H.264 at CRF 35 by default; the pan wraps round
    for long clips), with a 440 Hz AAC tone as long as the video; `pts` (in 1/1000 s)
    makes the frame rate variable."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "35", "preset": "veryfast"}
        if pts is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        if audio:
            sound = out.add_stream("aac", rate=48000)
            sound.layout = "stereo"
        for i in range(frames):
            top = i * 3 % (photo.shape[0] - height + 1)
            left = i * 5 % (photo.shape[1] - width + 1)
            crop = np.ascontiguousarray(photo[top : top + height, left : left + width])
            frame = av.VideoFrame.from_ndarray(crop, format="rgb24").reformat(format=pix_fmt)
            if pts is not None:
                frame.pts, frame.time_base = pts[i], fractions.Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if audio:
            samples = int(48000 * frames / rate)
            tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)
            tone = np.stack([tone, tone]).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = np.ascontiguousarray(tone[:, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = 48000, start
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))


def run_cli(*args):
    """The command in a fresh process (for its exit status and memory)."""
    command = [sys.executable, "-m", "jaxrestore.restore", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def run_here(capsys, *args) -> tuple[int, str]:
    """The command in this process: (exit status, stderr); a usage error's exit from
    argparse is returned as its status."""
    try:
        status = restore.run([str(a) for a in args])
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err


def bad_inputs(folder: Path, photo: np.ndarray) -> dict[str, Path]:
    files = {}
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=30)
    files["truncated"] = folder / "truncated.jpg"
    files["truncated"].write_bytes(buffer.getvalue()[:2000])
    files["corrupt"] = folder / "corrupt.png"
    files["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    files["not an image"] = folder / "notes.jpg"
    files["not an image"].write_text("these are words, not pixels\n")
    files["tiny"] = folder / "tiny.png"
    Image.fromarray(photo[:4, :4]).save(files["tiny"])
    files["16-bit"] = folder / "deep.png"
    Image.fromarray(photo[..., 0].astype(np.uint16) * 257).save(files["16-bit"])
    files["empty"] = folder / "empty.webp"
    files["empty"].write_bytes(b"")
    # A PNG header claiming 60000x60000 pixels (3.6 gigapixels), and no data.
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    files["huge"] = folder / "huge.png"
    files["huge"].write_bytes(
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )
    return files


def assert_each_refused(capsys, files: dict[str, Path], out: Path, suffix: str, model) -> None:
    """Each file: a non-zero exit, one stderr line naming it, no output or temporary."""
    for what, path in files.items():
        target = out / f"{path.stem}{suffix}"
        status, err = run_here(
            capsys, path, "--output", target, "--checkpoint", model, "--quality", "30"
        )
        assert status != 0, what
        errors = [line for line in err.splitlines() if str(path) in line]
        assert len(errors) == 1, (what, err)
        assert not target.exists() and not list(out.glob(".*partial*")), what


MODEL = {"channels": 8, "num_blocks": 2, "residual_scale": 1.0, "dtype": "float32"}


def small_generator():
    """The real generator, conditioned, with every weight random (its output layer
    too, which training would otherwise have to move away from zero)."""
    import jax
    import numpy as np

    from jaxrestore.models import generator as generator_lib

    model = generator_lib.Generator(channels=8, num_blocks=2, conditioned=True)
    params = model.init(jax.random.key(1), *generator_lib.example_inputs(32))
    rng = np.random.default_rng(2)
    params = jax.tree.map(lambda x: 0.1 * rng.standard_normal(x.shape, np.float32), params)
    return model, params["params"]


def restore_run(workdir, config):
    """(state, step, loop counters) of WORKDIR's newest readable checkpoint, restored as
    the train loop does, onto the mesh `config.mesh` asks for."""
    from jaxrestore.data import pipeline
    from jaxrestore.training import checkpoint, loop, sharding

    abstract, _ = loop.build(config, sharding.make_mesh(config.mesh))
    manager = checkpoint.make_manager(workdir, config)
    data_iterator = iter(pipeline.make_train_dataset(config))
    try:
        return checkpoint.restore_latest(manager, abstract, data_iterator, config)
    finally:
        manager.close()
