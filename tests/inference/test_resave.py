"""Re-saved JPEGs: an earlier, heavier compression on a shifted grid, or made before
a resize, is seen through the last save's tables, chosen by `auto`, reported by
estimate_quality, and measured by the re-save benchmark."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxrestore import estimate_quality
from jaxrestore.data import degrade, sources
from jaxrestore.evaluation import resave
from jaxrestore.inference import quality
from jaxrestore.inference.restorer import FileResult


def saved_twice(photo, first, second, shift=(3, 5), scale=1.0, kernel=Image.BICUBIC):
    once = degrade.jpeg_roundtrip(photo, first)[shift[0] :, shift[1] :]
    if scale != 1.0:
        size = (round(once.shape[1] * scale), round(once.shape[0] * scale))
        once = np.asarray(Image.fromarray(once).resize(size, kernel))
    return once if second is None else degrade.jpeg_roundtrip(once, second)


@pytest.fixture(scope="module")
def photos():
    folder = sources.embedded_dir()
    return [
        np.asarray(Image.open(folder / name).convert("RGB"))
        for name in ("chelsea.png", "coffee.png")
    ]


def test_an_earlier_compression_is_found_on_its_grid(photos):
    for photo in photos:
        for first, second in ((10, 30), (10, 90), (30, 90)):
            found = quality.earlier_compression(saved_twice(photo, first, second))
            assert found is not None and abs(found.quality - first) <= 2, (first, second, found)
            assert found.offset == (5, 3)  # where the first grid lies after the crop
        lossless = quality.earlier_compression(saved_twice(photo, 10, None))
        assert lossless is not None and abs(lossless.quality - 10) <= 2


def test_single_saves_and_originals_show_no_earlier_compression(photos):
    """No false alarm: one save at any QF (its grid leaks only to neighbouring offsets,
    at its own QF) and uncompressed photos."""
    for photo in photos:
        assert quality.earlier_compression(photo) is None
        for q in (5, 30, 75, 95):
            found = quality.earlier_compression(degrade.jpeg_roundtrip(photo, q))
            assert found is None or found.quality >= q - quality.EARLIER_MARGIN, (q, found)


def test_a_compression_made_before_a_resize_is_found(photos):
    """QF 10, cropped by (3, 5), resized (bicubic 0.75×, Lanczos 0.6×), then saved at a
    higher QF or losslessly: its blocks (6 and 4.8 pixels now) are found, and QF 10."""
    for photo in photos:
        for scale, kernel, second in (
            (0.75, Image.BICUBIC, 90),
            (0.6, Image.LANCZOS, 85),
            (0.75, Image.BICUBIC, None),
        ):
            found = quality.resized_compression(
                saved_twice(photo, 10, second, scale=scale, kernel=kernel)
            )
            assert found is not None and found.quality == 10, (scale, second, found)
            assert found.block == pytest.approx(8 * scale, abs=0.02)
            assert found.strength >= quality.RESIZED_PEAK
            # The first block row/column after the crop (5, 3) lies at (3.75, 2.25) now
            # (the phase is read mid-picture and carried to the corner: ±1 pixel).
            if scale == 0.75:
                assert found.offset[0] == pytest.approx(3.75, abs=1)
                assert found.offset[1] == pytest.approx(2.25, abs=1)


def test_single_saves_and_resized_originals_show_no_resized_compression(photos):
    for photo in photos:
        assert quality.resized_compression(photo) is None
        for q in (5, 30, 75, 95):
            assert quality.resized_compression(degrade.jpeg_roundtrip(photo, q)) is None, q
        size = (round(photo.shape[1] * 0.75), round(photo.shape[0] * 0.75))
        smaller = np.asarray(Image.fromarray(photo).resize(size, Image.BICUBIC))
        assert quality.resized_compression(degrade.jpeg_roundtrip(smaller, 90)) is None
        tiny = degrade.jpeg_roundtrip(photo[:80, :80], 90)
        assert quality.resized_compression(tiny) is None  # too small to tell


def test_auto_and_estimate_quality_see_through_a_resize(tmp_path, photo, capsys):
    path = tmp_path / "resized.jpg"
    Image.fromarray(saved_twice(photo, 10, None, scale=0.75)).save(path, quality=90)
    chosen = quality.choose("auto", True, None, None, path)
    # QF 10 resized by 0.75 is as damaged as a QF 15 JPEG of the resized original.
    assert quality.resized_equivalent_quality(10, 0.75) == 15
    assert chosen == quality.Choice(15, "resized-compression", 90, 10)
    assert estimate_quality.run([str(path), "--predictor", ""]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "resized-compression" and report["quality"] == 15
    assert report["earlier_quality"] == 10 and report["last_save_quality"] == 90
    assert report["earlier_block_size"] == pytest.approx(6.0, abs=0.02)
    assert report["exact"] is True
    # What the restore command prints for it.
    result = FileResult(path, tmp_path / "out.png", chosen, 1, 0, 0.1)
    assert result.describe() == (
        "QF 15 (an earlier JPEG compression at QF 10, resized since, seen through a "
        "re-save at QF 90)"
    )
    # Interpolated between the measured first QFs and resizes.
    assert quality.resized_equivalent_quality(20, 0.55) == 69
    assert 15 < quality.resized_equivalent_quality(12.5, 0.725) < 26


def test_auto_and_estimate_quality_see_through_a_resave(tmp_path, photo, capsys):
    path = tmp_path / "resaved.jpg"
    Image.fromarray(saved_twice(photo, 10, 75)).save(path, quality=75)
    single = tmp_path / "single.jpg"
    Image.fromarray(photo).save(single, quality=75)
    pixels = np.asarray(Image.open(path).convert("RGB"))
    chosen = quality.choose("auto", True, None, pixels, path)
    assert chosen.method == "earlier-compression" and abs(chosen.quality - 10) <= 2
    assert chosen.last_save == 75
    assert quality.choose("auto", True, None, None, single) == quality.Choice(
        75, "quantization-table"
    )
    assert estimate_quality.run([str(path), str(single), "--predictor", ""]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["method"] == "earlier-compression" and first["last_save_quality"] == 75
    assert abs(first["quality"] - 10) <= 2 and first["earlier_grid_offset"] == [5, 3]
    assert second == {
        "file": str(single),
        "quality": 75,
        "method": "quantization-table",
        "exact": True,
    }


def test_resave_benchmark_table(model_dir, tmp_path):
    from jaxrestore import Restorer

    folder = tmp_path / "originals"
    folder.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        (folder / name).write_bytes((sources.embedded_dir() / name).read_bytes())
    images = resave.protocol.image_set(folder)
    restorer = Restorer.from_pretrained(model_dir, tile=128)
    cases = [resave.Case.parse(c) for c in ("10", "10-75s", "10-r75-90", "10-png")]
    assert cases[2] == resave.Case("10-r75-90", 10, 90, True, 0.75)
    rows = resave.evaluate(restorer, images, cases, [10, 75], crop=160)
    by_case = {row["case"]: row for row in rows}
    assert by_case["10"]["auto_methods"] == {"quantization-table": 2}
    assert by_case["10-75s"]["auto_methods"] == {"earlier-compression": 2}
    assert by_case["10-75s"]["auto_qf_median"] <= 12 and by_case["10-75s"]["last_save_qf"] == 75
    for row in rows:
        assert 15 < row["jpeg"] < 45 and row["best_manual_qf"] in (10, 75)
        assert row["best_manual"] == max(row["manual"].values())
    # auto restores as the QF it chose does (the same tiled path).
    assert by_case["10"]["auto"] == pytest.approx(by_case["10"]["manual"][10])
    table = resave.markdown(rows)
    assert table.count("\n") == 1 + len(rows) and "10-r75-90" in table
    with pytest.raises(ValueError, match="cannot read"):
        resave.Case.parse("10-x")
