"""The functional environment protocol, and the wrappers every task shares.

One protocol for every JAX environment here (docs/design.md, "Data conventions"):

    state = env.reset(key)            # EnvState
    state = env.step(state, action)   # EnvState after one transition

An `EnvState` carries, besides the environment's own state, everything the
learner needs about the transition that produced it: `reward`, `terminated` (the
MDP ended: next value 0), `truncated` (a time limit cut the episode: bootstrap from
the true next state), `next_obs` (the true next observation, *before* any
auto-reset) and `valid` (False on filler transitions). `obs` is what the agent acts
on next: after an auto-reset it is the first observation of the new episode, while
`next_obs` still holds the last observation of the old one.

Wrappers keep their own fields in `state.info` under their own keys, so they stack. The
two wrappers whose data the learner reads have typed fields instead: `episode`
(`EpisodeStatistics`: the finished episode's return and length) and `obs_norm`
(`NormalizeObservation`: running statistics and the raw observations).

    env = EpisodeStatistics(AutoReset(TimeLimit(base, 500)))
    batched = VmapEnv(env, num_envs)                 # leaves get a leading [B] axis
    batched = NormalizeObservation(batched)          # statistics shared by the batch

Everything is a pure function of its inputs, so `jit`, `vmap` and `lax.scan` apply.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class EnvState:
  """Environment state plus the last transition, as a pytree (see module docstring)."""
  env_state: Any        # the environment's own state
  obs: Array            # observation to act on (after auto-reset: the new episode's first)
  reward: Array         # [] float32, reward of the last transition
  terminated: Array     # [] bool
  truncated: Array      # [] bool
  next_obs: Array       # true next observation of the last transition, before auto-reset
  valid: Array          # [] bool, False on filler transitions
  key: Array            # RNG for stochastic transitions and resets
  info: dict            # wrapper fields, keyed by wrapper
  episode: Optional["EpisodeStats"] = None   # set by EpisodeStatistics
  obs_norm: Optional["ObsNormState"] = None  # set by NormalizeObservation

  def replace(self, **changes) -> "EnvState":
    return dataclasses.replace(self, **changes)


jax.tree_util.register_dataclass(
    EnvState,
    data_fields=["env_state", "obs", "reward", "terminated", "truncated", "next_obs",
                 "valid", "key", "info", "episode", "obs_norm"],
    meta_fields=[])


@dataclasses.dataclass(frozen=True)
class ActionSpec:
  """What `step` accepts: `num_actions` discrete actions, or a float box."""
  kind: str                          # "discrete" | "continuous"
  num_actions: int = 0               # discrete only
  shape: tuple = ()                  # continuous only
  low: Optional[np.ndarray] = None   # continuous only
  high: Optional[np.ndarray] = None  # continuous only

  @property
  def is_discrete(self) -> bool:
    return self.kind == "discrete"


class Environment:
  """Base class: subclasses set `observation_shape`, `action_spec` and implement
  `reset(key)` and `step(state, action)`."""
  observation_shape: tuple = ()
  action_spec: ActionSpec = None
  name: str = "environment"

  def reset(self, key: Array) -> EnvState:
    raise NotImplementedError

  def step(self, state: EnvState, action: Array) -> EnvState:
    raise NotImplementedError

  def observe(self, state: EnvState, raw_obs: Array) -> Array:
    """What the agent sees for a raw observation `raw_obs` in `state` (e.g. one from
    another implementation of the task): `raw_obs` itself unless a wrapper transforms
    observations (`NormalizeObservation` applies its statistics)."""
    del state
    return raw_obs

  @property
  def unwrapped(self) -> "Environment":
    return self


class Wrapper(Environment):
  """Delegates to `env`; subclasses override `reset` and/or `step`."""

  def __init__(self, env: Environment):
    if not isinstance(env, Environment):
      raise TypeError(f"{type(self).__name__}: `env` must be an envs.Environment, "
                      f"got {type(env).__name__}.")
    self.env = env

  def __getattr__(self, name):
    if name == "env":   # not yet set (e.g. during unpickling)
      raise AttributeError(name)
    return getattr(self.env, name)

  @property
  def observation_shape(self):
    return self.env.observation_shape

  @property
  def action_spec(self):
    return self.env.action_spec

  @property
  def name(self):
    return self.env.name

  @property
  def unwrapped(self):
    return self.env.unwrapped

  def reset(self, key):
    return self.env.reset(key)

  def step(self, state, action):
    return self.env.step(state, action)

  def observe(self, state, raw_obs):
    return self.env.observe(state, raw_obs)


def _first_transition(env_state, obs, key, info=None) -> EnvState:
  """An EnvState right after a reset (no transition yet: reward 0, not done)."""
  return EnvState(env_state=env_state, obs=obs, reward=jnp.zeros((), jnp.float32),
                  terminated=jnp.zeros((), bool), truncated=jnp.zeros((), bool),
                  next_obs=obs, valid=jnp.ones((), bool), key=key,
                  info={} if info is None else info)


class FuncEnvAdapter(Environment):
  """Adapts a gymnasium `FuncEnv` (gymnasium.experimental.functional) to the protocol.

  The adapter draws a fresh key for each transition (stochastic `transition`s get
  one); `terminal` is evaluated on the next state; no time limit is applied (wrap
  with `TimeLimit`).

  Args:
    func_env: a `gymnasium.experimental.functional.FuncEnv` written in JAX.
    params: the environment's parameter dataclass.
    name: for messages and logs.
  """

  def __init__(self, func_env, params, name: str):
    self.func_env = func_env
    self.params = params
    self.name = name
    self.observation_shape = tuple(func_env.observation_space.shape)
    space = func_env.action_space
    if hasattr(space, "n"):
      self.action_spec = ActionSpec("discrete", num_actions=int(space.n))
    else:
      self.action_spec = ActionSpec("continuous", shape=tuple(space.shape),
                                    low=np.asarray(space.low, np.float32),
                                    high=np.asarray(space.high, np.float32))

  def reset(self, key):
    key, init_key = jax.random.split(key)
    inner = self.func_env.initial(init_key, self.params)
    obs = jnp.asarray(self.func_env.observation(inner, None, self.params), jnp.float32)
    return _first_transition(inner, obs, key)

  def step(self, state, action):
    key, step_key = jax.random.split(state.key)
    fe, p = self.func_env, self.params
    nxt = fe.transition(state.env_state, action, step_key, p)
    reward = jnp.asarray(fe.reward(state.env_state, action, nxt, step_key, p), jnp.float32)
    terminated = jnp.asarray(fe.terminal(nxt, step_key, p), bool)
    obs = jnp.asarray(fe.observation(nxt, step_key, p), jnp.float32)
    return state.replace(env_state=nxt, obs=obs, reward=reward, terminated=terminated,
                         truncated=jnp.zeros((), bool), next_obs=obs,
                         valid=jnp.ones((), bool), key=key)


class TimeLimit(Wrapper):
  """Truncates (never terminates) an episode after `max_episode_steps` steps.

  A step that both terminates and reaches the limit is a termination.
  """

  def __init__(self, env, max_episode_steps: int):
    super().__init__(env)
    if int(max_episode_steps) != max_episode_steps or max_episode_steps < 1:
      raise ValueError("TimeLimit: `max_episode_steps` must be a positive integer, got "
                       f"{max_episode_steps!r}.")
    self.max_episode_steps = int(max_episode_steps)

  def reset(self, key):
    s = self.env.reset(key)
    return s.replace(info={**s.info, "time_limit.steps": jnp.zeros((), jnp.int32)})

  def step(self, state, action):
    s = self.env.step(state, action)
    steps = state.info["time_limit.steps"] + 1
    truncated = (s.truncated | (steps >= self.max_episode_steps)) & ~s.terminated
    return s.replace(truncated=truncated, info={**s.info, "time_limit.steps": steps})


def check_positive_int(value, what: str) -> int:
  """`value` as an int; ValueError naming `what` unless it is a positive integer."""
  if isinstance(value, bool) or int(value) != value or value < 1:
    raise ValueError(f"{what} must be a positive integer, got {value!r}.")
  return int(value)


class ActionRepeat(Wrapper):
  """Applies each action `repeats` times; the agent sees one transition.

  The transition's `reward` is the sum of the env steps' rewards, its other fields are
  the last env step's. When an env step ends the episode (terminated or truncated), the
  remaining repeats leave the state as it is and add no reward, so episodes end where
  they did. Wrap it around the time-limited environment: the time limit then counts
  env steps, so a 1000-step limit under `repeats=4` ends an episode after 250 agent
  steps. This is brax's `EpisodeWrapper(action_repeat=...)`, except that brax keeps
  stepping (and summing rewards) past a termination inside the repeats; the two agree
  on tasks that never terminate, such as reacher.

  Args:
    env: an unbatched environment (wrap before `VmapEnv`).
    repeats: env steps per agent step, a positive integer.
  """

  def __init__(self, env, repeats: int):
    super().__init__(env)
    self.repeats = check_positive_int(repeats, "ActionRepeat: `repeats`")

  def step(self, state, action):
    def repeat(s, _):
      done = s.terminated | s.truncated
      nxt = self.env.step(s, action)
      out = jax.tree.map(lambda old, new: jnp.where(done, old, new), s, nxt)
      return out.replace(reward=s.reward + jnp.where(done, 0.0, nxt.reward)), None

    first = self.env.step(state, action)
    out, _ = jax.lax.scan(repeat, first, None, self.repeats - 1)
    return out


class AutoReset(Wrapper):
  """Starts a new episode after a terminated or truncated step.

  The returned state keeps the finished transition's `reward`, `terminated`,
  `truncated` and true `next_obs`; `obs`, the environment state and the inner
  wrappers' fields are those of the fresh episode. A reset is computed every step and
  selected where the episode ended (no control flow, so it vmaps).
  """

  def step(self, state, action):
    s = self.env.step(state, action)
    key, reset_key = jax.random.split(s.key)
    fresh = self.env.reset(reset_key)
    done = s.terminated | s.truncated
    pick = lambda new, old: jnp.where(done, new, old)
    inner_info = {k: pick(fresh.info[k], s.info[k]) for k in fresh.info}
    return s.replace(env_state=jax.tree.map(pick, fresh.env_state, s.env_state),
                     obs=pick(fresh.obs, s.obs), key=key,
                     info={**s.info, **inner_info})


class BatchedAutoReset(Wrapper):
  """`AutoReset` for a batched env (`VmapEnv`): resets only when some copy is done.

  Same semantics as `AutoReset` applied to each copy (the finished transition keeps
  its reward, flags and true `next_obs`; `obs` and the state are the fresh
  episode's), but the resets are computed under `lax.cond(any(done))` on the whole
  batch, so steps where no episode ends skip them. On CPU that halved the cost of a
  CartPole step in a micro-benchmark (the reset draws random numbers every step
  otherwise). Under `vmap` over runs the condition is batched and becomes a select.
  """

  def __init__(self, env):
    super().__init__(env)
    if not isinstance(env, VmapEnv):
      raise TypeError("BatchedAutoReset: `env` must be a VmapEnv (use AutoReset for a "
                      f"single environment), got {type(env).__name__}.")

  def step(self, state, action):
    s = self.env.step(state, action)
    done = s.terminated | s.truncated

    def reset(s):
      keys = jax.vmap(jax.random.split)(s.key)          # [B, 2]
      fresh = jax.vmap(self.env.env.reset)(keys[:, 1])

      def pick(new, old):
        return jnp.where(done.reshape(done.shape + (1,) * (new.ndim - 1)), new, old)

      inner_info = {k: pick(fresh.info[k], s.info[k]) for k in fresh.info}
      return s.replace(env_state=jax.tree.map(pick, fresh.env_state, s.env_state),
                       obs=pick(fresh.obs, s.obs), key=keys[:, 0],
                       info={**s.info, **inner_info})

    return jax.lax.cond(jnp.any(done), reset, lambda s: s, s)


class EpisodeStats(NamedTuple):
  """`EpisodeStatistics`' record in `EnvState.episode` (one entry per env of a batch)."""
  running_return: Array    # float32, undiscounted return of the running episode so far
  running_length: Array    # int32, its steps so far
  returned_return: Array   # float32, return of the last finished episode
  returned_length: Array   # int32, its length
  done: Array              # bool, an episode finished on this step (valid transition)


class EpisodeStatistics(Wrapper):
  """Tracks the undiscounted return and length of the running episode.

  Sets `state.episode`, an `EpisodeStats`: the running episode's return and length,
  and the last finished episode's (`returned_*`, valid where `done` is True on the
  step that finished it). It resets its own counters when an episode ends, so it
  works inside or outside `AutoReset` (or `BatchedAutoReset`), on one env or a batch.
  """

  def reset(self, key):
    s = self.env.reset(key)
    shape = jnp.shape(s.reward)   # [] for one env, [B] for a batched one
    zf, zi = jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.int32)
    return s.replace(episode=EpisodeStats(zf, zi, zf, zi, jnp.zeros(shape, bool)))

  def step(self, state, action):
    s = self.env.step(state, action)
    e = state.episode
    ret = e.running_return + jnp.where(s.valid, s.reward, 0.0)
    length = e.running_length + s.valid.astype(jnp.int32)
    done = (s.terminated | s.truncated) & s.valid
    return s.replace(episode=EpisodeStats(
        running_return=jnp.where(done, 0.0, ret),
        running_length=jnp.where(done, 0, length),
        returned_return=jnp.where(done, ret, e.returned_return),
        returned_length=jnp.where(done, length, e.returned_length),
        done=done))


