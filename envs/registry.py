"""`rlcore.envs.make(name, **options)`: every JAX task by name, wrapped for training.

Names: `CartPole-v1` (alias `cartpole`), `Pendulum-v1` (`pendulum`), ORPO's tomato
gridworld with the proxy reward (`tomato`) or the true one (`tomato-true`), the zero-shot
tasks `pointmass/<task>` and `gridworld/<task>` (`rlcore.envs.pointmass`,
`rlcore.envs.gridworld`), and the brax tasks in `BRAX_ENVS` (`ant`, `inverted_pendulum`,
`reacher`, ...; option `backend`). Option `random_start` (zero-shot tasks only): episodes
start uniformly in the free space instead of the family's fixed start.
"""

from __future__ import annotations

from rlcore.envs import core

CLASSIC_ENVS = {"CartPole-v1": "cartpole", "cartpole": "cartpole",
                "Pendulum-v1": "pendulum", "pendulum": "pendulum"}
TOMATO_ENVS = {"tomato": "proxy", "tomato-true": "true"}   # ORPO's gridworld, by reward
BRAX_ENVS = ("ant", "halfcheetah", "hopper", "humanoid", "inverted_pendulum",
             "inverted_double_pendulum", "pusher", "reacher", "walker2d")


LATENT_FAMILIES = ("pointmass", "gridworld")   # zero-shot task families: "<family>/<task>"


def _latent_names() -> list[str]:
  import importlib
  return [f"{f}/{t}" for f in LATENT_FAMILIES
          for t in importlib.import_module(f"rlcore.envs.{f}").TASKS]


def available() -> list[str]:
  """All names `make` accepts."""
  return list(CLASSIC_ENVS) + list(TOMATO_ENVS) + _latent_names() + list(BRAX_ENVS)


def check_random_start(name: str, random_start, what: str = "random_start") -> None:
  """Raises ValueError unless `random_start` is a bool, True only for a zero-shot task."""
  if not isinstance(random_start, bool):
    raise ValueError(f"{what} must be True or False, got {random_start!r}.")
  if random_start and name.partition("/")[0] not in LATENT_FAMILIES:
    raise ValueError(f"{what} = True applies to the tasks "
                     f"{', '.join(f + '/<task>' for f in LATENT_FAMILIES)} only, got the env "
                     f"{name!r}.")


def make(name: str, *, max_episode_steps: int | None = None,
         backend: str | None = None, random_start: bool = False,
         action_repeat: int = 1) -> core.Environment:
  """Builds the single-copy environment `name` with its time limit (no auto-reset).

  Args:
    name: one of `available()`.
    max_episode_steps: the time limit; None keeps the task's own (500 CartPole,
      200 Pendulum, 100 tomato, point mass and gridworld, 1000 brax).
    backend: brax physics backend (brax tasks only; None = `generalized`, on which
      brax's own trainer learns inverted_pendulum, see `rlcore.envs.brax_envs`).
    random_start: start each episode uniformly in the free space instead of the fixed
      start (`pointmass/<task>` and `gridworld/<task>` only).
    action_repeat: env steps per agent step (`core.ActionRepeat`, outside the time
      limit, so `max_episode_steps` counts env steps as brax's `episode_length` does).

  Returns:
    An `rlcore.envs.core.Environment` whose episodes truncate at the limit.
  """
  repeats = core.check_positive_int(action_repeat, "envs.make: `action_repeat`")
  env = _make(name, max_episode_steps=max_episode_steps, backend=backend,
              random_start=random_start)
  return env if repeats == 1 else core.ActionRepeat(env, repeats)


def _make(name, *, max_episode_steps, backend, random_start):
  check_random_start(name, random_start, "envs.make: `random_start`")
  if name in CLASSIC_ENVS:
    if backend is not None:
      raise ValueError(f"envs.make: `backend` applies to brax tasks only, got "
                       f"backend={backend!r} for {name!r}.")
    from rlcore.envs import classic
    fn = getattr(classic, CLASSIC_ENVS[name])
    return fn() if max_episode_steps is None else fn(max_episode_steps)
  if name in TOMATO_ENVS:
    if backend is not None:
      raise ValueError(f"envs.make: `backend` applies to brax tasks only, got "
                       f"backend={backend!r} for {name!r}.")
    from rlcore.envs import tomato
    horizon = {} if max_episode_steps is None else {"horizon": max_episode_steps}
    return tomato.TomatoEnv(reward=TOMATO_ENVS[name], **horizon)
  family, _, task = name.partition("/")
  if family in LATENT_FAMILIES and task:
    if backend is not None:
      raise ValueError(f"envs.make: `backend` applies to brax tasks only, got "
                       f"backend={backend!r} for {name!r}.")
    import importlib
    module = importlib.import_module(f"rlcore.envs.{family}")
    cls = module.PointMassEnv if family == "pointmass" else module.GridWorldEnv
    module.check_task(task)
    horizon = {} if max_episode_steps is None else {"horizon": max_episode_steps}
    return cls(task, random_start=random_start, **horizon)
  if name in BRAX_ENVS:
    from rlcore.envs import brax_envs
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    return brax_envs.make_brax(name, backend=backend, **kwargs)
  raise ValueError(f"envs.make: unknown env name {name!r}; allowed: "
                   f"{', '.join(available())}.")


def make_batched(name: str, num_envs: int, *, normalize_obs: bool = False,
                 obs_clip: float = 10.0, **options) -> core.Environment:
  """`num_envs` copies of `make(name)` with auto-reset and episode statistics.

  `EpisodeStatistics(BatchedAutoReset(VmapEnv(make(name), num_envs)))`, then
  `NormalizeObservation` if asked.

  Args:
    name: see `make`.
    num_envs: batch size B; every EnvState leaf gets a leading [B] axis.
    normalize_obs: add `NormalizeObservation` over the batch.
    obs_clip: its bound on the normalised observations, ±obs_clip (inf: none).
    **options: passed to `make`.

  Returns:
    The batched environment.
  """
  env = core.BatchedAutoReset(core.VmapEnv(make(name, **options), num_envs))
  env = core.EpisodeStatistics(env)
  return core.NormalizeObservation(env, clip=obs_clip) if normalize_obs else env
