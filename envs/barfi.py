"""BARFI's tasks: a continuous GridWorld and CartPole, each with a designer heuristic.

Both follow the `rlcore.envs.core` protocol; the heuristic (auxiliary) reward of the
last transition is in `state.info[AUX_REWARD]`, next to the primary `state.reward`.
As in the official code of Gupta et al. 2023 (https://arxiv.org/abs/2310.19007,
github.com/Dhawgupta/gupta2023behavior), the auxiliary reward is 0 on the step that
ends an episode.

* `gridworld(aux)`: [0, 1]², start (0.125, 0.125); goal square [0.75, 0.99]² gives
  +100 and terminates; −0.1 per step; 4 actions (up, right, down, left), each 4
  sub-steps of 0.045 that stop at the walls; with probability 0.1 a uniformly random
  action replaces the chosen one; 50 steps. The official code's last step moves one
  sub-step only (its time-limit check sits inside the sub-step loop); kept.
  Heuristics per sub-step: "good" = −(x − 0.87)² − 0.0144 (the official code's
  distance to the goal centre, whose bug uses the goal's y instead of the agent's:
  kept), "bad" = +50 inside the distractor [0.4, 0.6]², "none" = 0.
* `cartpole(aux)`: gymnasium's CartPole-v1 dynamics (`rlcore.envs.classic`), 500 steps.
  A PD controller on the pole angle (P = 0.1, D = 0.5, derivative = angle − previous
  angle, previous angle 0 at reset) picks a_pd = [P θ + D (θ − θ_prev) > 0]. Heuristics:
  "helpful" +1 if a = a_pd else 0 (`CartPoleBestAux`), "misleading" −5 if a = a_pd else
  +1 (`CartPoleBadAuxDebug`), "noisy" −5 + U(0, 5) / +1 + U(0, 1) (`...Noise`),
  "none" 0. `OBS_LOW`/`OBS_HIGH` are the official code's bounds for feature scaling.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlcore.envs import classic, core

AUX_REWARD = "aux_reward"
GRIDWORLD_AUX = ("good", "bad", "none")
CARTPOLE_AUX = ("helpful", "misleading", "noisy", "none")

_START = (0.125, 0.125)
_GOAL = (0.75, 0.75, 0.99, 0.99)
_DISTRACTOR = (0.4, 0.4, 0.6, 0.6)
_MOTIONS = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]], np.float32)
_SUB_STEP, _SUB_STEPS = 0.045, 4


def _in(pos, region):
  x1, y1, x2, y2 = region
  return (pos[0] >= x1) & (pos[0] <= x2) & (pos[1] >= y1) & (pos[1] <= y2)


class GridWorld(core.Environment):
  """BARFI's continuous GridWorld (see the module docstring). Observation: (x, y)."""
  observation_shape = (2,)
  action_spec = core.ActionSpec("discrete", num_actions=4)
  obs_low = np.zeros(2, np.float32)
  obs_high = np.ones(2, np.float32)

  def __init__(self, aux: str = "bad", horizon: int = 50, random_action_prob: float = 0.1):
    if aux not in GRIDWORLD_AUX:
      raise ValueError(f"GridWorld: `aux` must be one of {GRIDWORLD_AUX}, got {aux!r}.")
    self.aux, self.horizon, self.random_action_prob = aux, int(horizon), random_action_prob
    self.name = f"barfi-gridworld-{aux}"

  def _aux(self, pos):
    if self.aux == "good":
      return -((pos[0] - 0.87) ** 2) - (0.75 - 0.87) ** 2
    if self.aux == "bad":
      return jnp.where(_in(pos, _DISTRACTOR), 50.0, 0.0)
    return jnp.zeros(())

  def reset(self, key):
    pos = jnp.asarray(_START, jnp.float32)
    env_state = dict(pos=pos, steps=jnp.zeros((), jnp.int32), goal_taken=jnp.zeros((), bool))
    return core._first_transition(env_state, pos, key, {AUX_REWARD: jnp.zeros(())})

  def step(self, state, action):
    key, k_rand, k_act = jax.random.split(state.key, 3)
    es = state.env_state
    action = jnp.where(jax.random.uniform(k_rand) < self.random_action_prob,
                       jax.random.randint(k_act, (), 0, 4), action)
    delta = jnp.asarray(_MOTIONS)[action] * _SUB_STEP
    steps = es["steps"] + 1
    pos, taken, stopped = es["pos"], es["goal_taken"], jnp.zeros((), bool)
    reward, aux = jnp.asarray(-0.1, jnp.float32), jnp.zeros((), jnp.float32)
    for _ in range(_SUB_STEPS):
      new = pos + delta
      move = ~stopped & jnp.all((new >= 0.0) & (new <= 1.0))
      stopped = stopped | ~move
      pos = jnp.where(move, new, pos)
      goal = move & _in(pos, _GOAL) & ~taken
      reward = reward + jnp.where(goal, 100.0, 0.0)
      taken = taken | goal
      aux = aux + jnp.where(move, self._aux(pos), 0.0)
      stopped = stopped | (move & (_in(pos, _GOAL) | (steps >= self.horizon)))
    terminated = _in(pos, _GOAL)
    truncated = (steps >= self.horizon) & ~terminated
    aux = jnp.where(terminated | truncated, 0.0, aux)
    return state.replace(
        env_state=dict(pos=pos, steps=steps, goal_taken=taken), obs=pos, next_obs=pos,
        reward=reward, terminated=terminated, truncated=truncated, valid=jnp.ones((), bool),
        key=key, info={**state.info, AUX_REWARD: aux})


