"""The restore command on images: tiling, compilations, memory, formats, bad input."""

import functools
import json
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from helpers import ROOT, assert_each_refused, bad_inputs, run_cli, run_here
from PIL import Image


def test_restore_a_jpeg_file_keeps_orientation_icc_and_exif(tmp_path, photo, model_dir, capsys):
    source = tmp_path / "cat.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "jaxrestore-test-camera"
    icc = b"\0" * 128  # Pillow stores the profile bytes as given
    Image.fromarray(photo).save(source, quality=25, exif=exif.tobytes(), icc_profile=icc)
    out = tmp_path / "out" / "cat.png"
    status, err = run_here(
        capsys, source, "--output", out, "--checkpoint", model_dir, "--predictor", ""
    )
    assert status == 0, err
    assert "restored 1 of 1" in err
    with Image.open(out) as restored:
        assert restored.size == (photo.shape[0], photo.shape[1])  # upright: turned 90°
        assert restored.info.get("icc_profile") == icc
        kept = restored.getexif()
        assert kept.get(0x010F) == "jaxrestore-test-camera" and 0x0112 not in kept
    assert [p.name for p in out.parent.iterdir()] == ["cat.png"]  # no temporary left


def test_grayscale_stays_gray_and_alpha_is_untouched(tmp_path, photo, model_dir, capsys):
    gray = tmp_path / "in" / "gray.png"
    gray.parent.mkdir()
    Image.fromarray(photo[..., 1]).save(gray)
    rgba = tmp_path / "in" / "sub" / "rgba.png"
    rgba.parent.mkdir()
    alpha = (np.arange(photo.shape[1])[None, :] % 256).repeat(photo.shape[0], 0).astype(np.uint8)
    Image.fromarray(np.dstack([photo, alpha])).save(rgba)
    out = tmp_path / "out"
    status, err = run_here(
        capsys, gray.parent, "--output", out, "--checkpoint", model_dir, "--quality", "30"
    )
    assert status == 0, err
    with Image.open(out / "gray.png") as restored:
        assert restored.mode == "L" and restored.size == (photo.shape[1], photo.shape[0])
    with Image.open(out / "sub" / "rgba.png") as restored:
        assert restored.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(restored)[..., 3], alpha)


def test_bad_inputs_fail_with_one_line_naming_the_file_and_leave_no_output(
    tmp_path, photo, model_dir, capsys
):
    folder = tmp_path / "bad"
    folder.mkdir()
    assert_each_refused(capsys, bad_inputs(folder, photo), tmp_path / "out", ".png", model_dir)
    status, err = run_here(capsys, tmp_path / "missing.jpg", "--output", tmp_path / "x.png")
    assert status == 2 and "missing.jpg': no such file" in err
    status, err = run_here(capsys, folder / "tiny.png", "--output", tmp_path / "x.gif")
    assert status == 2 and "x.gif" in err


