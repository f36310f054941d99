"""Reward-free offline datasets: generated in-process, saved to and checked on load from files.

The training data of zero-shot agents (`rlcore.agents.td_jepa`). `generate(family, ...)`
runs an exploration policy in an environment family (`pointmass`, `gridworld`) from
random starts with jitted, vmapped episodes; `save` writes one `.npz` file atomically and
`load` reads it back, checking everything below; `load_or_generate` reuses a file only
when its metadata match the request.

File format, version 1 (`numpy.savez_compressed`; N transitions):

| key | dtype | shape | meaning |
|---|---|---|---|
| `observation` | float32 | [N, *obs_shape] | s |
| `action` | float32 [N, *action_shape] (continuous, in the action box) or int32 [N] (discrete, in [0, num_actions)) | | a |
| `next_observation` | float32 | [N, *obs_shape] | the true s' (never a reset observation) |
| `terminated` | bool | [N] | true terminations only (value of s' is 0) |
| `truncated` | bool | [N] | time-limit cuts (bootstrap from s'); never also terminated |
| `episode` | int32 | [N] | episode index, non-decreasing |
| `format_version` | int | [] | 1 |
| `env` | str | [] | the family (`pointmass`, `gridworld`) |
| `num_episodes`, `seed` | int | [] | the generation request |
| `policy` | str | [] | `random` (uniform actions) or `sticky` (a uniform action held for 1–10 steps) |

No rewards are stored: a task labels next observations at test time
(`rlcore.envs.<family>.reward(task, next_obs)`).
"""

from __future__ import annotations

import importlib
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

FORMAT_VERSION = 1
FAMILIES = ("pointmass", "gridworld")
POLICIES = ("random", "sticky")
ARRAYS = ("observation", "action", "next_observation", "terminated", "truncated", "episode")
META = ("format_version", "env", "num_episodes", "seed", "policy")
MAX_HOLD = 10


def _env(family: str):
  if family not in FAMILIES:
    raise ValueError(f"offline: unknown env family {family!r}; allowed: {', '.join(FAMILIES)}.")
  module = importlib.import_module(f"rlcore.envs.{family}")
  cls = module.PointMassEnv if family == "pointmass" else module.GridWorldEnv
  return module, cls(module.DENSE_TASKS[0], random_start=True)


def generate(family: str, *, num_episodes: int, seed: int, policy: str = "sticky") -> dict:
  """Reward-free episodes of the family's horizon from uniformly random starts.

  Args:
    family: `pointmass` or `gridworld`.
    num_episodes: episodes (each `HORIZON` steps: N = num_episodes · HORIZON).
    seed: PRNG seed.
    policy: `random` (a uniform action each step) or `sticky` (a uniform action held
      for a uniform 1..10 steps: longer straight runs, wider coverage).

  Returns:
    dict in the module's format.
  """
  if policy not in POLICIES:
    raise ValueError(f"offline.generate: `policy` must be one of {POLICIES}, got {policy!r}.")
  if int(num_episodes) != num_episodes or num_episodes < 1:
    raise ValueError(f"offline.generate: `num_episodes` must be a positive integer, got "
                     f"{num_episodes!r}.")
  module, env = _env(family)
  spec, horizon = env.action_spec, int(module.HORIZON)

  def draw(key):
    if spec.is_discrete:
      return jax.random.randint(key, (), 0, spec.num_actions)
    return jax.random.uniform(key, spec.shape, minval=-1.0, maxval=1.0)

  def episode(key):
    k_reset, k_run = jax.random.split(key)
    s0 = env.reset(k_reset)

    def step(carry, k):
      s, a, hold = carry
      k_a, k_h = jax.random.split(k)
      if policy == "sticky":
        renew = hold <= 0
        a = jax.tree.map(lambda new, old: jnp.where(renew, new, old), draw(k_a), a)
        hold = jnp.where(renew, jax.random.randint(k_h, (), 1, MAX_HOLD + 1), hold) - 1
      else:
        a = draw(k_a)
      s2 = env.step(s, a)
      return (s2, a, hold), (s.obs, a, s2.next_obs, s2.terminated, s2.truncated)

    init = (s0, draw(k_run), jnp.zeros((), jnp.int32))
    _, out = jax.lax.scan(step, init, jax.random.split(k_run, horizon))
    return out

  keys = jax.random.split(jax.random.PRNGKey(int(seed)), int(num_episodes))
  obs, act, nxt, term, trunc = jax.jit(jax.vmap(episode))(keys)
  flat = lambda x: np.asarray(x).reshape((-1,) + x.shape[2:])
  return dict(observation=flat(obs).astype(np.float32),
              action=flat(act).astype(np.int32 if spec.is_discrete else np.float32),
              next_observation=flat(nxt).astype(np.float32),
              terminated=flat(term).astype(bool), truncated=flat(trunc).astype(bool),
              episode=np.repeat(np.arange(num_episodes, dtype=np.int32), horizon),
              format_version=FORMAT_VERSION, env=family, num_episodes=int(num_episodes),
              seed=int(seed), policy=policy)


