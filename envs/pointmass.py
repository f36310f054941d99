"""A continuous 2-D point mass with a wall: reward-free data, then reward and goal tasks.

The zero-shot testbed of `rlcore.agents.td_jepa` (TD-JEPA, https://arxiv.org/abs/2510.00739,
evaluates on DMC's point mass among others; this is a smaller kinematic cousin that a
2-core CPU trains in minutes). The position p = (x, y) lives in the box [−1, 1]²; an
action a ∈ [−1, 1]² moves it by `step_size` · a (clipped to the box). A wall, the
rectangle |x| ≤ 0.05, y ≤ 0.4, blocks the lower half of the middle: a move whose path
would enter or cross it keeps the old x (its y part still applies when that alone is
legal, else the point stays). Observation: p (float32 [2]). There are no terminal
states in the base tasks; episodes end at the time limit (`HORIZON` = 100, truncation).

Tasks (rewards of the *next* observation, `reward(task, next_obs)`, each in [0, 1]):

* dense: `right` (x + 1)/2, `top` (y + 1)/2, `center` exp(−‖p‖²/0.1),
  `ring` exp(−(‖p‖ − 0.6)²/0.02), `corner_top_right` 1 − ‖p − (1, 1)‖/(2√2);
* `goal_<name>`: 1 within `GOAL_RADIUS` of the goal `GOALS[name]`, else 0 (the episode
  goes on: the return counts the steps spent at the goal);
* `sparse_goal_<name>`: 1 on entering the goal disc, which terminates the episode (for
  PPO with and without potential-based shaping).

Env names in `rlcore.envs.make`: `pointmass/<task>`; start (−0.7, −0.7) (the bottom-left,
left of the wall) unless `random_start`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlcore.envs import core

HORIZON = 100
STEP_SIZE = 0.1
START = (-0.7, -0.7)
WALL_HALF_WIDTH = 0.05
WALL_TOP = 0.4
GOAL_RADIUS = 0.1
GOALS = {"top_left": (-0.7, 0.7), "top_right": (0.7, 0.7), "bottom_right": (0.7, -0.7),
         "center_top": (0.0, 0.7)}
DENSE_TASKS = ("right", "top", "center", "ring", "corner_top_right")
TASKS = (DENSE_TASKS + tuple(f"goal_{g}" for g in GOALS)
         + tuple(f"sparse_goal_{g}" for g in GOALS))


def _goal_of(task: str):
  for prefix in ("sparse_goal_", "goal_"):
    if task.startswith(prefix) and task[len(prefix):] in GOALS:
      return jnp.asarray(GOALS[task[len(prefix):]], jnp.float32)
  return None


def check_task(task: str) -> None:
  """Raises ValueError unless `task` is one of `TASKS`."""
  if task not in TASKS:
    raise ValueError(f"pointmass: unknown task {task!r}; allowed: {', '.join(TASKS)}.")


def reward(task: str, next_obs):
  """The task's reward of arriving at `next_obs` [..., 2] -> [...] float32."""
  check_task(task)
  p = jnp.asarray(next_obs, jnp.float32)
  x, y = p[..., 0], p[..., 1]
  sq = jnp.sum(p * p, -1)
  if task == "right":
    return (x + 1.0) / 2.0
  if task == "top":
    return (y + 1.0) / 2.0
  if task == "center":
    return jnp.exp(-sq / 0.1)
  if task == "ring":
    return jnp.exp(-(jnp.sqrt(sq) - 0.6) ** 2 / 0.02)
  if task == "corner_top_right":
    return 1.0 - jnp.sqrt(jnp.sum((p - 1.0) ** 2, -1)) / (2.0 * np.sqrt(2.0))
  return success(task, p).astype(jnp.float32)


def success(task: str, next_obs):
  """Goal tasks: `next_obs` within `GOAL_RADIUS` of the goal; other tasks: False."""
  check_task(task)
  goal = _goal_of(task)
  p = jnp.asarray(next_obs, jnp.float32)
  if goal is None:
    return jnp.zeros(p.shape[:-1], bool)
  return jnp.sum((p - jnp.broadcast_to(goal, p.shape)) ** 2, -1) <= GOAL_RADIUS ** 2


def goal_observation(name: str) -> np.ndarray:
  """The observation at goal `name` (one of `GOALS`)."""
  if name not in GOALS:
    raise ValueError(f"pointmass: unknown goal {name!r}; allowed: {', '.join(GOALS)}.")
  return np.asarray(GOALS[name], np.float32)


def in_wall(p):
  """[..., 2] -> [...] bool: inside the wall rectangle."""
  return (jnp.abs(p[..., 0]) <= WALL_HALF_WIDTH) & (p[..., 1] <= WALL_TOP)


