import numpy as np
import pytest

from jaxrestore.data import degrade, pipeline, sources
from jaxrestore.media import image as image_io


def first_batches(config, count, state=None):
    iterator = iter(pipeline.make_train_dataset(config))
    if state is not None:
        iterator.set_state(state)
    return [next(iterator) for _ in range(count)], iterator


def test_batches_have_the_documented_layout(tiny_config):
    (batch,), _ = first_batches(tiny_config, 1)
    size, bs = tiny_config.data.patch_size, tiny_config.batch_size
    assert batch["degraded"].shape == batch["target"].shape == (bs, size, size, 3)
    assert batch["degraded"].dtype == batch["target"].dtype == np.uint8
    assert batch["quality"].dtype == np.int32
    assert batch["quality"].min() >= tiny_config.data.quality_min
    assert batch["quality"].max() <= tiny_config.data.quality_max
    # The degraded side really is the JPEG of the target at the recorded quality.
    for degraded, target, quality in zip(batch["degraded"], batch["target"], batch["quality"]):
        np.testing.assert_array_equal(degraded, degrade.jpeg_roundtrip(target, int(quality)))


def test_stream_is_a_function_of_the_seed(tiny_config):
    a, _ = first_batches(tiny_config, 3)
    b, _ = first_batches(tiny_config, 3)
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    tiny_config.seed = 1
    c, _ = first_batches(tiny_config, 3)
    assert not np.array_equal(a[0]["target"], c[0]["target"])


def test_iterator_state_round_trip(tiny_config):
    batches, iterator = first_batches(tiny_config, 5)
    state = iterator.get_state()
    following = [next(iterator) for _ in range(3)]
    resumed, _ = first_batches(tiny_config, 3, state=state)
    for x, y in zip(following, resumed):
        np.testing.assert_array_equal(x["degraded"], y["degraded"])
        np.testing.assert_array_equal(x["quality"], y["quality"])
    assert not np.array_equal(batches[0]["target"], following[0]["target"])


def test_worker_processes_give_the_same_stream(tiny_config):
    in_process, _ = first_batches(tiny_config, 3)
    tiny_config.data.workers = 1
    batches, iterator = first_batches(tiny_config, 3)
    for x, y in zip(in_process, batches):
        np.testing.assert_array_equal(x["degraded"], y["degraded"])
    state = iterator.get_state()
    following = next(iterator)
    resumed, _ = first_batches(tiny_config, 1, state=state)
    np.testing.assert_array_equal(following["target"], resumed[0]["target"])


def test_lower_quality_degrades_more():
    image = image_io.read_image(str(sources.embedded_dir() / "astronaut.png"))
    errors = [
        np.abs(degrade.jpeg_roundtrip(image, q).astype(int) - image).mean() for q in (10, 40, 90)
    ]
    assert errors[0] > errors[1] > errors[2] > 0
    with pytest.raises(ValueError, match="quality"):
        degrade.jpeg_roundtrip(image, 0)


def test_splits_are_disjoint_and_stable(tmp_path):
    for i in range(40):
        (tmp_path / f"img{i:02d}.png").write_bytes(b"")
    config = type("C", (), {"source": str(tmp_path), "dir": ""})()
    splits = sources.resolve(config)
    train, heldout = set(splits["train"].paths), set(splits["heldout"].paths)
    assert not train & heldout and len(train | heldout) == 40
    assert 1 <= len(heldout) < 10
    assert splits == sources.resolve(config)


class OneImage(sources.ImageSet):
    """An image set of one given array."""

    def __init__(self, image: np.ndarray):
        self.image = image

    def __len__(self):
        return 1

    def load(self, index):
        return self.image

    def name(self, index):
        return "ramp"


def test_rotation_gives_all_orientations_and_flip_mirrors():
    # A ramp that rises left to right: every orientation of a patch shows it rising
    # in a different direction (→ ← ↓ ↑).
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], (64, 1, 3))

    def directions(flip, rotate):
        transform = pipeline.CropAndCompress(OneImage(ramp), 32, 90, 90, flip, 0, rotate)
        found = set()
        for seed in range(40):
            target = transform.random_map(0, np.random.default_rng(seed))["target"]
            rows, cols = (
                np.diff(target[..., 0].astype(int), axis=0),
                np.diff(target[..., 0].astype(int), axis=1),
            )
            found.add((int(np.sign(rows.sum())), int(np.sign(cols.sum()))))
        return found

    assert directions(False, False) == {(0, 1)}
    assert directions(True, False) == {(0, 1), (0, -1)}
    assert directions(True, True) == {(0, 1), (0, -1), (1, 0), (-1, 0)}


def test_rescaling_shrinks_texture_by_a_bounded_random_factor():
    # A ramp rising by 1 per pixel: cut from a region shrunk by s, it rises by 1/s.
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (128, 1, 3))

    def slopes(scale_min):
        transform = pipeline.CropAndCompress(
            OneImage(ramp), 32, 95, 95, False, 0, degradations="none", scale_min=scale_min
        )
        found = []
        for seed in range(30):
            target = transform.random_map(0, np.random.default_rng(seed))["target"]
            assert target.shape == (32, 32, 3)
            row = target[16, 4:-4, 0].astype(float)  # away from the resampling edges
            found.append((row[-1] - row[0]) / (len(row) - 1))
        return np.array(found)

    unscaled = slopes(1.0)
    np.testing.assert_allclose(unscaled, 1.0)
    scaled = slopes(0.5)
    assert scaled.min() >= 0.97 and scaled.max() <= 2.03, scaled
    assert scaled.max() > 1.6 and scaled.std() > 0.15  # the factor varies from patch to patch
    with pytest.raises(ValueError, match="scale_min"):
        pipeline.CropAndCompress(OneImage(ramp), 32, 95, 95, False, 0, scale_min=0.1)
