"""Host adapter: run a policy on a regular (non-JAX, stateful) gymnasium environment.

A policy trained on a functional JAX task is checked against gymnasium's own
implementation of that task (e.g. `CartPole-v1`, with its own `TimeLimit`), one
episode at a time on the host. The policy is any function from a batch of
observations [1, *obs_shape] (numpy float32) to a batch of actions [1, ...];
`jax.jit` it first, so each step is one compiled call.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def check_env_id(env_id: str, name: str = "env_id") -> None:
  """ValueError naming `name` unless gymnasium knows `env_id` (e.g. "CartPole-v1")."""
  import gymnasium as gym
  try:
    gym.spec(env_id)
  except gym.error.Error as e:
    raise ValueError(f"{name}: gymnasium has no environment {env_id!r} ({e}); e.g. "
                     f"'CartPole-v1', 'Pendulum-v1'.") from None


def evaluate(policy: Callable[[np.ndarray], np.ndarray], env_id: str, *,
             episodes: int = 10, seed: int = 0, max_episode_steps: Optional[int] = None,
             obs_transform: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> np.ndarray:
  """Undiscounted returns of `episodes` episodes of `policy` on `gymnasium.make(env_id)`.

  Args:
    policy: maps observations [1, *obs_shape] to actions [1, ...].
    env_id: a registered gymnasium id, e.g. "CartPole-v1".
    episodes: number of episodes (seeded `seed`, `seed + 1`, ...).
    seed: seed of the first episode.
    max_episode_steps: override gymnasium's time limit (None keeps it).
    obs_transform: applied to each raw observation before the policy (e.g. the
      observation normaliser the policy was trained with).

  Returns:
    [episodes] float64 returns.
  """
  import gymnasium as gym
  if int(episodes) != episodes or episodes < 1:
    raise ValueError(f"evaluate: `episodes` must be a positive integer, got {episodes!r}.")
  kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
  try:
    env = gym.make(env_id, **kwargs)
  except gym.error.Error as e:
    raise ValueError(f"evaluate: gymnasium cannot make env_id={env_id!r}: {e}") from e
  returns = np.zeros(int(episodes))
  try:
    for i in range(int(episodes)):
      obs, _ = env.reset(seed=seed + i)
      done = False
      while not done:
        x = np.asarray(obs, np.float32)[None]
        if obs_transform is not None:
          x = np.asarray(obs_transform(x), np.float32)
        action = np.asarray(policy(x))[0]
        if isinstance(env.action_space, gym.spaces.Discrete):
          action = int(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        returns[i] += float(reward)
        done = terminated or truncated
  finally:
    env.close()
  return returns