def _crosses_wall(p, q):
  """Whether the segment p -> q enters or crosses the wall rectangle (p outside it)."""
  lo, hi = -WALL_HALF_WIDTH, WALL_HALF_WIDTH
  # x-interval of the segment overlaps the wall's; find the y range inside that overlap.
  dx = q[0] - p[0]
  safe_dx = jnp.where(jnp.abs(dx) < 1e-9, 1.0, dx)
  t0 = jnp.clip((lo - p[0]) / safe_dx, 0.0, 1.0)
  t1 = jnp.clip((hi - p[0]) / safe_dx, 0.0, 1.0)
  vertical = jnp.abs(dx) < 1e-9
  ta = jnp.where(vertical, 0.0, jnp.minimum(t0, t1))    # the part of the segment with
  tb = jnp.where(vertical, 1.0, jnp.maximum(t0, t1))    # x inside the wall's x-range
  overlap_x = jnp.where(vertical, (p[0] >= lo) & (p[0] <= hi),
                        (jnp.maximum(p[0], q[0]) >= lo) & (jnp.minimum(p[0], q[0]) <= hi))
  y_low = jnp.minimum(p[1] + ta * (q[1] - p[1]), p[1] + tb * (q[1] - p[1]))
  return overlap_x & (y_low <= WALL_TOP)


def move(p, action, step_size: float = STEP_SIZE):
  """The kinematic step with the wall: [2], [2] -> [2].

  Args:
    p: the position, outside the wall.
    action: clipped to [−1, 1]².
    step_size: the displacement of a unit action.

  Returns:
    clip(p + step_size · a, −1, 1) if the straight path there avoids the wall; else the
    y part of that move alone (x kept) if its path avoids the wall; else p.
  """
  a = jnp.clip(action, -1.0, 1.0)
  q = jnp.clip(p + step_size * a, -1.0, 1.0)
  q_y = jnp.stack([p[0], q[1]])           # the y part alone
  return jnp.where(_crosses_wall(p, q),
                   jnp.where(_crosses_wall(p, q_y), p, q_y), q)


class PointMassEnv(core.Environment):
  """The point mass (module docstring) with one task's reward, in the env protocol.

  Args:
    task: one of `TASKS`; `state.reward` is `reward(task, next_obs)`, and only the
      `sparse_goal_*` tasks terminate (on arrival in the goal disc).
    horizon: steps before the episode is truncated.
    random_start: start uniformly in the free space (`sample_free`) instead of `START`.
    step_size: the displacement of a unit action.
  """
  observation_shape = (2,)
  action_spec = core.ActionSpec("continuous", shape=(2,), low=-np.ones(2, np.float32),
                                high=np.ones(2, np.float32))

  def __init__(self, task: str = "right", *, horizon: int = HORIZON, random_start: bool = False,
               step_size: float = STEP_SIZE):
    check_task(task)
    if int(horizon) != horizon or horizon < 1:
      raise ValueError(f"PointMassEnv: `horizon` must be a positive integer, got {horizon!r}.")
    if not step_size > 0:
      raise ValueError(f"PointMassEnv: `step_size` must be positive, got {step_size!r}.")
    self.task, self.horizon, self.random_start = task, int(horizon), bool(random_start)
    self.step_size = float(step_size)
    self.terminates = task.startswith("sparse_goal_")
    self.name = f"pointmass/{task}"

  def sample_free(self, key, shape=()):
    """Uniform positions in the box outside the wall: [*shape, 2].

    Rejection sampling from a fixed pool of 8 uniform candidates per draw (the first one
    outside the wall; the wall covers 3.5 % of the box). If all 8 fall inside the wall
    (probability about 2e-12) the draw is `START`.
    """
    cand = jax.random.uniform(key, tuple(shape) + (8, 2), minval=-1.0, maxval=1.0)
    ok = ~in_wall(cand)
    first = jnp.argmax(ok, -1)
    pick = jnp.take_along_axis(cand, first[..., None, None], -2)[..., 0, :]
    return jnp.where(jnp.any(ok, -1)[..., None], pick, jnp.asarray(START, jnp.float32))

  def reset(self, key):
    key, k = jax.random.split(key)
    p = self.sample_free(k) if self.random_start else jnp.asarray(START, jnp.float32)
    es = dict(pos=p, steps=jnp.zeros((), jnp.int32))
    return core._first_transition(es, p, key)

  def step(self, state, action):
    es = state.env_state
    p = move(es["pos"], jnp.asarray(action, jnp.float32), self.step_size)
    steps = es["steps"] + 1
    r = reward(self.task, p)   # the module's reward of the next observation, every task
    terminated = success(self.task, p) if self.terminates else jnp.zeros((), bool)
    truncated = (steps >= self.horizon) & ~terminated
    return state.replace(env_state=dict(pos=p, steps=steps), obs=p, next_obs=p, reward=r,
                         terminated=terminated, truncated=truncated, valid=jnp.ones((), bool))
