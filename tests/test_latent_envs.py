"""The zero-shot task families (point mass, four rooms) and their offline datasets:
hand-checked steps, rewards at known points, env vs exact tabular MDP, dataset format,
round trip and every rejection of a corrupted file."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore import envs
from rlcore.envs import gridworld as gw
from rlcore.envs import offline
from rlcore.envs import pointmass as pm
from rlcore.envs import tabular

UP, DOWN, LEFT, RIGHT, STAY = range(5)


def _walk(env, actions, key=0):
  step = jax.jit(env.step)
  s = env.reset(jax.random.PRNGKey(key))
  out = []
  for a in actions:
    s = step(s, jnp.asarray(a))
    out.append(s)
  return out


# ------------------------------------------------------------------ point mass

def test_pointmass_moves_and_the_wall_blocks():
  p = lambda x, y: jnp.array([x, y], jnp.float32)
  np.testing.assert_allclose(pm.move(p(-0.7, -0.7), p(1.0, 0.5)), [-0.6, -0.65], atol=1e-6)
  np.testing.assert_allclose(pm.move(p(0.95, 0.0), p(1.0, 0.0)), [1.0, 0.0], atol=1e-6)
  # Right into the wall from the left: x blocked, y still moves.
  np.testing.assert_allclose(pm.move(p(-0.1, -0.5), p(1.0, 1.0)), [-0.1, -0.4], atol=1e-6)
  # Straight down onto the wall's top from above: stays.
  np.testing.assert_allclose(pm.move(p(0.0, 0.45), p(0.0, -1.0)), [0.0, 0.45], atol=1e-6)
  # Above the wall the middle is open.
  np.testing.assert_allclose(pm.move(p(-0.05, 0.6), p(1.0, 0.0)), [0.05, 0.6], atol=1e-6)
  # A long random walk never enters the wall and never jumps across it below its top.
  rng = np.random.default_rng(0)
  step = jax.jit(pm.move)
  q = p(-0.5, -0.5)
  for a in rng.uniform(-1, 1, (400, 2)).astype(np.float32):
    nq = step(q, a)
    assert not bool(pm.in_wall(nq))
    assert not (np.sign(q[0]) != np.sign(nq[0]) and max(q[1], nq[1]) < pm.WALL_TOP)
    q = nq


def test_pointmass_rewards_at_known_points():
  pts = jnp.array([[0.0, 0.0], [1.0, 1.0], [-1.0, -1.0], [0.6, 0.0], [0.7, 0.7]])
  np.testing.assert_allclose(pm.reward("right", pts), [0.5, 1, 0, 0.8, 0.85], atol=1e-6)
  np.testing.assert_allclose(pm.reward("top", pts)[:3], [0.5, 1, 0], atol=1e-6)
  np.testing.assert_allclose(pm.reward("center", pts)[0], 1.0)
  np.testing.assert_allclose(pm.reward("ring", pts)[3], 1.0)
  np.testing.assert_allclose(pm.reward("corner_top_right", pts)[1:3], [1.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(pm.reward("goal_top_right", pts), [0, 0, 0, 0, 1])
  for t in pm.DENSE_TASKS:
    r = np.asarray(pm.reward(t, jax.random.uniform(jax.random.PRNGKey(1), (500, 2), minval=-1)))
    assert r.min() >= 0 and r.max() <= 1
  with pytest.raises(ValueError, match="unknown task"):
    pm.reward("left", pts)


def test_pointmass_goal_tasks_terminate_only_when_sparse_and_truncate_at_the_horizon():
  # Straight up from (-0.7, -0.7) by 0.095 a step: y = 0.535 after 13 steps (0.165 from
  # the goal (-0.7, 0.7)), 0.63 after 14 (inside the radius 0.1).
  env = envs.make("pointmass/sparse_goal_top_left")
  path = _walk(env, [(0.0, 0.95)] * 20)
  hit = [bool(s.terminated) for s in path]
  assert hit.index(True) == 13 and float(path[13].reward) == 1.0
  assert sum(float(s.reward) for s in path[:13]) == 0.0
  dense = envs.make("pointmass/goal_top_left")
  path = _walk(dense, [(0.0, 0.95)] * 14 + [(0.0, 0.0)] * 86)
  assert not any(bool(s.terminated) for s in path)
  assert [bool(s.truncated) for s in path].index(True) == 99
  assert sum(float(s.reward) for s in path) == 100 - 13                # at the goal from step 14
  np.testing.assert_allclose(path[-1].next_obs, path[-1].obs)


# ------------------------------------------------------------------ four rooms

def test_four_rooms_layout_and_hand_checked_steps():
  assert gw.NUM_CELLS == 104 and np.bincount(gw.ROOM + 1).tolist() == [4, 25, 30, 25, 20]
  env = gw.GridWorldEnv("room_top_right")
  cell = lambda s: tuple(gw.CELLS[int(s.env_state["cell"])])
  # From (2, 2): up, up to the wall (1, 2), up again stays; right x3 to (1, 5); right: wall.
  path = _walk(env, [UP, UP, RIGHT, RIGHT, RIGHT, RIGHT])
  assert [cell(s) for s in path] == [(1, 2), (1, 2), (1, 3), (1, 4), (1, 5), (1, 5)]
  # Through the doorway (3, 6) into the top-right room: reward 1 there, 0 in the doorway.
  path = _walk(env, [DOWN, RIGHT, RIGHT, RIGHT, RIGHT, RIGHT])
  assert [cell(s) for s in path][-2:] == [(3, 6), (3, 7)]
  assert [float(s.reward) for s in path][-2:] == [0.0, 1.0]
  assert float(np.asarray(path[-1].obs).sum()) == 1.0


def test_four_rooms_env_agrees_with_its_tabular_mdp():
  task = "diagonal"
  mdp = gw.to_tabular(task)
  env = gw.GridWorldEnv(task, random_start=True)
  step = jax.jit(jax.vmap(env.step))
  s = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 104))
  for a in range(5):
    nxt = step(s, jnp.full(104, a))
    src, dst = np.asarray(s.env_state["cell"]), np.asarray(nxt.env_state["cell"])
    np.testing.assert_allclose(mdp.transitions[src, a, dst], 1.0)
    np.testing.assert_allclose(np.asarray(nxt.reward), mdp.rewards[src, a, dst], atol=1e-6)


def test_four_rooms_oracle_returns():
  # Goal (11, 11) from (2, 2): 18 moves through two doorways' worth of detours; the
  # shortest path has length 20 (measured by BFS here), so 100 − 19 steps at the goal.
  dist = _bfs(gw.cell_index(*gw.START))
  goal = gw.cell_index(*gw.GOALS["bottom_right"])
  assert gw.optimal_return("goal_bottom_right") == 100 - dist[goal] + 1
  assert gw.optimal_return("sparse_goal_bottom_right") == 1.0
  assert gw.optimal_return("room_top_left") == 100.0
  # Value iteration on the discounted sparse task: V = γ^(d − 1) at distance d.
  q = tabular.value_iteration(gw.to_tabular("sparse_goal_bottom_right"), 0.9)
  v = q.max(-1)
  start = gw.cell_index(*gw.START)
  np.testing.assert_allclose(v[start], 0.9 ** (dist[goal] - 1), rtol=1e-9)


def _bfs(src):
  dist = {src: 0}
  frontier = [src]
  while frontier:
    nxt = []
    for c in frontier:
      for d in gw.NEXT_CELL[c]:
        if int(d) not in dist:
          dist[int(d)] = dist[c] + 1
          nxt.append(int(d))
    frontier = nxt
  return dist


# ------------------------------------------------------------------ datasets

@pytest.fixture(scope="module", params=["pointmass", "gridworld"])
def data(request):
  return offline.generate(request.param, num_episodes=40, seed=3)


def test_dataset_format_and_consistency(data):
  fam = data["env"]
  n = 40 * 100
  obs_shape = (2,) if fam == "pointmass" else (104,)
  assert data["observation"].shape == (n,) + obs_shape
  assert data["observation"].dtype == np.float32
  assert data["action"].dtype == (np.float32 if fam == "pointmass" else np.int32)
  ep = data["episode"]
  same = ep[1:] == ep[:-1]
  np.testing.assert_array_equal(data["next_observation"][:-1][same], data["observation"][1:][same])
  last = np.r_[~same, True]
  np.testing.assert_array_equal(data["truncated"], last)      # time limits only at ends
  assert not data["terminated"].any()                          # no terminal states
  offline.check(data)


def test_dataset_coverage_and_generation_speed():
  big = offline.generate("pointmass", num_episodes=500, seed=0)
  assert offline.coverage(big) > 0.9
  grid = offline.generate("gridworld", num_episodes=200, seed=0)
  assert offline.coverage(grid) == 1.0


def test_dataset_round_trip_and_load_or_generate(tmp_path, data):
  path = str(tmp_path / "d.npz")
  offline.save(path, data)
  back = offline.load(path, env=data["env"])
  for k in offline.ARRAYS:
    np.testing.assert_array_equal(back[k], data[k])
  assert back["seed"] == 3 and back["policy"] == "sticky"
  same = offline.load_or_generate(path, data["env"], num_episodes=40, seed=3)
  np.testing.assert_array_equal(same["action"], data["action"])
  other = offline.load_or_generate(path, data["env"], num_episodes=40, seed=4)
  assert other["seed"] == 4 and not np.array_equal(other["action"], data["action"])
  assert offline.load(path)["seed"] == 4                       # the file was replaced
  with pytest.raises(ValueError, match="`env` is"):
    offline.load(path, env="gridworld" if data["env"] == "pointmass" else "pointmass")


@pytest.mark.parametrize("corrupt, key", [
    (lambda d: d.update(format_version=7), "format_version"),
    (lambda d: d.pop("truncated"), "truncated"),
    (lambda d: d.update(observation=d["observation"][:, :1]), "observation"),
    (lambda d: d.update(next_observation=np.where(np.arange(len(d["episode"]))[:, None] == 5,
                                                  np.nan, d["next_observation"])
                                         .astype(np.float32)), "next_observation"),
    (lambda d: d.update(action=(d["action"] * 3).astype(d["action"].dtype) + 2), "action"),
    (lambda d: d.update(terminated=d["truncated"].copy()), "terminated"),
    (lambda d: d.update(action=d["action"].astype(np.float64)), "action"),
])
def test_load_rejects_corrupted_files(tmp_path, data, corrupt, key):
  bad = dict(data)
  corrupt(bad)
  path = str(tmp_path / "bad.npz")
  np.savez(path, **{k: np.asarray(v) for k, v in bad.items()})
  with pytest.raises(ValueError, match=f"`{key}`") as e:
    offline.load(path)
  assert "bad.npz" in str(e.value)


def test_env_names_build_batched_envs():
  for name in ("pointmass/right", "gridworld/goal_bottom_right"):
    assert name in envs.available()
    env = envs.make_batched(name, 4)
    s = jax.jit(env.reset)(jax.random.PRNGKey(0))
    a = (jnp.zeros((4, 2)) if name.startswith("point") else jnp.zeros(4, jnp.int32))
    s = jax.jit(env.step)(s, a)
    assert s.reward.shape == (4,)
  with pytest.raises(ValueError, match="unknown task"):
    envs.make("pointmass/nowhere")
