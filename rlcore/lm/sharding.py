"""Parameters and optimiser state split over devices (fully sharded, FSDP-style), with
`jax.sharding`.

Each array is split along one axis over every device of a 1-D mesh: its largest axis
that the device count divides (the leading layer axis of stacked blocks only when it is
the largest); arrays with no such axis, and scalars, are replicated. Jitted functions of
the placed arrays then run SPMD: XLA gathers a layer's weights where a product needs
them and keeps the results (updated parameters, Adam's moments) split the same way, so
each device holds about 1/n of the parameters and optimiser state.

    mesh = lm.sharding.device_mesh()              # all devices, axis "fsdp"
    params = lm.sharding.place(params, mesh)      # and the optimiser state likewise
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "fsdp"


def device_mesh(devices: Optional[Sequence] = None) -> Mesh:
  """A 1-D mesh over `devices` (default: all of them) with the axis `AXIS`."""
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), (AXIS,))


def spec(shape: Sequence[int], num_devices: int) -> PartitionSpec:
  """The PartitionSpec of an array of `shape`: split along its largest axis divisible by
  `num_devices` (the first such axis on ties), else replicated."""
  candidates = [(size, -i) for i, size in enumerate(shape)
                if size >= num_devices and size % num_devices == 0]
  if num_devices <= 1 or not candidates:
    return PartitionSpec()
  axis = -max(candidates)[1]
  return PartitionSpec(*([None] * axis + [AXIS]))


def shardings(tree, mesh: Mesh):
  """The `NamedSharding` of every array leaf of `tree` (non-arrays: None)."""
  n = mesh.devices.size
  return jax.tree.map(
      lambda x: NamedSharding(mesh, spec(np.shape(x), n)) if hasattr(x, "shape") else None,
      tree)


def place(tree, mesh: Mesh):
  """`tree` with every array leaf put on `mesh` as `shardings` says (a no-op for leaves
  already placed so)."""
  return jax.tree.map(lambda x, s: x if s is None else jax.device_put(x, s), tree,
                      shardings(tree, mesh))
