"""How the runner executes the R runs of a group: one batched call, or one run at a time.

An `Executor` gives the runner's loop the same four operations for both kinds of
agents (`rlcore.agents.Agent.vectorized`):

* `init(keys, hparams, seeds)` -> the runs' states; `template(...)` the same
  structure for restoring a checkpoint;
* `prepare(states, lengths)` compiles what the chunks need ahead of time (vectorized);
* `chunk(states, n)` -> (states, metrics as numpy arrays `[R, n]`);
* `run_state(states, r)` -> the state of run r alone.

A vectorized agent's runs are one `jax.jit(jax.vmap(...))` call, compiled ahead of
time for each chunk length (the compile time is measured apart), with the runs (or,
if R does not divide, each run's batch of environments) sharded over a one-axis
`jax.sharding.Mesh` when there are several devices. On CPU devices
(`python experiments/main.py --cpu_devices=2` exposes one per core) "auto" shards runs
only: sharding one run's environments puts collectives in every step, which costs
more than it saves there, so an R that does not divide runs on one device. A host
agent's runs are stepped one after another; its states are a list.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(config, num_runs: int, batch_size: Optional[int]):
  """(mesh, mode) for R runs: mode "seeds" shards runs, "envs" shards each run's
  environments, None runs on one device.

  Args:
    config: the group's config (reads `shard`).
    num_runs: R.
    batch_size: the family's per-run environment axis (None: cannot be sharded).
  """
  devices = jax.devices()
  n = len(devices)
  mode = config.shard
  if n == 1 or mode == "none":
    return None, None
  mesh = Mesh(np.array(devices), ("d",))
  runs_divide = num_runs % n == 0
  envs_divide = batch_size is not None and batch_size % n == 0
  if mode == "seeds" and not runs_divide:
    raise ValueError(f"config.shard='seeds': the {num_runs} runs (points x num_seeds) do "
                     f"not divide over {n} devices; use a multiple of {n} or shard='envs'.")
  if mode == "envs" and not envs_divide:
    raise ValueError(f"config.shard='envs': num_envs={batch_size} does not divide over "
                     f"{n} devices; use a multiple of {n} or shard='seeds'.")
  if mode == "seeds" or (mode == "auto" and runs_divide):
    return mesh, "seeds"
  if mode == "envs":
    return mesh, "envs"
  if devices[0].platform == "cpu":
    # Sharding one run's environments puts a cross-device collective in every env step
    # and SGD step; on CPU devices that made CartPole PPO 4.5x slower (benchmarks/README).
    print(f"[runner] the {num_runs} runs do not divide over {n} CPU devices: running on "
          f"one device (shard='envs' would shard each run's environments, which is slower "
          f"on CPU devices; use a multiple of {n} runs to use them all).")
    return None, None
  if envs_divide:
    return mesh, "envs"
  raise ValueError(f"cannot shard over {n} devices: neither the {num_runs} runs "
                   f"(points x num_seeds) nor num_envs={batch_size} is divisible by "
                   f"{n}; change num_seeds or num_envs, or set shard='none'.")


class VectorizedExecutor:
  """All runs of a group in one jitted, vmapped (and possibly sharded) call."""

  warmup_chunks = 0   # compile time is measured apart (ahead-of-time compilation)

  def __init__(self, agent, run_sharding=None, sharding: str = "none"):
    self.agent = agent
    self.sharding = sharding
    self._run_sharding = run_sharding
    self._compiled: dict[int, Callable] = {}
    self.compile_seconds = 0.0
    self._init = self._jit(jax.vmap(lambda k, h, s: agent.init(k, h, seed=s)))

  def _jit(self, fn):
    if self._run_sharding is None:
      return jax.jit(fn)
    return jax.jit(fn, out_shardings=self._run_sharding)

  def init(self, keys, hparams, seeds):
    return self._init(keys, hparams, seeds)

  def template(self, keys, hparams, seeds):
    return jax.eval_shape(self._init, keys, hparams, seeds)

  def place(self, states):
    """Restored states onto the runs' sharding."""
    return states if self._run_sharding is None else jax.device_put(states,
                                                                     self._run_sharding)

  def prepare(self, states, lengths) -> None:
    """Compiles the chunk functions of the given lengths ahead of time (timed apart)."""
    for n in sorted(set(lengths) - set(self._compiled)):
      print(f"[runner] compiling a chunk of {n} updates ...", flush=True)
      t = time.perf_counter()
      fn = self._jit(jax.vmap(lambda s, n=n: self.agent.run_chunk(s, n)))
      self._compiled[n] = fn.lower(states).compile()
      self.compile_seconds += time.perf_counter() - t
      print(f"[runner] compiled in {time.perf_counter() - t:.1f} s.", flush=True)

  def chunk(self, states, n: int):
    self.prepare(states, [n])
    states, metrics = self._compiled[n](states)
    return states, jax.device_get(metrics)

  @staticmethod
  def run_state(states, r: int):
    return jax.tree.map(lambda x: x[r], states)


class HostExecutor:
  """A host agent's runs, stepped one after another; the states are a list."""

  warmup_chunks = 1   # jit compiles inside the first chunk: left out of steps/s
  sharding = "none"
  compile_seconds = None

  def __init__(self, agent):
    self.agent = agent

  def init(self, keys, hparams, seeds):
    return [self.agent.init(keys[r], {k: v[r] for k, v in hparams.items()},
                            seed=int(seeds[r])) for r in range(len(seeds))]

  template = init   # initialising reads files, so no abstract evaluation: a real init

  @staticmethod
  def place(states):
    return states

  @staticmethod
  def prepare(states, lengths) -> None:
    """Nothing ahead of time: a host agent compiles its pieces in its first chunk."""
    del states, lengths

  def chunk(self, states, n: int):
    out, per_run = [], []
    for s in states:
      s, m = self.agent.run_chunk(s, n)
      out.append(s)
      per_run.append(m)
    keys = sorted({k for m in per_run for k in m})
    nan = np.full(n, np.nan)
    return out, {k: np.stack([np.asarray(m.get(k, nan), np.float64) for m in per_run])
                 for k in keys}

  @staticmethod
  def run_state(states, r: int):
    return states[r]


def make_executor(family, config, num_runs: int) -> tuple[Any, Any]:
  """(agent, executor) for a group of `num_runs` runs of `family` under `config`."""
  from rlcore.agents import check_agent   # pylint: disable=import-outside-toplevel
  agent = check_agent(family.make_agent(config), family.name)
  if not agent.vectorized:
    return agent, HostExecutor(agent)
  batch = family.batch_size(config) if family.batch_size is not None else None
  mesh, mode = make_mesh(config, num_runs, batch)
  if mode == "envs":
    env_sharding = NamedSharding(mesh, P("d"))
    constrain = lambda s: jax.tree.map(
        lambda x: jax.lax.with_sharding_constraint(x, env_sharding)
        if x.ndim >= 1 and x.shape[0] == batch else x, s)
    agent = check_agent(family.make_agent(config, constrain_batch=constrain), family.name)
  run_sharding = NamedSharding(mesh, P("d")) if mode == "seeds" else None
  return agent, VectorizedExecutor(agent, run_sharding, mode or "none")
