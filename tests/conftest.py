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

# Tests not marked slow compile with most of XLA's optimisations off
# (`jax_disable_most_optimizations`: backend optimisation level 0, no expensive LLVM
# passes): their time is compiling small programs, not running them. Slow tests (the
# training runs) keep the optimised compiler. tests/test_laser.py, test_credit.py and
# test_returns.py took 74 s this way against 94 s (one process, quiet 2-core CPU).
# The setting is part of the persistent cache's key, so the two never share entries.
# RLCORE_TEST_QUICK_COMPILE=0 turns it off.
_QUICK_COMPILE = os.environ.get("RLCORE_TEST_QUICK_COMPILE", "1") != "0"


@pytest.fixture(autouse=True)
def _quick_compile_unless_slow(request):
  if not _QUICK_COMPILE or request.node.get_closest_marker("slow"):
    yield
    return
  jax.config.update("jax_disable_most_optimizations", True)
  try:
    yield
  finally:
    jax.config.update("jax_disable_most_optimizations", False)


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
      "subprocess); each pytest-xdist worker starts its share of them first (see "
      "pytest_collection_modifyitems), and they compile with XLA's optimisations on "
      "unless they ask otherwise (tests/helpers.py's jit_quick_compile); "
      "`-m 'not slow'` skips them for a quick pass.")


def pytest_collection_modifyitems(config, items):
  # The README runs `pytest -n 2 --dist worksteal`: pytest-xdist first gives each of the
  # n workers one contiguous n-th of the collection, and a worker whose queue runs out
  # takes the second half of the longest other queue. So the order is: n blocks, block
  # k = the slow tests k, k + n, ... (the long ones, split between the workers and
  # started first), then the k-th contiguous n-th of the other tests (module fixtures
  # stay in one worker); their tails are what gets stolen, so the workers finish
  # together. (xdist's default `--dist load` hands out contiguous chunks too, so with
  # all slow tests at the front, the previous order, the first worker got every one of
  # them.) With this order, worksteal and the quick compile above, the suite took 782 s
  # against 810 s (2-core VM, quiet, 2026-12-05). Deterministic, as xdist requires
  # every worker's collection to be identical.
  workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
  slow = [item for item in items if item.get_closest_marker("slow") is not None]
  fast = [item for item in items if item.get_closest_marker("slow") is None]
  order, start = [], 0
  for k in range(workers):
    block = (len(items) * (k + 1)) // workers - (len(items) * k) // workers
    mine = slow[k::workers]
    take = max(0, block - len(mine))
    if k == workers - 1:
      take = len(fast) - start
    order += mine + fast[start:start + take]
    start += take
  items[:] = order
