"""Sutton's four-rooms gridworld: reward-free data, then room, distance and goal tasks.

The discrete zero-shot testbed of `rlcore.agents.td_jepa` (TD-JEPA,
https://arxiv.org/abs/2510.00739). 13 × 13 with walls, 104 free cells in four rooms
joined by four doorways (Sutton, Precup & Singh 1999). Five actions: up, down, left,
right, stay; moving into a wall stays; with probability `slip` (default 0) the action is
replaced by a uniformly random one. Observation: one-hot of the cell (float32 [104]).
No terminal states in the base tasks; episodes end at `HORIZON` = 100 (truncation).

Tasks (rewards of the *next* observation, `reward(task, next_obs)`, in [0, 1]):

* dense: `room_top_left`, `room_top_right`, `room_bottom_left`, `room_bottom_right`
  (1 inside that room, doorways excluded), `diagonal` ((row + col − 2)/20: toward the
  bottom-right corner);
* `goal_<name>`: 1 on the goal cell `GOALS[name]`, non-terminating;
* `sparse_goal_<name>`: 1 on entering the goal cell, which terminates the episode.

`to_tabular(task)` is the same task as an exact `rlcore.envs.tabular.TabularMDP`, and
`optimal_return(task, horizon)` the exact best undiscounted return of a `horizon`-step
episode from the start cell (backward induction): the oracle of the evaluation.

Env names in `rlcore.envs.make`: `gridworld/<task>`; start cell (2, 2) (top-left room)
unless `random_start`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlcore.envs import core, tabular

BOARD = ("#############",
         "#     #     #",
         "#     #     #",
         "#           #",
         "#     #     #",
         "#     #     #",
         "## ####     #",
         "#     ### ###",
         "#     #     #",
         "#     #     #",
         "#           #",
         "#     #     #",
         "#############")
HORIZON = 100
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]])   # up, down, left, right, stay
START = (2, 2)
GOALS = {"top_right": (1, 11), "bottom_left": (11, 1), "bottom_right": (11, 11),
         "center_top_right": (3, 9)}
ROOMS = ("room_top_left", "room_top_right", "room_bottom_left", "room_bottom_right")
DENSE_TASKS = ROOMS + ("diagonal",)
TASKS = (DENSE_TASKS + tuple(f"goal_{g}" for g in GOALS)
         + tuple(f"sparse_goal_{g}" for g in GOALS))
DOORWAYS = ((3, 6), (6, 2), (7, 9), (10, 6))

_GRID = np.array([list(r) for r in BOARD])
CELLS = np.argwhere(_GRID == " ")                                  # [104, 2] row-major
NUM_CELLS = len(CELLS)
_INDEX = {tuple(c): i for i, c in enumerate(CELLS)}
NEXT_CELL = np.array([[_INDEX.get((r + dr, c + dc), i) for dr, dc in MOVES]
                      for i, (r, c) in enumerate(CELLS)], np.int32)   # [104, 5]


def _room_of(r: int, c: int) -> int:
  """0 top-left, 1 top-right (rows 1-6), 2 bottom-left, 3 bottom-right, −1 doorway."""
  if (r, c) in DOORWAYS:
    return -1
  return (0 if r <= 6 else 2) + (0 if c <= 5 else 1)


ROOM = np.array([_room_of(r, c) for r, c in CELLS])   # [104]


def cell_index(row: int, col: int) -> int:
  """The index (0..103, row-major over the free cells) of the free cell (row, col)."""
  if (row, col) not in _INDEX:
    raise ValueError(f"gridworld: ({row}, {col}) is not a free cell; `CELLS` lists them.")
  return _INDEX[(row, col)]


def check_task(task: str) -> None:
  """Raises ValueError unless `task` is one of `TASKS`."""
  if task not in TASKS:
    raise ValueError(f"gridworld: unknown task {task!r}; allowed: {', '.join(TASKS)}.")


def _goal_cell(task: str):
  for prefix in ("sparse_goal_", "goal_"):
    if task.startswith(prefix) and task[len(prefix):] in GOALS:
      return cell_index(*GOALS[task[len(prefix):]])
  return None


def cell_rewards(task: str) -> np.ndarray:
  """[104] the task's reward of arriving in each cell."""
  check_task(task)
  if task in ROOMS:
    return (ROOM == ROOMS.index(task)).astype(np.float32)
  if task == "diagonal":
    return ((CELLS[:, 0] + CELLS[:, 1] - 2) / 20.0).astype(np.float32)
  return (np.arange(NUM_CELLS) == _goal_cell(task)).astype(np.float32)


def reward(task: str, next_obs):
  """The task's reward of arriving at `next_obs` [..., 104] (one-hot) -> [...]."""
  return jnp.asarray(next_obs, jnp.float32) @ jnp.asarray(cell_rewards(task))


def success(task: str, next_obs):
  """Goal tasks: `next_obs` is the goal cell; other tasks: False."""
  check_task(task)
  obs = jnp.asarray(next_obs, jnp.float32)
  goal = _goal_cell(task)
  if goal is None:
    return jnp.zeros(obs.shape[:-1], bool)
  return obs[..., goal] > 0.5


def goal_observation(name: str) -> np.ndarray:
  """The one-hot observation of goal `name` (one of `GOALS`)."""
  if name not in GOALS:
    raise ValueError(f"gridworld: unknown goal {name!r}; allowed: {', '.join(GOALS)}.")
  return np.eye(NUM_CELLS, dtype=np.float32)[cell_index(*GOALS[name])]


