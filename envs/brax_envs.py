"""brax tasks under the functional protocol (`rlcore.envs.core`).

`BraxAdapter` wraps a *raw* brax environment, as built by
`brax.envs.get_environment(name, backend=...)`, without brax's own
`EpisodeWrapper`, `AutoResetWrapper` or `VmapWrapper`: the protocol's wrappers do
that work (`core.TimeLimit`, `core.AutoReset`, `core.VmapEnv`). The brax `State`
is kept whole as `EnvState.env_state`; `obs` and `reward` are cast to float32.

Termination and truncation: a raw brax environment's `done` is a *termination*
(the ant is unhealthy, the inverted pendulum's angle left ±0.2 rad, ...), so the
adapter reports `terminated = done > 0.5` and never truncates. Time limits are
not part of a raw brax environment; `make_brax` adds `core.TimeLimit`, which sets
`truncated` (bootstrap from `next_obs`) and never `terminated`.

brax scales actions from [-1, 1] to each actuator's range itself, so the action
box is [-1, 1]^action_size; `make_brax` clips to it (`core.ClipAction`).

Backend, measured (scratch script `brax_backends.py`, not in the repo): steady-state
env steps per second of 128 envs, `jit` of a 50-step `lax.scan` over
`vmap(env.step)` with uniform random actions, best of 3 calls after a warm-up;
compile = `lower(...).compile()` of that scan, seconds. jax 0.10.2 (CPU),
brax 0.14.2, mujoco 4.0.0, 2-core CPU shared with other jobs (load average about
1-2.5 during the runs, so the numbers are noisy; the ranking is not). All four
backends ran on all three tasks (ant included). Each backend uses brax's own
per-backend settings: spring and positional integrate at 0.005 s with more
substeps per env step. An env step covers the same simulated time on every backend
for reacher (0.02 s) and ant (0.05 s); for inverted_pendulum it is 0.02 s under
spring/positional but 0.04 s under generalized/mjx.

  task               backend      steps/s   compile s
  inverted_pendulum  spring        234,851      2.7
  inverted_pendulum  generalized    98,310      3.2
  inverted_pendulum  mjx            81,865      4.7
  inverted_pendulum  positional     79,030      4.8
  reacher            spring        145,242      4.2
  reacher            mjx            65,535      6.4
  reacher            positional     40,977      9.5
  reacher            generalized    24,842      6.7
  ant                spring         20,257      4.2
  ant                mjx            15,391      8.4
  ant                generalized     7,125      8.4
  ant                positional      5,830      9.0

`DEFAULT_BACKEND = "generalized"`: the fastest backend is not the right default when
the task cannot be learnt on it. At brax's published inverted_pendulum PPO settings,
brax's own trainer (`brax.training.agents.ppo.train`) reaches an evaluation return of
1000 on `generalized` (and so does rlcore's PPO, results/brax.md), but stays at 100-150
after 3.3e6 steps on `spring`: spring is brax's cheapest and least accurate physics
(joints and contacts as stiff springs), and its inverted_pendulum steps 0.02 s, not
0.04 s. `generalized` is brax's most accurate maximal-coordinates pipeline and the one
brax's training notebook names for its PPO example; pass `backend="spring"` for raw speed and
`backend="mjx"` for MuJoCo physics. Dynamics and returns are not comparable across
backends. On CPU the `generalized` pipeline lowers to LAPACK kernels (Cholesky,
`lapack_spotrf_ffi` and `lapack_strsm_ffi`) where `spring` has none; LAPACK kernels
under `vmap` are what once hung PureJaxRL's 8-seed runs on this 2-core CPU
(`rlcore.nets.initializers`). The single-seed runs of results/brax.md did not hang;
runs with seeds vmapped on `generalized` were not tried here.

brax's own code relies on implicit rank promotion; the adapter traces brax under
`jax.numpy_rank_promotion("allow")`, so it also runs where the rest of the code
is checked with `jax_numpy_rank_promotion="raise"` (as in the tests).
"""

from __future__ import annotations

import contextlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

from rlcore.envs import core
from rlcore.envs import registry

BACKENDS = ("mjx", "spring", "positional", "generalized")
DEFAULT_BACKEND = "generalized"


