"""Test configuration: strict rank promotion (as rlax's tests) and hypothesis profile."""

import os

# See experiments/main.py: XLA:CPU's multi-threaded Eigen pool can deadlock on vmapped
# programs on 2-core machines; the subprocesses the tests start inherit this.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_cpu_multi_thread_eigen=false").strip()

import jax  # pylint: disable=g-import-not-at-top
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "ci", max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "25")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("ci")


@pytest.fixture
def rng():
  import numpy as np
  return np.random.default_rng(0)
