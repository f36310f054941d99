"""Test configuration: strict rank promotion (as rlax's tests) and hypothesis profile."""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_rank_promotion", "raise")

# A persistent XLA compilation cache for this test session, in a fresh temporary
# directory: many tests compile the same programs (a GRPO agent's sampler and update
# for every run of a test, PPO's train step for several configs). It saved 41 s of
# tests/test_grpo.py's 172 s on a 2-core CPU. The pytest process creates it and removes
# it at exit; its pytest-xdist workers inherit RLCORE_TEST_SHARED_XLA_CACHE and share it,
# which is safe because a size bound makes JAX take a file lock around every read and
# write (`filelock`, in the test extra; without it each process keeps its own).
# Subprocesses that tests start (the SIGKILLed runs, the notebooks) don't load this file
# and start without a cache. RLCORE_TEST_COMPILATION_CACHE=0 turns it off; a
# JAX_COMPILATION_CACHE_DIR you set is left alone.
if (os.environ.get("RLCORE_TEST_COMPILATION_CACHE", "1") != "0"
    and not os.environ.get("JAX_COMPILATION_CACHE_DIR")):
  _CACHE_DIR = os.environ.get("RLCORE_TEST_SHARED_XLA_CACHE", "")
  if not os.path.isdir(_CACHE_DIR):       # the pytest process (or a worker on its own)
    import atexit
    import shutil
    import tempfile
    _CACHE_DIR = tempfile.mkdtemp(prefix="rlcore_test_xla_cache_")
    atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)
    try:
      import filelock  # noqa: F401
      os.environ["RLCORE_TEST_SHARED_XLA_CACHE"] = _CACHE_DIR   # for the xdist workers
    except ImportError:
      pass
  jax.config.update("jax_compilation_cache_dir", _CACHE_DIR)
  jax.config.update("jax_compilation_cache_max_size", 16 << 30)   # bounded: file-locked
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

settings.register_profile(
    "ci", max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "25")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("ci")


@pytest.fixture
def rng():
  import numpy as np
  return np.random.default_rng(0)


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: a test of 15 s or more on a 2-core CPU (a training run, a notebook, a "
      "subprocess); collected first, so that pytest-xdist's workers start the long tests "
      "early and finish together; `-m 'not slow'` skips them for a quick pass.")


def pytest_collection_modifyitems(config, items):
  # pytest-xdist (`-n 2`) deals the first quarter of the tests out round-robin and the
  # rest as workers free up: with the long tests first, they are split between the
  # workers and the short ones fill the end, instead of one worker finishing a long
  # test alone while the other waits. A stable sort keeps the order deterministic, as
  # xdist requires of every worker's collection.
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)