def test_24_megapixels_restore_in_bounded_memory(tmp_path, model_dir):
    rng = np.random.default_rng(0)
    # A 6000x4000 picture: smooth gradients plus texture, saved as JPEG.
    y, x = np.mgrid[0:4000, 0:6000]
    base = np.stack([(x // 24) % 256, (y // 16) % 256, ((x + y) // 40) % 256], -1)
    noise = rng.integers(0, 24, size=(4000, 6000, 1))
    big = tmp_path / "big.jpg"
    Image.fromarray((base + noise).clip(0, 255).astype(np.uint8)).save(big, quality=40)
    del base, noise, y, x
    out = tmp_path / "big.bmp"
    # A fresh process that reports its own peak resident set when done: VmHWM of
    # /proc/self/status (getrusage's ru_maxrss would also count the pytest process's
    # pages the child held between fork and exec).
    script = (
        "import sys\n"
        "from jaxrestore import restore\n"
        "status = restore.run(sys.argv[1:])\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print('peak_kib', hwm.split()[1], file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    command = [sys.executable, "-c", script, str(big), "--output", str(out)]
    command += ["--checkpoint", str(model_dir)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(out) as restored:
        assert restored.size == (6000, 4000)
    peak_kib = int(result.stderr.split("peak_kib")[-1].split()[0])
    assert peak_kib < 4 * 1024 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"


def damaged_exports(model_dir: Path, folder: Path) -> dict[Path, str]:
    """Copies of the export, each damaged one way, with the message each must get."""
    import shutil

    rng = np.random.default_rng(0)

    def noise(file: Path) -> None:
        file.write_bytes(rng.integers(0, 256, max(file.stat().st_size, 16), np.uint8).tobytes())

    def halve(file: Path) -> None:
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])

    def resize(export: Path) -> None:
        info = json.loads((export / "model.json").read_text())
        info["model"]["channels"] = 16  # the weights were saved for 8
        (export / "model.json").write_text(json.dumps(info))

    def data_files(export: Path) -> list[Path]:
        return sorted(p for p in (export / "params").rglob("*") if p.parent.name == "d")

    damage = {
        "resized": (resize, "the saved weights do not match its model config (channels=16"),
        "stripped": (
            lambda e: shutil.rmtree(e / "params"),
            "model.json but no params/ beside it",
        ),
        "json_noise": (lambda e: noise(e / "model.json"), "model.json is not an export's"),
        "json_list": (lambda e: (e / "model.json").write_text("[]"), "model.json is not an"),
        "json_no_model_keys": (
            lambda e: (e / "model.json").write_text('{"stage": "ssim", "model": {}}'),
            "its model config does not build a network (AttributeError",
        ),
        "params_empty": (
            lambda e: [shutil.rmtree(e / "params"), (e / "params").mkdir()],
            "cannot read params/ (FileNotFoundError",
        ),
        "metadata_halved": (lambda e: halve(e / "params" / "_METADATA"), "cannot read params/"),
        "manifest_noise": (
            lambda e: noise(e / "params" / "manifest.ocdbt"),
            "cannot read params/",
        ),
        "data_noise": (lambda e: [noise(f) for f in data_files(e)], "cannot read params/"),
        "data_halved": (lambda e: [halve(f) for f in data_files(e)], "cannot read params/"),
        "data_deleted": (lambda e: [f.unlink() for f in data_files(e)], "cannot read params/"),
    }
    # Refused before anything loads (the --checkpoint option is checked first).
    cases = {folder / "absent": "neither a packaged model (ssim, gan) nor an existing"}
    for name, (spoil, message) in damage.items():
        export = folder / name
        shutil.copytree(model_dir, export)
        spoil(export)
        cases[export] = message
    return cases


def test_damaged_exports_get_one_clear_line(tmp_path, model_dir, capsys):
    photo_file = tmp_path / "in.png"
    Image.new("RGB", (64, 48), (90, 120, 150)).save(photo_file)
    for checkpoint, message in damaged_exports(model_dir, tmp_path / "exports").items():
        out = tmp_path / "out.png"
        status, err = run_here(capsys, photo_file, "-o", out, "--checkpoint", checkpoint)
        assert status == 2 and err.count("\n") == 1, (checkpoint.name, err)
        assert err.startswith("jaxrestore.restore: ") and f"{checkpoint}: {message}" in err, err
        assert not out.exists()


def test_packaged_generators_by_name(tmp_path, photo):
    """`--checkpoint ssim` (default) gains PSNR over a QF 10 JPEG; `--checkpoint gan`
    stays above the JPEG's PSNR and is perceptually much closer (LPIPS)."""
    from jaxrestore import metrics
    from jaxrestore.models import perceptual

    measures = (("psnr", functools.partial(metrics.psnr, max_val=1.0)), ("lpips", perceptual.lpips))
    source = tmp_path / "cat.jpg"
    Image.fromarray(photo).save(source, quality=10)
    jpeg = np.asarray(Image.open(source).convert("RGB"))
    scores = {}
    for name in ("ssim", "gan"):
        out = tmp_path / f"{name}.png"
        done = run_cli(source, "--output", out, "--checkpoint", name)
        assert done.returncode == 0, done.stderr
        restored = np.asarray(Image.open(out))
        scores[name] = {
            key: float(fn(jnp.asarray(restored[None]) / 255.0, jnp.asarray(photo[None]) / 255.0)[0])
            for key, fn in measures
        }
    base = {
        key: float(fn(jnp.asarray(jpeg[None]) / 255.0, jnp.asarray(photo[None]) / 255.0)[0])
        for key, fn in measures
    }
    assert scores["ssim"]["psnr"] > base["psnr"] + 0.5, (scores, base)
    assert scores["gan"]["psnr"] > base["psnr"], (scores, base)
    assert scores["gan"]["lpips"] < 0.8 * base["lpips"], (scores, base)
    assert scores["gan"]["lpips"] < scores["ssim"]["lpips"], (scores, base)