class CartPolePD(core.Wrapper):
  """CartPole-v1 with the PD-controller heuristic (see the module docstring)."""
  obs_low = np.array([-2.4, -3.5, -0.2095, -3.5], np.float32)
  obs_high = np.array([2.4, 3.5, 0.2095, 3.5], np.float32)
  P, D = 0.1, 0.5

  def __init__(self, aux: str = "misleading", horizon: int = 500):
    if aux not in CARTPOLE_AUX:
      raise ValueError(f"CartPolePD: `aux` must be one of {CARTPOLE_AUX}, got {aux!r}.")
    super().__init__(classic.cartpole(horizon))
    self.aux, self.horizon = aux, int(horizon)

  @property
  def name(self):
    return f"barfi-cartpole-{self.aux}"

  def reset(self, key):
    s = self.env.reset(key)
    return s.replace(info={**s.info, AUX_REWARD: jnp.zeros(()),
                           "pd.prev_angle": jnp.zeros(())})

  def step(self, state, action):
    angle = state.obs[2]
    pid = self.P * angle + self.D * (angle - state.info["pd.prev_angle"])
    agree = jnp.asarray(action) == (pid > 0).astype(jnp.int32)
    key, k_noise = jax.random.split(state.key)
    s = self.env.step(state.replace(key=key), action)
    if self.aux == "helpful":
      aux = jnp.where(agree, 1.0, 0.0)
    elif self.aux == "misleading":
      aux = jnp.where(agree, -5.0, 1.0)
    elif self.aux == "noisy":
      u = jax.random.uniform(k_noise)
      aux = jnp.where(agree, -5.0 + 5.0 * u, 1.0 + u)
    else:
      aux = jnp.zeros(())
    aux = jnp.where(s.terminated | s.truncated, 0.0, aux).astype(jnp.float32)
    return s.replace(info={**s.info, AUX_REWARD: aux, "pd.prev_angle": angle})


def make(task: str, aux: str) -> core.Environment:
  """`task` "gridworld" or "cartpole" with heuristic `aux` (see the module docstring)."""
  if task == "gridworld":
    return GridWorld(aux)
  if task == "cartpole":
    return CartPolePD(aux)
  raise ValueError(f"envs.barfi.make: `task` must be one of ('gridworld', 'cartpole'), got "
                   f"{task!r}.")
