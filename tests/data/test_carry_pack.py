"""The carry pack: the photo set re-encoded to fit a byte budget, same splits and
provenance, and a run trains from it as from the photo set."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from jaxrestore.data import assemble, carry_pack, sources


def make_photo_set(root, photo, train=6, heldout=3):
    (root / "images").mkdir(parents=True)
    entries = []
    rng = np.random.default_rng(0)
    for i in range(train + heldout):
        crop = photo[rng.integers(0, 40) :, rng.integers(0, 60) :][:224, :320]
        name = f"images/p{i}.png"
        Image.fromarray(crop).save(root / name)
        split = "train" if i < train else "heldout"
        entries.append({"file": name, "package": "test:embedded", "split": split})
    manifest = {
        "version": assemble.ASSEMBLY_VERSION,
        "images": entries,
        "videos": [{"file": "videos/x.mp4"}],
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_the_pack_fits_its_budget_and_keeps_splits_and_provenance(tmp_path, photo, capsys):
    photos = tmp_path / "photos"
    make_photo_set(photos, photo)
    # Sizes at each quality, to set a budget only a lower quality meets.
    whole, packed = carry_pack.plan(photos, 2**30)
    best = sum(map(len, packed.values()))
    assert whole["packed_from"]["training_jpeg_quality"] == 98
    budget = int(best * 0.8)
    out = tmp_path / "pack"
    status = carry_pack.run(
        ["--photos", str(photos), "--out", str(out), "--budget-mb", str(budget / 2**20)]
    )
    assert status == 0
    manifest = json.loads((out / "manifest.json").read_text())
    quality = manifest["packed_from"]["training_jpeg_quality"]
    assert 90 <= quality < 98
    assert manifest["packed_from"]["training_images"] == {"packed": 6, "of": 6}
    size = sum(p.stat().st_size for p in (out / "images").iterdir())
    assert size <= budget
    assert "videos" not in manifest and manifest["packed_from"]["videos"] == "left out"
    splits = sources.resolve_photo_set(out)
    assert (len(splits["train"]), len(splits["heldout"])) == (6, 3)
    for entry in manifest["images"]:
        path = out / entry["file"]
        with Image.open(path) as image:
            if entry["split"] == "heldout":  # lossless: the same pixels as the original
                assert image.format == "PNG"
                original = np.asarray(Image.open(photos / f"images/{path.stem}.png"))
                np.testing.assert_array_equal(np.asarray(image), original)
            else:  # JPEG 4:4:4 at the chosen quality, within a few grey levels
                assert image.format == "JPEG" and entry["packed_as"]["quality"] == quality
                assert image.layer[0][1:3] == (1, 1)  # no chroma subsampling
                original = np.asarray(Image.open(photos / f"images/{path.stem}.png"), float)
                assert np.abs(np.asarray(image, float) - original).mean() < 2.5
        assert entry["package"] == "test:embedded"  # provenance carried over

    # A budget that not all training images fit even at the lowest quality: as many
    # as fit there, the same ones each time, recorded in the manifest.
    _, everything = carry_pack.plan(photos, 2**30)
    held = sum(len(d) for n, d in everything.items() if n.endswith(".png"))
    at_90 = [
        len(carry_pack._jpeg(Image.open(photos / f"images/p{i}.png").convert("RGB"), 90))
        for i in range(6)
    ]
    budget = held + sum(sorted(at_90)[:3]) + min(at_90) // 2  # room for 3 or 4 of 6
    for attempt in ("part", "part-again"):
        status = carry_pack.run(
            ["--photos", str(photos), "--out", str(tmp_path / attempt)]
            + ["--budget-mb", str(budget / 2**20)]
        )
        assert status == 0
    part = json.loads((tmp_path / "part/manifest.json").read_text())
    again = json.loads((tmp_path / "part-again/manifest.json").read_text())
    assert part["packed_from"]["training_jpeg_quality"] == 90
    packed = part["packed_from"]["training_images"]
    assert packed["of"] == 6 and 1 <= packed["packed"] < 6
    trained = [e["file"] for e in part["images"] if e["split"] == "train"]
    assert len(trained) == packed["packed"] and trained == [
        e["file"] for e in again["images"] if e["split"] == "train"
    ]
    assert sum(p.stat().st_size for p in (tmp_path / "part/images").iterdir()) <= budget
    assert f"packed {packed['packed']} of 6 training images" in capsys.readouterr().err

    # Fewer held-out images on request; an existing OUT and an impossible budget are
    # refused in one line, with nothing written.
    few = tmp_path / "few"
    assert carry_pack.run(["--photos", str(photos), "--out", str(few), "--heldout-count", "1"]) == 0
    assert len(sources.resolve_photo_set(few)["heldout"]) == 1
    capsys.readouterr()
    assert carry_pack.run(["--photos", str(photos), "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    tight = tmp_path / "tight"
    assert (
        carry_pack.run(["--photos", str(photos), "--out", str(tight), "--budget-mb", "0.01"]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "do not fit" in err[0] and "--budget-mb" in err[0]
    assert not tight.exists() and not list(tmp_path.glob(".tight*"))
    # A photo set assembled by older code (version 3 still held evaluation images) is
    # not packed.
    manifest = json.loads((photos / "manifest.json").read_text())
    (photos / "manifest.json").write_text(json.dumps({**manifest, "version": 3}))
    old = tmp_path / "old"
    assert carry_pack.run(["--photos", str(photos), "--out", str(old)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "photo set version 3, not this code's" in err[0]
    assert not old.exists()
    with pytest.raises(SystemExit):
        carry_pack.run([])


def test_a_photo_too_detailed_for_an_optimised_jpeg_is_still_packed():
    # Noise at 4:4:4 needs more than the one byte per pixel (two from quality 95) that
    # Pillow gives an optimised JPEG; such a photo gets the standard Huffman tables.
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    for quality in (98, 94, 90):
        data = carry_pack._jpeg(Image.fromarray(noise), quality)
        assert len(data) > 256 * 256  # over the one byte per pixel
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.layer[0][1:3] == (1, 1)
            error = np.abs(np.asarray(image, float) - noise).mean()
            assert error < {98: 4, 94: 8, 90: 12}[quality], (quality, error)
    # An ordinary photo still gets the optimised, smaller file.
    smooth = Image.fromarray(noise).resize((32, 32)).resize((256, 256), Image.Resampling.BICUBIC)
    optimised = carry_pack._jpeg(smooth, 94)
    plain = io.BytesIO()
    smooth.save(plain, "JPEG", quality=94, subsampling=0)
    assert len(optimised) < len(plain.getvalue())


def test_a_partial_pack_takes_every_source_in_proportion():
    entries = [{"file": f"images/a{i}.png", "package": "a"} for i in range(8)]
    entries += [{"file": f"images/b{i}.png", "package": "b"} for i in range(4)]
    entries += [{"file": "images/c0.png", "package": "c"}]
    order = carry_pack._proportional_order(entries)
    assert sorted(order) == list(range(13))
    for n in (3, 6, 12):
        taken = [entries[i]["package"] for i in order[:n]]
        share = {p: taken.count(p) / n for p in "abc"}
        assert abs(share["a"] - 8 / 13) <= 1.5 / n and abs(share["b"] - 4 / 13) <= 1.5 / n
    assert order == carry_pack._proportional_order(entries)  # a fixed order
