"""gymnasium's functional JAX control tasks (CartPole, Pendulum) under the protocol.

gymnasium 1.x ships JAX `FuncEnv`s for CartPole and Pendulum
(`gymnasium.envs.phys2d`). `cartpole` and `pendulum` build them with the episode
limits of `CartPole-v1` (500) and `Pendulum-v1` (200).

One correction: gymnasium's `CartPoleParams` computes its default
`polemass_length` as `masspole + length` (0.6), where `CartPole-v1` uses
`masspole * length` (0.05). We pass 0.05 so that a policy trained here behaves the
same on gymnasium's own `CartPole-v1` (checked through `rlcore.envs.host`).
"""

from __future__ import annotations

from rlcore.envs import core


def cartpole(max_episode_steps: int = 500) -> core.Environment:
  """CartPole with CartPole-v1's dynamics, reward 1 per step and a 500-step limit."""
  from gymnasium.envs.phys2d import cartpole as gym_cartpole
  params = gym_cartpole.CartPoleParams(polemass_length=0.1 * 0.5)
  base = core.FuncEnvAdapter(gym_cartpole.CartPoleFunctional(), params, "CartPole-v1")
  return core.TimeLimit(base, max_episode_steps)


def pendulum(max_episode_steps: int = 200) -> core.Environment:
  """Pendulum-v1: swing up, torque in [-2, 2], never terminates, 200-step limit."""
  from gymnasium.envs.phys2d import pendulum as gym_pendulum
  base = core.FuncEnvAdapter(gym_pendulum.PendulumFunctional(),
                             gym_pendulum.PendulumParams(), "Pendulum-v1")
  return core.TimeLimit(core.ClipAction(base), max_episode_steps)
