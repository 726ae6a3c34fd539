"""Data parallelism with `jax.jit` over a one-axis `Mesh`: batch on `data`, state replicated.

jit with NamedSharding is JAX's successor to pmap: XLA inserts the cross-device
reductions, so BatchNorm statistics and the loss are global-batch quantities, the
same as a single-device run of the whole batch.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"

# Environment variables that announce a multi-process job to `jax.distributed`.
_CLUSTER_HINTS = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")
# A job without a cluster manager JAX detects (Slurm, Open MPI, Cloud TPU) gives these with
# JAX_COORDINATOR_ADDRESS ("host:port" of process 0).
_NUM_PROCESSES, _PROCESS_ID = "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


def _multi_process_environment() -> bool:
    if any(os.environ.get(k) for k in _CLUSTER_HINTS):
        return True
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 or int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
        return True
    # Cloud TPU pods list every worker of the slice.
    return "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def maybe_initialize_distributed() -> bool:
    """Calls `jax.distributed.initialize()` when a multi-host environment is present.

    JAX detects Slurm, Open MPI and Cloud TPU jobs itself; elsewhere set
    JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID on every process.
    """
    if _multi_process_environment() and not jax.distributed.is_initialized():
        jax.distributed.initialize(num_processes=_env_int(_NUM_PROCESSES), process_id=_env_int(_PROCESS_ID))
        return True
    return False


def data_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over all devices (of all processes), axis name `data`."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def local_batch_size(global_batch: int, mesh: Mesh, field: str = "data.batch_size") -> int:
    """This process's share of the global batch `config.<field>`; errors when it does not divide evenly."""
    n_dev = mesh.devices.size
    if global_batch % n_dev:
        raise ValueError(
            f"config.{field}={global_batch} does not divide by the {n_dev} devices of the mesh; "
            f"pick a multiple of {n_dev} (e.g. --config.{field}={max(n_dev, global_batch // n_dev * n_dev)})"
        )
    return global_batch // jax.process_count()


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Host-local numpy batch -> global arrays sharded on `data` (multi-host safe).

    Non-numeric entries (example ids) stay on the host and are dropped here.
    """
    sharding = batch_sharded(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
        for k, v in batch.items()
        if np.asarray(v).dtype.kind not in "OSU"
    }


def replicate(tree: Any, mesh: Mesh) -> Any:
    """The same host value on every device of the mesh (each process passes its identical copy)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, replicated(mesh))
    # device_put cannot target other processes' devices; this also carries PRNG key arrays.
    return multihost_utils.host_local_array_to_global_array(tree, mesh, PartitionSpec())
