"""`reference`: the generator in PyTorch next to JAX, same weights, timed side by side.

The PyTorch port (`jaxrestore.bench.torch_reference`, needs `pip install torch`)
is loaded with the packaged weights; its outputs are checked against JAX's and
the two are timed for inference and for a training step of the SSIM stage.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from jaxrestore.bench.common import (
    device_name,
    emit,
    load_config,
    log,
    run_worker,
    summarise,
    synthetic_batch,
    synthetic_frames,
    time_repeats,
)
from jaxrestore.inference import loader


def run(args) -> list[dict]:
    """On CPU the JAX side runs in its own process with one JAX device per core and
    the batch split over them (data parallel, as the project trains on CPU: XLA runs
    one device's convolution on about one core); PyTorch uses its default threads."""

    if importlib.util.find_spec("torch") is None:
        log("reference: skipped, PyTorch is not installed (pip install torch==2.13.0)")
        return []
    arguments = ["_reference", "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    records = run_worker(arguments, os.cpu_count() or 1, "reference benchmark")
    for record in records:
        emit(record)
    return records


def worker(args) -> None:
    import jax
    import torch

    from jaxrestore.bench import torch_reference
    from jaxrestore.training import loop, sharding
    from jaxrestore.training.stages import ssim

    on_gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
    torch_device = torch.device("cuda" if on_gpu else "cpu")

    def sync():
        if on_gpu:
            torch.cuda.synchronize()

    packaged = loader.load("ssim", "generator")
    config, params, model = packaged.config, packaged.params, packaged.module
    reference = torch_reference.from_flax(params, config.model).to(torch_device).eval()
    threads = f"{torch.get_num_threads()} threads" if not on_gpu else torch.cuda.get_device_name()
    device = device_name() + f" | torch {torch.__version__} ({threads})"
    mesh = sharding.make_mesh(load_config("ssim").mesh)  # all devices, data axis
    devices = mesh.shape[sharding.DATA_AXIS]
    batched = sharding.batch_sharding(mesh)
    replicated = sharding.replicated(mesh)
    params_on_mesh = jax.device_put(params, replicated)

    # Inference: the same frames through both, outputs compared.
    height, width = (256, 256) if args.quick else (720, 1280)
    batch = max(2, devices) if jax.default_backend() == "cpu" else 4
    frames = synthetic_frames(height, width, batch).astype(np.float32) / 255.0
    quality = np.full((batch,), 30.0, np.float32)
    apply = jax.jit(
        lambda p, x, q: model.apply({"params": p}, x, q),
        in_shardings=(replicated, batched, batched),
        out_shardings=batched,
    )
    x, q = jax.device_put(frames, batched), jax.device_put(quality, batched)
    tx = torch.from_numpy(frames).to(torch_device)
    tq = torch.from_numpy(quality).to(torch_device)
    ours = np.asarray(apply(params_on_mesh, x, q))
    with torch.inference_mode():
        theirs = reference(tx, tq).cpu().numpy()
    max_diff = float(np.abs(ours - theirs).max())
    # float32 on CPU agrees to 1e-4; on a GPU both frameworks may use TF32 convolutions.
    if max_diff > (1e-2 if on_gpu else 1e-4):
        raise AssertionError(f"reference: JAX and PyTorch outputs differ by {max_diff:.2e}")

    def torch_infer():
        with torch.inference_mode():
            reference(tx, tq)
        sync()

    log("reference: inference …")
    jax_samples = time_repeats(
        lambda: apply(params_on_mesh, x, q).block_until_ready(), args.repeats
    )
    torch_samples = time_repeats(torch_infer, args.repeats)
    reference_record(
        "reference/infer",
        {"height": height, "width": width, "batch": batch, "jax_devices": devices},
        {"max_abs_diff": max_diff},
        device,
        jax_samples,
        torch_samples,
        batch * height * width / 1e6,
        "megapixels_per_s",
    )

    # A training step of the SSIM stage: same model, loss, optimizer and batch.
    train_config = load_config("ssim", "universal")
    train_config.model.update(config.model.to_dict())
    train_config.batch_size, train_config.data.patch_size = (8, 64) if args.quick else (16, 96)
    if not args.quick and jax.default_backend() != "cpu":
        train_config.batch_size, train_config.data.patch_size = 32, 128
    train_config.loss.l1_weight = 8.0
    state, phases = loop.build(train_config, mesh)
    state = state.replace(params=params_on_mesh)
    step_fn = phases[-1][1]
    host_batch = synthetic_batch(train_config.batch_size, train_config.data.patch_size)
    device_batch = sharding.to_global(host_batch, mesh)
    holder = {"state": state}
    steps_per_repeat = 2 if args.quick else 5

    def jax_steps():
        state = holder["state"]
        for _ in range(steps_per_repeat):
            state, metrics = step_fn(state, device_batch)
        jax.block_until_ready((state, metrics))
        holder["state"] = state

    def torch_trainer():
        trainable = torch_reference.from_flax(params, config.model).to(torch_device)
        return torch_reference.make_train_step(trainable, train_config.loss, train_config.optimizer)

    torch_batch = [
        torch.from_numpy(host_batch[k]).to(torch_device) for k in ("degraded", "target", "quality")
    ]
    torch_step = torch_trainer()

    def torch_steps():
        for _ in range(steps_per_repeat):
            torch_step(*torch_batch)
        sync()

    # Both start from the same weights: their first losses are the same computation.
    jax_loss = float(ssim.generator_loss(params, model.apply, host_batch, train_config.loss)[0])
    torch_loss = float(torch_trainer()(*torch_batch))
    log("reference: train step …")
    jax_samples = [t / steps_per_repeat for t in time_repeats(jax_steps, args.repeats)]
    torch_samples = [t / steps_per_repeat for t in time_repeats(torch_steps, args.repeats)]
    reference_record(
        "reference/train_step",
        {
            "batch_size": train_config.batch_size,
            "patch_size": train_config.data.patch_size,
            "jax_devices": devices,
        },
        {"loss_jax": jax_loss, "loss_torch": torch_loss},
        device,
        jax_samples,
        torch_samples,
        train_config.batch_size,
        "patches_per_s",
    )


def reference_record(
    name, config, checks, device, jax_samples, torch_samples, work, rate_name
) -> dict:
    ours, theirs = summarise(jax_samples), summarise(torch_samples)
    record = {
        "name": name,
        "config": {**config, "channels": 64, "num_blocks": 8, "dtype": "float32"},
        "device": device,
        **checks,
        **ours,
        "unit": "s",
        rate_name: work / ours["median"],
        "torch": {**theirs, rate_name: work / theirs["median"]},
        "jax_over_torch": ours["median"] / theirs["median"],
    }
    emit(record)
    return record