def save(path: str, data: dict) -> None:
  """Writes `data` to `path` (.npz) atomically: a temporary file, then a rename."""
  check(data, where=path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez_compressed(f, **{k: np.asarray(data[k]) for k in ARRAYS + META})
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _fail(where: str, key: str, msg: str):
  raise ValueError(f"offline dataset {where}: `{key}` {msg}")


def check(data: dict, *, where: str = "<in memory>", family: str | None = None) -> None:
  """Raises ValueError naming the file and the key unless `data` is a valid dataset."""
  for k in ARRAYS + META:
    if k not in data:
      _fail(where, k, f"is missing (a version-{FORMAT_VERSION} dataset has "
                      f"{', '.join(ARRAYS + META)}).")
  version = int(np.asarray(data["format_version"]))
  if version != FORMAT_VERSION:
    _fail(where, "format_version", f"is {version}; this code reads version {FORMAT_VERSION}.")
  env = str(np.asarray(data["env"]))
  if family is not None and env != family:
    _fail(where, "env", f"is {env!r}, expected {family!r}.")
  module, env_obj = _env(env)
  obs_shape = tuple(env_obj.observation_shape)
  spec = env_obj.action_spec
  n = np.shape(data["observation"])[0]
  want = {"observation": (np.float32, (n,) + obs_shape),
          "next_observation": (np.float32, (n,) + obs_shape),
          "action": ((np.int32, (n,)) if spec.is_discrete
                     else (np.float32, (n,) + tuple(spec.shape))),
          "terminated": (np.bool_, (n,)), "truncated": (np.bool_, (n,)),
          "episode": (np.int32, (n,))}
  for k, (dtype, shape) in want.items():
    x = np.asarray(data[k])
    if x.dtype != dtype:
      _fail(where, k, f"has dtype {x.dtype}, expected {np.dtype(dtype)}.")
    if x.shape != shape:
      _fail(where, k, f"has shape {x.shape}, expected {shape}.")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
      _fail(where, k, "holds non-finite values.")
  a = np.asarray(data["action"])
  if spec.is_discrete:
    if a.size and (a.min() < 0 or a.max() >= spec.num_actions):
      _fail(where, "action", f"must lie in [0, {spec.num_actions}), got [{a.min()}, {a.max()}].")
  elif a.size and (np.any(a < spec.low) or np.any(a > spec.high)):
    _fail(where, "action", f"must lie in the action box [{spec.low}, {spec.high}].")
  both = np.asarray(data["terminated"]) & np.asarray(data["truncated"])
  if np.any(both):
    _fail(where, "terminated", f"and `truncated` are both set at {int(both.sum())} "
                               f"transitions (a time-limit cut is never a termination).")
  if n and np.any(np.diff(np.asarray(data["episode"])) < 0):
    _fail(where, "episode", "must be non-decreasing.")


def load(path: str, *, env: str | None = None) -> dict:
  """Reads a dataset file and checks it (`check`); `env` also requires its family."""
  try:
    with np.load(path, allow_pickle=False) as f:
      data = {k: f[k] for k in f.files}
  except (OSError, ValueError) as e:
    raise ValueError(f"offline dataset {path}: cannot be read as .npz ({e}).") from e
  check(data, where=path, family=env)
  for k in META:
    data[k] = data[k].item()
  return data


def load_or_generate(path: str, env: str, *, num_episodes: int, seed: int,
                     policy: str = "sticky") -> dict:
  """The dataset at `path` if its metadata match the request, else a new one saved there."""
  want = dict(env=env, num_episodes=int(num_episodes), seed=int(seed), policy=policy,
              format_version=FORMAT_VERSION)
  if os.path.exists(path):
    data = load(path)
    if all(data[k] == v for k, v in want.items()):
      return data
    print(f"[offline] {path} holds {({k: data[k] for k in want})}, not {want}: regenerating")
  data = generate(env, num_episodes=num_episodes, seed=seed, policy=policy)
  save(path, data)
  return data


def coverage(data: dict, bins: int = 10) -> float:
  """Fraction of cells visited: gridworld cells, or a bins × bins grid of the point
  mass's box (next observations)."""
  obs = np.asarray(data["next_observation"])
  if str(data["env"]) == "gridworld":
    return float(np.mean(obs.sum(0) > 0))
  idx = np.clip(((obs + 1.0) / 2.0 * bins).astype(int), 0, bins - 1)
  return len({tuple(i) for i in idx}) / bins ** 2
