"""Reward-free offline datasets: generated in-process, saved to and checked on load from files.

The training data of zero-shot agents (`rlcore.agents.td_jepa`). `generate(env, ...)`
runs an exploration policy in an environment family (`pointmass`, `gridworld`; a task
name such as `pointmass/right` or an env of the family's default dynamics names its
family: the data hold no reward) from random starts with jitted, vmapped episodes
(1000 episodes of 100 steps take about 3 s on a 2-core CPU); `save` writes one `.npz`
file atomically and `load` reads it back, checking everything below; `load_or_generate`
reuses a file only when its metadata match the request. The default exploration policy
is `DEFAULT_POLICY[family]`: `sticky` for the point mass (an episode's first and last
positions lie 0.95 apart on average, against 0.57 with uniform actions; seed 0),
`random` for four rooms (what `configs/td_jepa_gridworld.py` uses).

File format, version 1 (`numpy.savez_compressed`; N transitions):

| key | dtype | shape | meaning |
|---|---|---|---|
| `observation` | float32 | [N, *obs_shape] | s |
| `action` | float32 / int32 | [N, *action_shape] / [N] | a: continuous (in the box) / discrete |
| `next_observation` | float32 | [N, *obs_shape] | the true s' (never a reset observation) |
| `terminated` | bool | [N] | true terminations only (value of s' is 0) |
| `truncated` | bool | [N] | time-limit cuts (bootstrap from s'); never also terminated |
| `episode` | int32 | [N] | episode index in [0, num_episodes), non-decreasing |
| `format_version` | int | [] | 1 |
| `env` | str | [] | the family (`pointmass`, `gridworld`) |
| `num_episodes`, `seed` | int | [] | the generation request |
| `policy` | str | [] | `random` (uniform actions) or `sticky` (one held for 1–10 steps) |

obs_shape and the action's shape and bounds are the family's (point mass: [2] positions,
float32 [2] actions in [−1, 1]²; four rooms: one-hot [104] cells, int32 actions in
[0, 5)). Generated files hold `num_episodes` whole episodes of the family's `HORIZON`
in order (N = num_episodes · HORIZON; the last step of each is `truncated`), but a
reader may only rely on the table. `load` rejects (ValueError naming the file, the key
and what was expected) an unknown version, a missing key, a wrong dtype or shape,
non-finite values, actions outside the bounds, a transition both terminated and
truncated, and metadata of the wrong type.

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
DEFAULT_POLICY = {"pointmass": "sticky", "gridworld": "random"}
ARRAYS = ("observation", "action", "next_observation", "terminated", "truncated", "episode")
META = ("format_version", "env", "num_episodes", "seed", "policy")
MAX_HOLD = 10


def family_of(env) -> str:
  """The family (`pointmass` or `gridworld`) of a family name, a registry name
  `<family>/<task>` or an environment of the family with its default dynamics.

  Raises ValueError for anything else (a non-default horizon, step size or slip would
  produce data the file's metadata cannot describe).
  """
  if isinstance(env, str):
    family, _, task = env.partition("/")
    if family in FAMILIES:
      if task:
        importlib.import_module(f"rlcore.envs.{family}").check_task(task)
      return family
    raise ValueError(f"offline: unknown env {env!r}; allowed: {', '.join(FAMILIES)} or "
                     f"'<family>/<task>'.")
  from rlcore.envs import core, gridworld, pointmass
  base = env.unwrapped if isinstance(env, core.Environment) else env
  if isinstance(base, pointmass.PointMassEnv):
    family, default = "pointmass", (base.horizon == pointmass.HORIZON
                                    and base.step_size == pointmass.STEP_SIZE)
  elif isinstance(base, gridworld.GridWorldEnv):
    family, default = "gridworld", base.horizon == gridworld.HORIZON and base.slip == 0.0
  else:
    raise ValueError(f"offline: `env` must be a family name ({', '.join(FAMILIES)}), a "
                     f"'<family>/<task>' name or a PointMassEnv / GridWorldEnv, got "
                     f"{type(env).__name__}.")
  if not default:
    raise ValueError(f"offline: `env` {base.name} has non-default dynamics (horizon, step "
                     f"size or slip); a dataset records only its family, so generate uses "
                     f"the family's defaults.")
  return family


def _env(family: str):
  module = importlib.import_module(f"rlcore.envs.{family}")
  cls = module.PointMassEnv if family == "pointmass" else module.GridWorldEnv
  return module, cls(module.DENSE_TASKS[0], random_start=True)


def _policy(family: str, policy, who: str) -> str:
  policy = DEFAULT_POLICY[family] if policy is None else policy
  if policy not in POLICIES:
    raise ValueError(f"offline.{who}: `policy` must be one of {POLICIES} (or None for "
                     f"the family's default), got {policy!r}.")
  return policy


def generate(env, *, num_episodes: int, seed: int, policy: str | None = None) -> dict:
  """Reward-free episodes of the family's horizon from uniformly random starts.

  Args:
    env: `pointmass` or `gridworld`, or what `family_of` maps to one.
    num_episodes: episodes (each `HORIZON` steps: N = num_episodes · HORIZON).
    seed: PRNG seed.
    policy: `random` (a uniform action each step), `sticky` (a uniform action held
      for a uniform 1..10 steps: longer straight runs, wider coverage), or None for
      `DEFAULT_POLICY[family]`.

  Returns:
    dict in the module's format (numpy arrays and Python scalars).
  """
  family = family_of(env)
  policy = _policy(family, policy, "generate")
  if (isinstance(num_episodes, bool) or int(num_episodes) != num_episodes
      or num_episodes < 1):
    raise ValueError(f"offline.generate: `num_episodes` must be a positive integer, got "
                     f"{num_episodes!r}.")
  if isinstance(seed, bool) or int(seed) != seed:
    raise ValueError(f"offline.generate: `seed` must be an integer, got {seed!r}.")
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


def _meta(data, where, key, kinds, what):
  """The scalar metadata `data[key]` as a Python value, if a 0-d array of `kinds`."""
  x = np.asarray(data[key])
  if x.shape != () or x.dtype.kind not in kinds:
    _fail(where, key, f"must be a scalar {what}, got dtype {x.dtype} and shape {x.shape}.")
  return x.item()


def check(data: dict, *, where: str = "<in memory>", family: str | None = None) -> None:
  """Raises ValueError naming the file and the key unless `data` is a valid dataset.

  Args:
    data: a dict in the module's format.
    where: the file, for the message.
    family: if given, the family the data must come from.
  """
  for k in ARRAYS + META:
    if k not in data:
      _fail(where, k, f"is missing (a version-{FORMAT_VERSION} dataset has "
                      f"{', '.join(ARRAYS + META)}).")
  version = _meta(data, where, "format_version", "iu", "integer")
  if version != FORMAT_VERSION:
    _fail(where, "format_version", f"is {version}; this code reads version {FORMAT_VERSION}.")
  env = _meta(data, where, "env", "U", "string")
  if env not in FAMILIES:
    _fail(where, "env", f"is {env!r}; allowed: {', '.join(FAMILIES)}.")
  if family is not None and env != family:
    _fail(where, "env", f"is {env!r}, expected {family!r}.")
  num_episodes = _meta(data, where, "num_episodes", "iu", "integer")
  if num_episodes < 1:
    _fail(where, "num_episodes", f"must be positive, got {num_episodes}.")
  _meta(data, where, "seed", "iu", "integer")
  policy = _meta(data, where, "policy", "U", "string")
  if policy not in POLICIES:
    _fail(where, "policy", f"is {policy!r}; allowed: {', '.join(POLICIES)}.")
  module, env_obj = _env(env)
  obs_shape = tuple(env_obj.observation_shape)
  spec = env_obj.action_spec
  if np.ndim(data["observation"]) < 1:
    _fail(where, "observation", f"must have shape [N, {', '.join(map(str, obs_shape))}], "
                                f"got a scalar.")
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
  ep = np.asarray(data["episode"])
  if n and (np.any(np.diff(ep) < 0) or ep[0] < 0 or ep[-1] >= num_episodes):
    _fail(where, "episode", f"must be non-decreasing in [0, num_episodes = {num_episodes}), "
                            f"got values in [{ep.min()}, {ep.max()}].")


def load(path: str, *, env=None) -> dict:
  """Reads a dataset file and checks it (`check`).

  Args:
    path: the `.npz` file.
    env: if given (anything `family_of` accepts), the family the file must hold; the
      shapes are checked against that family's observation and action shapes.

  Returns:
    dict in the module's format (metadata as Python scalars).

  Raises:
    ValueError naming the file, the key and what was expected.
  """
  family = None if env is None else family_of(env)
  try:
    with np.load(path, allow_pickle=False) as f:
      data = {k: f[k] for k in f.files}
  except (OSError, ValueError) as e:
    raise ValueError(f"offline dataset {path}: cannot be read as .npz ({e}).") from e
  check(data, where=path, family=family)
  for k in META:
    data[k] = data[k].item()
  return data


def load_or_generate(path: str, env, *, num_episodes: int, seed: int,
                     policy: str | None = None) -> dict:
  """The dataset at `path` if its metadata match the request, else a new one saved there.

  Args:
    path: the `.npz` file (its folder is created if needed).
    env, num_episodes, seed, policy: as `generate`'s; the file is reused only if its
      `env` (family), `num_episodes`, `seed`, `policy` and `format_version` all match.

  Returns:
    dict in the module's format.

  Raises:
    ValueError if the file exists but fails `load`'s checks (a corrupt file is reported,
    not silently overwritten; `save` is atomic, so an interrupted save leaves none).
  """
  family = family_of(env)
  policy = _policy(family, policy, "load_or_generate")
  want = dict(env=family, num_episodes=int(num_episodes), seed=int(seed), policy=policy,
              format_version=FORMAT_VERSION)
  if os.path.exists(path):
    data = load(path)
    if all(data[k] == v for k, v in want.items()):
      return data
    print(f"[offline] {path} holds {({k: data[k] for k in want})}, not {want}: regenerating")
  data = generate(family, num_episodes=num_episodes, seed=seed, policy=policy)
  save(path, data)
  return data


def coverage(data: dict, bins: int = 10) -> float:
  """Fraction of the state space the next observations visit.

  Four rooms: the fraction of the 104 cells; point mass: of the bins × bins squares of
  the box [−1, 1]² (all 100 default squares hold free space).
  """
  obs = np.asarray(data["next_observation"])
  if str(data["env"]) == "gridworld":
    return float(np.mean(obs.sum(0) > 0))
  idx = np.clip(((obs + 1.0) / 2.0 * bins).astype(int), 0, bins - 1)
  return len(np.unique(idx[:, 0] * bins + idx[:, 1])) / bins ** 2