class ClipAction(Wrapper):
  """Clips continuous actions to the action box before stepping."""

  def step(self, state, action):
    spec = self.env.action_spec
    if spec.is_discrete:
      return self.env.step(state, action)
    return self.env.step(state, jnp.clip(action, spec.low, spec.high))


class VmapEnv(Wrapper):
  """A batch of `num_envs` independent copies; every leaf gets a leading [B] axis."""

  def __init__(self, env, num_envs: int):
    super().__init__(env)
    if int(num_envs) != num_envs or num_envs < 1:
      raise ValueError(f"VmapEnv: `num_envs` must be a positive integer, got {num_envs!r}.")
    self.num_envs = int(num_envs)

  def reset(self, key):
    return jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))

  def step(self, state, action):
    return jax.vmap(self.env.step)(state, action)


class ObsNormState(NamedTuple):
  """`NormalizeObservation`'s record in `EnvState.obs_norm`."""
  count: Array          # [] float32, observations merged so far
  mean: Array           # [*obs_shape] float32
  var: Array            # [*obs_shape] float32
  raw_obs: Array        # [B, *obs_shape], `obs` before normalisation
  raw_next_obs: Array   # [B, *obs_shape], `next_obs` before normalisation


class NormalizeObservation(Wrapper):
  """Normalises observations of a batched env (`VmapEnv`) with running statistics.

  Mean and variance are merged over the whole batch at every step (Chan et al.'s
  parallel update), so every copy sees the same normaliser. `obs` and `next_obs` of a
  step are normalised with the same statistics; the statistics and the raw values are
  in `state.obs_norm` (an `ObsNormState`; potential functions read the raw values, so
  a moving normaliser does not make the potential non-stationary), and
  `observe(state, raw)` normalises any raw observation as the state's statistics do.
  """

  def __init__(self, env, epsilon: float = 1e-8, clip: float = 10.0):
    super().__init__(env)
    clip = float(clip)
    if not clip > 0:
      raise ValueError(f"NormalizeObservation: clip must be > 0 (inf: no clipping), got {clip}.")
    self.epsilon, self.clip = epsilon, clip

  def _normalise(self, x, mean, var):
    mean, scale = (jnp.broadcast_to(v, x.shape) for v in (mean, jnp.sqrt(var + self.epsilon)))
    z = (x - mean) / scale
    return z if self.clip == float("inf") else jnp.clip(z, -self.clip, self.clip)

  @staticmethod
  def _update(count, mean, var, x):
    n = jnp.asarray(x.shape[0], jnp.float32)
    bmean, bvar = jnp.mean(x, 0), jnp.var(x, 0)
    total = count + n
    delta = bmean - mean
    new_mean = mean + delta * (n / total)
    m2 = var * count + bvar * n + delta ** 2 * (count * n / total)
    return total, new_mean, m2 / total

  def _with_stats(self, s, count, mean, var):
    stats = ObsNormState(count, mean, var, raw_obs=s.obs, raw_next_obs=s.next_obs)
    return s.replace(obs=self._normalise(s.obs, mean, var),
                     next_obs=self._normalise(s.next_obs, mean, var), obs_norm=stats)

  def reset(self, key):
    s = self.env.reset(key)
    shape = self.env.observation_shape
    count, mean, var = self._update(jnp.asarray(1e-4, jnp.float32),
                                    jnp.zeros(shape, jnp.float32),
                                    jnp.ones(shape, jnp.float32), s.obs)
    return self._with_stats(s, count, mean, var)

  def step(self, state, action):
    n = state.obs_norm
    raw = state.replace(obs=n.raw_obs, next_obs=n.raw_next_obs, obs_norm=None)
    s = self.env.step(raw, action)
    count, mean, var = self._update(n.count, n.mean, n.var, s.obs)
    return self._with_stats(s, count, mean, var)

  def observe(self, state, raw_obs):
    return self._normalise(raw_obs, state.obs_norm.mean, state.obs_norm.var)
