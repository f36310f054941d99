"""Shared test helpers: jit / jit(vmap) parity against numpy references, trace counts,
loading a script that is not a package module, a jit for compile-bound tests."""

from __future__ import annotations

import functools

import chex
import jax
import numpy as np

RTOL = 1e-5
ATOL = 1e-5


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, err_msg=""):
  np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                             rtol=rtol, atol=atol, err_msg=err_msg)


def jit_quick_compile(fn, **kwargs):
  """`jax.jit` at XLA's backend optimisation level 0, for tests whose time is compiling.

  Compiling the BARFI agent's whole run takes 15.7 s at the default level and 8.8 s at
  level 0 on a 2-core CPU (its small test runs then take 0.1-0.8 s either way); the
  BARFI agent tests went from 146 s to 66 s. Not for tests that time or train long:
  level 0 code runs 2-3x slower (the GRPO tests were slower with it).
  """
  return jax.jit(fn, compiler_options={"xla_backend_optimization_level": 0}, **kwargs)


# The same for a subprocess's XLA_FLAGS: the four notebooks at their small budget took
# 167 s instead of 220 s with it (2-core CPU, two test workers). Without LLVM's
# expensive passes too, as `jax_disable_most_optimizations` in the test process
# (tests/conftest.py): the runner's SIGKILL test took 30 s instead of 36 s, the TD-JEPA
# notebook 49 s instead of 52 s (one worker, 2026-12-06).
QUICK_COMPILE_FLAG = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def quick_compile_env(env: dict) -> dict:
  """`env` for small subprocess runs: `QUICK_COMPILE_FLAG` appended to its XLA_FLAGS, and
  this test session's compilation cache (tests/conftest.py), if any, shared through
  JAX's environment variables, so that the runs of one test that compile the same
  programs (a killed run, its resume and an uninterrupted run) compile them once."""
  flags = (env.get("XLA_FLAGS", "") + " " + QUICK_COMPILE_FLAG).strip()
  out = dict(env, XLA_FLAGS=flags)
  cache = jax.config.jax_compilation_cache_dir
  if cache and "JAX_COMPILATION_CACHE_DIR" not in env:
    out.update(JAX_COMPILATION_CACHE_DIR=cache,
               JAX_COMPILATION_CACHE_MAX_SIZE=str(jax.config.jax_compilation_cache_max_size),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=str(
                   jax.config.jax_persistent_cache_min_compile_time_secs),
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=str(
                   jax.config.jax_persistent_cache_min_entry_size_bytes))
  return out


def check_jit_and_vmap(fn, reference, batched_args, *, static_kwargs=None, rtol=RTOL,
                       atol=ATOL):
  """Asserts fn matches `reference` eagerly-jitted per example and under jit(vmap).

  Args:
    fn: JAX function taking positional array args (+ static kwargs).
    reference: numpy function with the same signature.
    batched_args: tuple of numpy arrays, each with a leading batch axis V.
    static_kwargs: keyword arguments passed unchanged to both.
  """
  kw = static_kwargs or {}
  f = functools.partial(fn, **kw)
  expected = [reference(*[a[i] for a in batched_args], **kw)
              for i in range(batched_args[0].shape[0])]
  jitted = jax.jit(f)
  for i, exp in enumerate(expected):
    assert_close(jitted(*[a[i] for a in batched_args]), exp, rtol, atol,
                 err_msg=f"jit, example {i}")
  out = jax.jit(jax.vmap(f))(*batched_args)
  assert_close(out, np.stack(expected), rtol, atol, err_msg="jit(vmap)")
  return out


def assert_no_retrace(fn, *args, second_args=None, **kwargs):
  """Calls jit(fn) twice with same-shaped (different-valued) inputs; expects one trace.

  `kwargs` are bound as static configuration; `second_args` (default `args`) are the
  inputs of the second call. `chex.assert_max_traces` raises on a second trace.
  """

  def call(*a):
    return fn(*a, **kwargs)

  # chex counts traces per footprint (caller's stack + source of `call`), which is the
  # same for every call from one test: start each check from zero.
  chex.clear_trace_counter()
  jitted = jax.jit(chex.assert_max_traces(call, n=1))
  jax.block_until_ready(jitted(*args))
  jax.block_until_ready(jitted(*(args if second_args is None else second_args)))
  chex.clear_trace_counter()


def load_script(path: str, name: str):
  """Imports the Python file at `path` (e.g. experiments/*.py) as a module `name`."""
  import importlib.util
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def kill_after_checkpoint(proc, checkpoints, step: int, timeout_s: float = 240) -> None:
  """SIGKILLs the subprocess `proc` once the orbax folder `checkpoints` holds a step
  >= `step` (or after `timeout_s`), and waits for it."""
  import signal
  import time
  deadline = time.time() + timeout_s
  while time.time() < deadline:
    done = ([int(p.name) for p in checkpoints.glob("*") if p.name.isdigit()]
            if checkpoints.exists() else [])
    if done and max(done) >= step:
      break
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
