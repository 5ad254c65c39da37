"""Device mesh and shardings: batches split on the `data` axis, parameters replicated."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def configure_cpu_devices(mesh_config) -> None:
    """Ask for `mesh_config.cpu_devices` CPU devices; call before JAX starts its backends.

    No effect when $JAX_NUM_CPU_DEVICES is set (e.g. by launch/local_multiprocess.sh) or
    on accelerators, whose devices are unaffected."""
    count = mesh_config.get("cpu_devices", 0)
    if count and not os.environ.get("JAX_NUM_CPU_DEVICES"):
        jax.config.update("jax_num_cpu_devices", int(count))


def make_mesh(mesh_config) -> Mesh:
    """A 1-D mesh over `config.mesh.data` devices (-1 = all devices of all processes)."""
    devices = jax.devices()
    size = len(devices) if mesh_config.data == -1 else mesh_config.data
    if size < 1 or size > len(devices):
        raise ValueError(f"config.mesh.data={mesh_config.data}: {len(devices)} devices available")
    if size == len(devices):
        # All devices, ordered by the physical topology where there is one (TPU, GPU).
        return Mesh(mesh_utils.create_device_mesh((size,), devices), (DATA_AXIS,))
    if jax.process_count() > 1:
        raise ValueError(
            f"config.mesh.data={mesh_config.data}: a multi-process run uses all "
            f"{len(devices)} devices (set -1)"
        )
    return Mesh(np.asarray(devices[:size]), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    devices = mesh.shape[DATA_AXIS]
    if batch_size % devices:
        raise ValueError(
            f"config.batch_size={batch_size} does not divide over the {devices} devices of the "
            f"'{DATA_AXIS}' mesh axis"
        )


def to_global(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assemble each process's share of the batch into global arrays on the mesh."""
    sharding = batch_sharding(mesh)
    return {
        key: jax.make_array_from_process_local_data(sharding, value) for key, value in batch.items()
    }


def jit_step(step_fn: Callable, mesh: Mesh, **static) -> Callable:
    """jit a `(state, batch) -> (state, metrics)` step: state replicated and donated,
    batch split on the data axis, metrics replicated. `static` binds config pieces."""
    return jax.jit(
        functools.partial(step_fn, **static),
        in_shardings=(replicated(mesh), batch_sharding(mesh)),
        out_shardings=(replicated(mesh), replicated(mesh)),
        donate_argnums=0,
    )