def observation(cell):
  """The one-hot observation [..., 104] of cell indices [...]."""
  return jax.nn.one_hot(cell, NUM_CELLS, dtype=jnp.float32)


class GridWorldEnv(core.Environment):
  """Four rooms (module docstring) with one task's reward, in the env protocol.

  Args:
    task: one of `TASKS`; `state.reward` is `reward(task, next_obs)`, and only the
      `sparse_goal_*` tasks terminate (on arrival at the goal cell).
    horizon: steps before the episode is truncated.
    random_start: start in a uniformly random free cell instead of `START`.
    slip: probability that the action is replaced by a uniformly random one (of 5).
  """
  observation_shape = (NUM_CELLS,)
  action_spec = core.ActionSpec("discrete", num_actions=len(MOVES))

  def __init__(self, task: str = "room_top_right", *, horizon: int = HORIZON,
               random_start: bool = False, slip: float = 0.0):
    check_task(task)
    if int(horizon) != horizon or horizon < 1:
      raise ValueError(f"GridWorldEnv: `horizon` must be a positive integer, got {horizon!r}.")
    if not 0.0 <= slip <= 1.0:
      raise ValueError(f"GridWorldEnv: `slip` must lie in [0, 1], got {slip!r}.")
    self.task, self.horizon, self.random_start = task, int(horizon), bool(random_start)
    self.slip = float(slip)
    self.terminates = task.startswith("sparse_goal_")
    self.name = f"gridworld/{task}"
    self._next = jnp.asarray(NEXT_CELL)
    self._rewards = jnp.asarray(cell_rewards(task))
    self._goal = _goal_cell(task)

  def reset(self, key):
    key, k = jax.random.split(key)
    cell = (jax.random.randint(k, (), 0, NUM_CELLS) if self.random_start
            else jnp.asarray(cell_index(*START), jnp.int32))
    es = dict(cell=cell, steps=jnp.zeros((), jnp.int32))
    return core._first_transition(es, observation(cell), key)

  def step(self, state, action):
    es = state.env_state
    key, k_slip, k_act = jax.random.split(state.key, 3)
    action = jnp.asarray(action, jnp.int32)
    if self.slip > 0:
      action = jnp.where(jax.random.uniform(k_slip) < self.slip,
                         jax.random.randint(k_act, (), 0, len(MOVES)), action)
    cell = self._next[es["cell"], action]
    steps = es["steps"] + 1
    r = self._rewards[cell]
    terminated = (cell == self._goal) if self.terminates else jnp.zeros((), bool)
    truncated = (steps >= self.horizon) & ~terminated
    obs = observation(cell)
    return state.replace(env_state=dict(cell=cell, steps=steps), obs=obs, next_obs=obs,
                         reward=r, terminated=terminated, truncated=truncated,
                         valid=jnp.ones((), bool), key=key)


def to_tabular(task: str, slip: float = 0.0) -> tabular.TabularMDP:
  """The task as an exact `TabularMDP` over the 104 cells (state i is `CELLS[i]`).

  Args:
    task: one of `TASKS`.
    slip: as `GridWorldEnv`'s.

  Returns:
    transitions [104, 5, 104], rewards [104, 5, 104] (the reward of entering s', as
    `reward(task, observation(s'))`), terminal [104] (the goal cell of a `sparse_goal_*`
    task, else none).
  """
  check_task(task)
  if not 0.0 <= slip <= 1.0:
    raise ValueError(f"gridworld.to_tabular: `slip` must lie in [0, 1], got {slip!r}.")
  n, a = NUM_CELLS, len(MOVES)
  p = np.zeros((n, a, n))
  for s in range(n):
    for act in range(a):
      p[s, act, NEXT_CELL[s, act]] += 1.0 - slip
      for other in range(a):
        p[s, act, NEXT_CELL[s, other]] += slip / a
  r = np.broadcast_to(cell_rewards(task).astype(np.float64)[None, None, :], p.shape).copy()
  terminal = np.zeros(n, bool)
  if task.startswith("sparse_goal_"):
    terminal[_goal_cell(task)] = True
  return tabular.TabularMDP(p, r, terminal)


def optimal_return(task: str, horizon: int = HORIZON, start=START, slip: float = 0.0,
                   gamma: float = 1.0) -> float:
  """The exact best expected return of a `horizon`-step episode: the evaluation's oracle.

  Backward induction over the steps left on `to_tabular(task, slip)`: the optimal
  (time-dependent) policy's expected return Σ_{t<horizon} γ^t r_{t+1}, which ends early
  only at a terminal cell.

  Args:
    task: one of `TASKS`.
    horizon: the episode's steps.
    start: the start cell (row, col).
    slip: as `GridWorldEnv`'s.
    gamma: discount in (0, 1]; 1 is the undiscounted return the evaluation reports.

  Returns:
    The optimal expected return (float).
  """
  if int(horizon) != horizon or horizon < 1:
    raise ValueError(f"gridworld.optimal_return: `horizon` must be a positive integer, got "
                     f"{horizon!r}.")
  if not 0.0 < gamma <= 1.0:
    raise ValueError(f"gridworld.optimal_return: `gamma` must lie in (0, 1], got {gamma!r}.")
  start_index = cell_index(*start)
  mdp = to_tabular(task, slip)
  cont = 1.0 - mdp.terminal
  v = np.zeros(NUM_CELLS)
  for _ in range(int(horizon)):
    q = np.einsum("sat,sat->sa", mdp.transitions,
                  mdp.rewards + gamma * cont[None, None, :] * v)
    v = q.max(-1)
  return float(v[start_index])
