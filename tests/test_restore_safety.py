"""The restore command never loses a file: no input written over, no two inputs in
one output, nothing outside --output, no planted temporary followed, only regular
files read from folders, names that cannot forge lines, every option checked
before the model loads, and Ctrl-C / SIGTERM that leave no partial file."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, make_video, run_here
from PIL import Image

from jaxrestore import files
from jaxrestore.inference import loader


def save_jpeg(path: Path, photo: np.ndarray, quality: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(path, quality=quality)
    return path


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry below `folder` (links as links) with a digest of its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[path.relative_to(folder).as_posix()] = f"-> {os.readlink(path)}"
        elif path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[path.relative_to(folder).as_posix()] = digest
    return found


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- data loss ------------------------------------------------------------------------


def test_an_output_that_would_replace_an_input_is_refused(tmp_path, photo, model_dir, capsys):
    same = tmp_path / "same"
    same.mkdir()
    Image.fromarray(photo).save(same / "coffee.png")
    save_jpeg(same / "cat.jpg", photo)
    save_jpeg(tmp_path / "same2" / "a.jpg", photo, 20)
    save_jpeg(tmp_path / "same2" / "b.jpg", photo, 40)
    Image.fromarray(photo).save(tmp_path / "x.png")
    (tmp_path / "linked").mkdir()
    os.link(same / "cat.jpg", tmp_path / "linked" / "cat.png")  # a hard link to an input
    os.symlink(tmp_path / "x.png", tmp_path / "pointer.png")  # a link to an input
    before = snapshot(tmp_path)
    model = ("--checkpoint", model_dir, "--quality", "30")
    cases = [
        ((same / "coffee.png", same / "cat.jpg", "--output", same), same / "coffee.png"),
        (
            (tmp_path / "same2" / "a.jpg", tmp_path / "same2" / "b.jpg", "-o", tmp_path / "same2")
            + ("--format", "jpeg"),
            tmp_path / "same2" / "a.jpg",
        ),
        ((tmp_path / "x.png", "-o", tmp_path / "x.png"), tmp_path / "x.png"),
        ((same / "cat.jpg", "-o", tmp_path / "linked", "--overwrite"), same / "cat.jpg"),
        ((tmp_path / "x.png", "-o", tmp_path / "pointer.png", "--overwrite"), tmp_path / "x.png"),
    ]
    for args, named in cases:
        status, err = run_here(capsys, *args, *model)
        line = one_line(err)
        assert status == 2 and "would replace this input" in line, (args, err)
        assert f"{files.shown(named)}:" in line, (args, line)
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced


def test_two_inputs_never_share_an_output(tmp_path, photo, model_dir, capsys):
    save_jpeg(tmp_path / "x" / "pic.jpg", photo, 20)
    save_jpeg(tmp_path / "y" / "pic.jpg", photo, 40)
    status, err = run_here(
        capsys, tmp_path / "x" / "pic.jpg", tmp_path / "y" / "pic.jpg", "-o", tmp_path / "out"
    )
    line = one_line(err)
    assert status == 2 and "would both be written to" in line
    assert files.shown(tmp_path / "x" / "pic.jpg") in line
    assert files.shown(tmp_path / "y" / "pic.jpg") in line
    assert not (tmp_path / "out").exists()
    # A file's output that would also be another output's folder.
    save_jpeg(tmp_path / "d" / "x.jpg", photo)
    save_jpeg(tmp_path / "d" / "x.png" / "y.jpg", photo)
    status, err = run_here(capsys, tmp_path / "d", "-o", tmp_path / "out")
    assert status == 2 and "would be both the output of" in one_line(err)
    # In one folder, files sharing a stem each keep their own output.
    folder = tmp_path / "shared"
    save_jpeg(folder / "pic.jpg", photo, 20)
    Image.fromarray(photo[::-1]).save(folder / "pic.png")
    out = tmp_path / "out2"
    status, err = run_here(capsys, folder, "-o", out, "--checkpoint", model_dir, "-q", "30")
    assert status == 0 and "restored 2 of 2 image(s)" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["pic.jpg.png", "pic.png.png"]
    with Image.open(out / "pic.jpg.png") as a, Image.open(out / "pic.png.png") as b:
        assert np.abs(np.asarray(a, int) - np.asarray(b, int)).mean() > 10  # two pictures


def test_every_output_lands_inside_output(tmp_path, photo, model_dir, capsys, monkeypatch):
    # `restore .. -o ../../res`, from top/sub: everything lands in res/.
    save_jpeg(tmp_path / "top" / "x" / "p.jpg", photo)
    (tmp_path / "top" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "top" / "sub")
    common = ("--checkpoint", model_dir, "--quality", "30")
    status, err = run_here(capsys, "..", "-o", "../../res", *common)
    assert status == 0, err
    assert snapshot(tmp_path / "res").keys() == {"x/p.png"}
    assert snapshot(tmp_path / "top").keys() == {"x/p.jpg"}
    # `restore sub/.. -o restored`: outputs in restored/ (which is inside the input
    # folder, and so is not read back), the inputs untouched.
    work = tmp_path / "w"
    for name, picture in (("sub/x.png", photo), ("other/y.png", photo[::-1])):
        (work / name).parent.mkdir(parents=True)
        Image.fromarray(picture).save(work / name)
    before = snapshot(work)
    monkeypatch.chdir(work)
    status, err = run_here(capsys, "sub/..", "--output", "restored", *common)
    assert status == 0 and "restored 2 of 2" in err, err
    after = snapshot(work)
    assert {k: v for k, v in after.items() if not k.startswith("restored/")} == before
    assert sorted(k for k in after if k.startswith("restored/")) == [
        "restored/other/y.png",
        "restored/sub/x.png",
    ]
    # A link inside OUTPUT that leads out of it is not written through.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "linked_out").mkdir()
    os.symlink(elsewhere, tmp_path / "linked_out" / "x")
    status, err = run_here(capsys, tmp_path / "top", "-o", tmp_path / "linked_out", *common)
    assert status == 2 and "outside --output" in one_line(err)
    assert not list(elsewhere.iterdir())


def test_the_output_folder_is_never_read_as_input(tmp_path, photo, model_dir, capsys):
    photos = tmp_path / "photos"
    save_jpeg(photos / "a.jpg", photo)
    common = ("--checkpoint", model_dir, "--quality", "30")
    status, err = run_here(capsys, photos, "-o", photos, *common)
    assert status == 2 and "is the input folder" in one_line(err)
    restored = photos / "restored"
    status, err = run_here(capsys, photos, "-o", restored, *common)
    assert status == 0 and "restored 1 of 1" in err, err
    # Again: the outputs are not inputs; what exists is refused, or kept.
    status, err = run_here(capsys, photos, "-o", restored, *common)
    assert status == 2 and "exists" in one_line(err) and "--skip-existing" in err
    status, err = run_here(capsys, photos, "-o", restored, "--skip-existing", *common)
    assert status == 0 and "nothing left to restore" in err, err
    assert snapshot(photos).keys() == {"a.jpg", "restored/a.png"}


def test_existing_outputs_are_refused_kept_or_replaced(tmp_path, photo, model_dir, capsys):
    source = save_jpeg(tmp_path / "in.jpg", photo)
    out = tmp_path / "out.png"
    out.write_bytes(b"the user's own file")
    common = (source, "-o", out, "--checkpoint", model_dir, "--quality", "30")
    status, err = run_here(capsys, *common)
    assert status == 2 and f"{files.shown(out)} exists" in one_line(err)
    assert out.read_bytes() == b"the user's own file"
    status, err = run_here(capsys, *common, "--skip-existing")
    assert status == 0 and out.read_bytes() == b"the user's own file", err
    status, err = run_here(capsys, *common, "--overwrite", "--skip-existing")
    assert status == 2 and "not allowed with" in one_line(err)
    status, err = run_here(capsys, *common, "--overwrite")
    assert status == 0, err
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (photo.shape[1], photo.shape[0])


def test_planted_temporary_names_are_never_followed(tmp_path, photo, model_dir, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "shared"
    out.mkdir()
    source = save_jpeg(tmp_path / "p.jpg", photo)
    clip = tmp_path / "clip.mp4"
    make_video(clip, photo, frames=4, audio=False)
    pid = os.getpid()
    # Links at every name the old scheme could pick for this and the next PIDs.
    for n in range(pid, pid + 20):
        for name in (f".p.png.partial-{n}", f".clip.partial-{n}.mp4", f".study.partial-{n}"):
            os.symlink(victim, out / name)
    common = ("--checkpoint", model_dir, "--quality", "30")
    status, err = run_here(capsys, source, "-o", out / "p.png", *common)
    assert status == 0, err
    status, err = run_here(capsys, clip, "-o", out / "clip.mp4", *common)
    assert status == 0, err
    with files.atomic_folder(out / "study") as building:
        (building / "manifest.json").write_text("{}")
    assert victim.read_text() == "precious"
    for name in ("p.png", "clip.mp4", "study"):
        assert not (out / name).is_symlink()
    assert (out / "study" / "manifest.json").read_text() == "{}"
    with Image.open(out / "p.png") as image:
        assert image.size == (photo.shape[1], photo.shape[0])
    # The names are random and made exclusively: two never coincide.
    names = {files.temporary_in(tmp_path, "p.png").name for _ in range(50)}
    assert len(names) == 50 and all(name.startswith(".p.png.partial-") for name in names)
    # A name near the file system's limit still gets a temporary that fits.
    long = save_jpeg(tmp_path / f"{'x' * 240}.jpg", photo)
    status, err = run_here(capsys, long, "-o", out / f"{'x' * 240}.png", *common)
    assert status == 0, err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost one
def test_signals_wait_for_critical_blocks_and_are_not_lost():
    with pytest.raises(files.Interrupted) as raised:
        with files.interruptible():
            with files.critical():
                os.kill(os.getpid(), signal.SIGTERM)
                done = "the block ran to its end"
    assert raised.value.exit_status == 143 and done

    class SendsOnCollection:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(files.Interrupted) as raised:
        with files.interruptible():
            SendsOnCollection()  # its exception may be lost inside __del__ ...
            files.check_interrupted()  # ... but the loop's check raises it again
    assert raised.value.exit_status == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_folders_give_regular_files_only(tmp_path, photo, model_dir, capsys):
    outside = tmp_path / "outside"
    save_jpeg(outside / "secret.jpg", photo)
    photos = tmp_path / "photos"
    save_jpeg(photos / "a.jpg", photo)
    os.symlink(outside / "secret.jpg", photos / "link.jpg")
    os.symlink(outside, photos / "folder_link")
    os.mkfifo(photos / "fifo.png")  # reading it would hang the batch
    common = ("--checkpoint", model_dir, "--quality", "30")

    def hang(signum, frame):
        raise TimeoutError("the batch hung (reading a FIFO?)")

    handler = signal.signal(signal.SIGALRM, hang)  # a hang fails the test, not the suite
    signal.alarm(120)
    try:
        status, err = run_here(capsys, photos, "-o", tmp_path / "out", *common)
        assert status == 0, err
        assert snapshot(tmp_path / "out").keys() == {"a.png"}
        assert "skipped 3 entries" in err
        for name, why in (("link.jpg", "a link"), ("folder_link", "a link to a folder")):
            assert f"{files.shown(photos / name)}: {why}" in err
        assert f"{files.shown(photos / 'fifo.png')}: not a regular file" in err
        # Named on the command line, a FIFO is refused before anything is read.
        status, err = run_here(capsys, photos / "fifo.png", "-o", tmp_path / "f.png", *common)
        assert status == 2 and "not a regular file" in one_line(err)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, handler)


def test_file_names_cannot_forge_lines(tmp_path, photo, model_dir, capsys):
    folder = tmp_path / "in"
    forged = "jaxrestore.restore: restored 9 of 9 image(s)"
    save_jpeg(folder / f"x\n{forged}\n.jpg", photo)
    (folder / "broken\r.png").write_bytes(b"not a picture")
    status, err = run_here(
        capsys, folder, "-o", tmp_path / "out", "--checkpoint", model_dir, "-q", "30"
    )
    assert status == 1
    lines = err.splitlines()
    assert forged not in lines and "restored 1 of 2 image(s)" in err
    assert all(line.startswith(("jaxrestore.restore: ", "  ")) for line in lines), lines
    assert "\\n" in err and "\\r" in err  # the names, escaped


# -- what a user expects ----------------------------------------------------------------


def test_folder_and_file_outputs(tmp_path, photo, model_dir, capsys):
    from jaxrestore.media import batch

    tree = tmp_path / "tree"
    save_jpeg(tree / "a.jpg", photo)
    save_jpeg(tree / "deep" / "b.jpg", photo)
    cat = save_jpeg(tmp_path / "cat.jpg", photo)

    def targets(inputs, output, fmt=None):
        return [
            j.target.relative_to(tmp_path).as_posix() for j in batch.plan(inputs, output, fmt).jobs
        ]

    # One folder: mirrored straight into OUTPUT, whether it exists or not.
    assert targets([tree], tmp_path / "new") == ["new/a.png", "new/deep/b.png"]
    (tmp_path / "existing").mkdir()
    assert targets([tree], tmp_path / "existing") == ["existing/a.png", "existing/deep/b.png"]
    # Several inputs: each under its own name.
    assert targets([tree, cat], tmp_path / "both") == [
        "both/tree/a.png",
        "both/tree/deep/b.png",
        "both/cat.png",
    ]
    # One file: into an existing folder, or a name ending in "/", as cp does.
    assert targets([cat], tmp_path / "existing") == ["existing/cat.png"]
    assert targets([cat], tmp_path / "existing", "jpeg") == ["existing/cat.jpg"]
    assert targets([cat], f"{tmp_path / 'fresh'}/") == ["fresh/cat.png"]
    assert targets([cat], tmp_path / "named.webp") == ["named.webp"]
    # `.` is named after what it is.
    os.chdir(tree)
    try:
        assert targets([Path("."), cat], tmp_path / "dot") == [
            "dot/tree/a.png",
            "dot/tree/deep/b.png",
            "dot/cat.png",
        ]
    finally:
        os.chdir(ROOT)
    # The one-file-into-a-folder case restores (it used to fail after restoring).
    status, err = run_here(
        capsys, cat, "-o", tmp_path / "existing", "--format", "png", "--checkpoint", model_dir
    )
    assert status == 0 and (tmp_path / "existing" / "cat.png").is_file(), err
    assert "QF 30 (from its quantisation tables)" in err


BAD_OPTIONS = {
    "quality 0": (("--quality", "0"), "--quality"),
    "quality 150": (("--quality", "150"), "--quality"),
    "quality abc": (("--quality", "abc"), "'abc'"),
    "format gif": (("--format", "gif"), "--format gif"),
    "format vs extension": (("--format", "jpeg"), "disagrees with"),
    "predictor": (("--predictor", "nosuchdir"), "--predictor nosuchdir"),
    "checkpoint case": (("--checkpoint", "SSIM"), "did you mean 'ssim'"),
    "tile": (("--tile", "100"), "--tile must be a positive multiple of 64"),
    "overlap": (("--overlap", "12"), "--overlap must be a multiple of 8"),
    "batch": (("--batch", "0"), "--batch"),
    "crf": (("--crf", "60"), "--crf must be in 0..51"),
    "preset": (("--preset", "fastest"), "'fastest'"),
    "max pixels": (("--max-pixels", "0"), "--max-pixels"),
    "dtype": (("--dtype", "float16"), "'float16'"),
    "codec": (("--codec", "vp9"), "'vp9'"),
}


def test_every_option_is_checked_before_the_model_loads(tmp_path, photo, capsys, monkeypatch):
    from jaxrestore.inference.restorer import Tiling
    from jaxrestore.media import batch

    source = save_jpeg(tmp_path / "in.jpg", photo)
    clip = tmp_path / "clip.mp4"
    make_video(clip, photo, frames=2, audio=False)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loader, "load", no_model)
    for what, (option, message) in BAD_OPTIONS.items():
        status, err = run_here(capsys, source, "-o", tmp_path / "out.png", *option)
        assert status == 2 and message in one_line(err), (what, err)
    status, err = run_here(capsys, source, "-o", "")
    assert status == 2 and "--output is empty" in one_line(err)
    status, err = run_here(capsys, clip, "-o", tmp_path / "x.mp4", "--codec", "ffv1")
    assert status == 2 and "--codec ffv1 is written to .mkv" in one_line(err)
    assert not list(tmp_path.glob("out*")) and not (tmp_path / "x.mp4").exists()
    # Aliases and derived defaults that used to fail.
    assert batch.parse_format("jpg") == batch.parse_format(".JPEG") == "JPEG"
    assert Tiling(64).overlap == 32 and Tiling(128).overlap == 64 and Tiling().overlap == 128


def test_small_tile_needs_no_overlap_option(tmp_path, photo, model_dir, capsys):
    source = save_jpeg(tmp_path / "in.jpg", photo)
    status, err = run_here(
        capsys, source, "-o", tmp_path / "out.png", "--tile", "64", "--checkpoint", model_dir
    )
    assert status == 0, err


def test_help_shows_defaults_and_exits_zero(capsys):
    from jaxrestore import restore

    with pytest.raises(SystemExit) as exited:
        restore.run(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 1024)", "(default: auto)", "(default: ssim)", "(default: 17.0)"):
        assert default in text, default
    main = subprocess.run(
        [sys.executable, "-m", "jaxrestore.main", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert main.returncode == 0 and "--config" in main.stdout, main.stderr[-500:]


# -- signals ------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_batch_abandons_one_file_and_keeps_the_rest(tmp_path, photo, signum):
    rng = np.random.default_rng(int(signum))
    folder = tmp_path / "in"
    for i in range(5):  # each about a second of work on 2 cores, in 4 tiles
        noisy = np.clip(
            np.tile(photo, (2, 2, 1))[:512, :512] + rng.normal(0, 8, (512, 512, 3)), 0, 255
        )
        save_jpeg(folder / f"{i}.jpg", noisy.astype(np.uint8), 25)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "jaxrestore.restore", folder, "-o", out, "--tile", "256"]
    process = subprocess.Popen(list(map(str, command)), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline()  # the first file's line: the second is under way
    assert " -> " in first, first
    time.sleep(0.2)
    process.send_signal(signum)
    rest = process.stderr.read()
    status = process.wait(timeout=120)
    err = first + rest
    assert status == 128 + signum, err
    assert "Traceback" not in err
    assert f"interrupted ({signal.Signals(signum).name}) while restoring" in err, err
    assert "abandoned, nothing written for it" in err
    assert "files not restored" in err and "--skip-existing" in err
    written = sorted(p.name for p in out.iterdir())
    assert not [name for name in written if files.PARTIAL in name], written
    assert 1 <= len(written) < 5
    for name in written:  # the finished ones, whole
        with Image.open(out / name) as image:
            image.load()
            assert image.size == (512, 512)
    restored = err.count(" -> ")
    assert restored == len(written), err
    if signum == signal.SIGTERM:  # the same command finishes the batch
        finish = subprocess.run(
            list(map(str, [*command, "--skip-existing"])),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert finish.returncode == 0, finish.stderr
        assert f"kept {len(written)} existing output(s)" in finish.stderr
        assert sorted(p.name for p in out.iterdir()) == [f"{i}.png" for i in range(5)]


# -- the Python API -------------------------------------------------------------------


def test_python_api_restores_as_the_command_does(tmp_path, photo, capsys):
    import jaxrestore
    from jaxrestore import Restorer

    source = save_jpeg(tmp_path / "in.jpg", photo[:200, :280], 20)
    status, err = run_here(capsys, source, "-o", tmp_path / "command.png", "--tile", "128")
    assert status == 0 and "QF 20 (from its quantisation tables)" in err, err

    restorer = Restorer.from_pretrained("ssim", tile=128)
    assert restorer.tiling.overlap == 64 and restorer.estimator is not None
    result = restorer.restore_file(source, tmp_path / "api.png")
    assert result.quality == 20.0 and result.describe() == "QF 20 (from its quantisation tables)"
    command = np.asarray(Image.open(tmp_path / "command.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "api.png")), command)
    pixels = np.asarray(Image.open(source))
    np.testing.assert_array_equal(restorer.restore(pixels, quality=20), command)
    np.testing.assert_array_equal(restorer.restore(pixels, "auto", path=source), command)
    # Without a file, 'auto' asks the predictor; layouts come back as they went in.
    estimated = restorer.choose_quality("auto", pixels)
    assert estimated.method == "network" and abs(estimated.quality - 20) < 10
    gray = restorer.restore(pixels[..., 0], 20)
    assert gray.shape == pixels.shape[:2] and gray.dtype == np.uint8
    alpha = np.full(pixels.shape[:2] + (1,), 77, np.uint8)
    rgba = restorer.restore(np.concatenate([pixels, alpha], -1), 20)
    assert rgba.shape == pixels.shape[:2] + (4,) and (rgba[..., 3] == 77).all()
    # The same safety as the command.
    with pytest.raises(ValueError, match="exists; --overwrite replaces"):
        restorer.restore_file(source, tmp_path / "api.png")
    with pytest.raises(ValueError, match="would replace this input"):
        restorer.restore_file(source, source, overwrite=True)
    again = restorer.restore_file(source, tmp_path / "api.png", overwrite=True)
    assert again.target == tmp_path / "api.png"
    with pytest.raises(ValueError, match="not a file"):
        restorer.restore_file(tmp_path, tmp_path / "folder_out")
    with pytest.raises(ValueError, match="quality must be"):
        restorer.restore(pixels, True)
    with pytest.raises(FileNotFoundError, match="neither a training workdir"):
        Restorer.from_pretrained(tmp_path / "nothing")
    assert "Restorer" in jaxrestore.__all__


def test_estimate_quality_uses_the_packaged_predictor(tmp_path, photo, capsys):
    import json

    from jaxrestore import estimate_quality
    from jaxrestore.data import degrade

    png = tmp_path / "b.png"
    Image.fromarray(degrade.jpeg_roundtrip(photo, 25)).save(png)
    assert estimate_quality.run([str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "network" and abs(result["quality"] - 25) < 10