def _import_brax_envs():
  """`brax.envs`, imported only when a brax task is built (it is slow). Its import
  prints "Failed to import warp" twice to stdout (mujoco's optional warp backend);
  that goes to stderr instead, so stdout keeps only the program's own output."""
  with contextlib.redirect_stdout(sys.stderr):
    from brax import envs as brax_envs  # pylint: disable=import-outside-toplevel
  return brax_envs


class BraxAdapter(core.Environment):
  """A raw brax environment under the protocol (see module docstring).

  `reset` draws the brax reset from a split of `key` and keeps the rest in
  `EnvState.key` for later (auto-)resets; `step` is deterministic and leaves the
  key alone.

  Args:
    name: a brax environment name (`brax.envs.get_environment`).
    backend: brax physics backend, one of `BACKENDS`.
  """

  def __init__(self, name: str, backend: str = DEFAULT_BACKEND):
    brax_envs = _import_brax_envs()
    self.name = name
    self.backend = backend
    self.brax_env = brax_envs.get_environment(name, backend=backend)
    with jax.numpy_rank_promotion("allow"):
      obs = jax.eval_shape(self.brax_env.reset, jax.random.PRNGKey(0)).obs
    self.observation_shape = tuple(obs.shape)
    size = int(self.brax_env.action_size)
    self.action_spec = core.ActionSpec("continuous", shape=(size,),
                                       low=-np.ones((size,), np.float32),
                                       high=np.ones((size,), np.float32))

  @staticmethod
  def _normalise(bs):
    """Casts the brax State's obs, reward and done to float32 arrays.

    Some brax tasks return Python floats (e.g. `reward = 1.0`); fixed dtypes keep
    the state's pytree types equal between `reset` and `step` (AutoReset, scan).
    """
    return bs.replace(obs=jnp.asarray(bs.obs, jnp.float32),
                      reward=jnp.asarray(bs.reward, jnp.float32),
                      done=jnp.asarray(bs.done, jnp.float32))

  def reset(self, key):
    """Starts an episode.

    Args:
      key: PRNG key.

    Returns:
      The first `EnvState` (reward 0, not terminated or truncated).
    """
    key, reset_key = jax.random.split(key)
    with jax.numpy_rank_promotion("allow"):
      bs = self._normalise(self.brax_env.reset(reset_key))
    return core._first_transition(bs, bs.obs, key)

  def step(self, state, action):
    """One brax step.

    Args:
      state: the current `EnvState`.
      action: float array [action_size], in [-1, 1].

    Returns:
      The `EnvState` after the transition; `terminated` is brax's `done`.
    """
    with jax.numpy_rank_promotion("allow"):
      bs = self._normalise(self.brax_env.step(state.env_state,
                                              jnp.asarray(action, jnp.float32)))
    return state.replace(env_state=bs, obs=bs.obs, reward=bs.reward,
                         terminated=bs.done > 0.5, truncated=jnp.zeros((), bool),
                         next_obs=bs.obs, valid=jnp.ones((), bool))


def make_brax(name: str, backend: str | None = None,
              max_episode_steps: int = 1000) -> core.Environment:
  """Builds the brax task `name`, with clipped actions and a time limit.

  Args:
    name: one of `registry.BRAX_ENVS`.
    backend: one of `BACKENDS`; None means `DEFAULT_BACKEND`.
    max_episode_steps: the time limit (truncation).

  Returns:
    `TimeLimit(ClipAction(BraxAdapter(name, backend)), max_episode_steps)`.

  Raises:
    ValueError: for an unknown `name` or `backend`.
  """
  if name not in registry.BRAX_ENVS:
    raise ValueError(f"make_brax: unknown brax env name {name!r}; allowed: "
                     f"{', '.join(registry.BRAX_ENVS)}.")
  if backend is None:
    backend = DEFAULT_BACKEND
  if backend not in BACKENDS:
    raise ValueError(f"make_brax: unknown backend {backend!r}; allowed: "
                     f"{', '.join(BACKENDS)}.")
  return core.TimeLimit(core.ClipAction(BraxAdapter(name, backend)), max_episode_steps)
