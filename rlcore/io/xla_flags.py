"""One process-wide XLA:CPU setting the runner, the tests and the benchmarks share.

XLA:CPU (jaxlib 0.10.2) can wedge forever on vmapped training programs on small
machines: every thread parked on a futex inside `block_until_ready` (seen here on 2
cores, mostly with several vmapped brax runs; reported with this workaround at
https://github.com/PyAutoLabs/PyAutoFit/issues/1528). Single-threaded Eigen made it
rarer here but did not remove it, and measured no slower for these small kernels.
"""

from __future__ import annotations

import os

FLAG = "--xla_cpu_multi_thread_eigen=false"


def use_single_threaded_eigen() -> None:
  """Adds `FLAG` to XLA_FLAGS unless the user set the option; call before jax runs
  anything (XLA reads the variable when its CPU backend starts)."""
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_multi_thread_eigen" not in flags:
    os.environ["XLA_FLAGS"] = (flags + " " + FLAG).strip()
