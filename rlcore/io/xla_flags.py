"""Process-wide XLA:CPU settings the runner, the tests and the benchmarks share.

XLA:CPU (jaxlib 0.10.2) can wedge forever on vmapped training programs on small
machines: every thread parked on a futex inside `block_until_ready` (seen here on 2
cores, mostly with several vmapped brax runs; reported with this workaround at
https://github.com/PyAutoLabs/PyAutoFit/issues/1528). Single-threaded Eigen made it
rarer here but did not remove it, and measured no slower for these small kernels.
In the hung processes the main thread waited for a result whose computation no worker
thread was running, so CPU dispatch is also made synchronous (the runner blocks on
every chunk anyway).
"""

from __future__ import annotations

import os

FLAG = "--xla_cpu_multi_thread_eigen=false"


def use_single_threaded_eigen() -> None:
  """Adds `FLAG` to XLA_FLAGS unless the user set the option, and turns off
  asynchronous CPU dispatch unless JAX_CPU_ENABLE_ASYNC_DISPATCH is set; call before
  jax runs anything (both are read when the CPU backend starts)."""
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_multi_thread_eigen" not in flags:
    os.environ["XLA_FLAGS"] = (flags + " " + FLAG).strip()
  if "JAX_CPU_ENABLE_ASYNC_DISPATCH" not in os.environ:
    os.environ["JAX_CPU_ENABLE_ASYNC_DISPATCH"] = "false"   # for subprocesses
    import jax  # pylint: disable=import-outside-toplevel
    jax.config.update("jax_cpu_enable_async_dispatch", False)
