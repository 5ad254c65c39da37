"""The carry pack: the photo set re-encoded to fit a byte budget, same splits and
provenance, and a run trains from it as from the photo set."""

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
