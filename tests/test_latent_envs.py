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


def _segment_hits_wall(p, q, samples=1001):
  """[M, 2], [M, 2] -> [M] bool: some point of the straight path p -> q is in the wall."""
  t = np.linspace(0.0, 1.0, samples)[None, :, None]
  seg = p[:, None] + t * (q - p)[:, None]
  return ((np.abs(seg[..., 0]) <= pm.WALL_HALF_WIDTH) & (seg[..., 1] <= pm.WALL_TOP)).any(1)


def test_pointmass_wall_rule_against_densely_sampled_paths():
  # Random positions outside the wall (most of them near it) and actions; the rule in
  # numpy, with the path tested at 1001 points: full move if its path is free, else the
  # y part alone (x kept) if its path is free, else stay.
  rng = np.random.default_rng(1)
  p = np.concatenate([rng.uniform([-0.25, -1.0], [0.25, 0.6], (4000, 2)),
                      rng.uniform(-1, 1, (1000, 2))]).astype(np.float32)
  p = p[~np.asarray(pm.in_wall(jnp.asarray(p)))]
  a = rng.uniform(-1.3, 1.3, p.shape).astype(np.float32)            # some need clipping
  q = np.clip(p + 0.1 * np.clip(a, -1, 1), -1, 1)
  q_y = np.stack([p[:, 0], q[:, 1]], -1)
  full, y_only = _segment_hits_wall(p, q), _segment_hits_wall(p, q_y)
  want = np.where(full[:, None], np.where(y_only[:, None], p, q_y), q)
  got = np.asarray(jax.jit(jax.vmap(pm.move))(jnp.asarray(p), jnp.asarray(a)))
  np.testing.assert_allclose(got, want, atol=1e-6)
  # Every branch was exercised: blocked moves that slide along y, and ones that stay.
  assert (full & ~y_only).sum() > 300 and (full & y_only).sum() > 10
  # A larger step size cannot jump the wall either: from x = −0.3 to +0.3 below its top.
  big = pm.move(jnp.array([-0.3, -0.5]), jnp.array([1.0, 0.0]), step_size=0.6)
  np.testing.assert_allclose(big, [-0.3, -0.5])
  # Random starts are uniform over the free space: never in the wall, both sides, above.
  env = pm.PointMassEnv("right", random_start=True)
  starts = np.asarray(jax.vmap(lambda k: env.reset(k).obs)(
      jax.random.split(jax.random.PRNGKey(0), 4000)))
  assert not np.asarray(pm.in_wall(jnp.asarray(starts))).any()
  assert np.abs(starts).max() <= 1.0
  assert abs(np.mean(starts[:, 0] < 0) - 0.5) < 0.03
  assert abs(np.mean(starts[:, 1] > 0.4) - 1.2 / 3.86) < 0.03       # the free area above


def test_pointmass_rewards_at_known_points():
  pts = jnp.array([[0.0, 0.0], [1.0, 1.0], [-1.0, -1.0], [0.6, 0.0], [0.7, 0.7]])
  np.testing.assert_allclose(pm.reward("right", pts), [0.5, 1, 0, 0.8, 0.85], atol=1e-6)
  np.testing.assert_allclose(pm.reward("top", pts)[:3], [0.5, 1, 0], atol=1e-6)
  np.testing.assert_allclose(pm.reward("center", pts)[0], 1.0)
  np.testing.assert_allclose(pm.reward("center", jnp.array([0.3, 0.1])), np.exp(-1.0), rtol=1e-5)
  np.testing.assert_allclose(pm.reward("ring", pts)[3], 1.0)
  np.testing.assert_allclose(pm.reward("ring", pts)[0], np.exp(-18.0), rtol=1e-4)
  np.testing.assert_allclose(pm.reward("corner_top_right", pts)[0], 0.5, atol=1e-6)
  # Goal discs are closed, radius 0.1; success only for goal tasks.
  g = pm.goal_observation("center_top")
  np.testing.assert_allclose(g, [0.0, 0.7])
  edge = jnp.array([[0.0, 0.7], [0.0, 0.6], [0.0, 0.59], [0.08, 0.76]])
  np.testing.assert_array_equal(pm.success("sparse_goal_center_top", edge), [1, 1, 0, 1])
  np.testing.assert_array_equal(pm.reward("goal_center_top", edge), [1, 1, 0, 1])
  assert not np.asarray(pm.success("right", edge)).any()
  with pytest.raises(ValueError, match="unknown goal 'nowhere'"):
    pm.goal_observation("nowhere")
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


def test_four_rooms_doorways_and_walls():
  # Each doorway joins exactly two rooms, through its two opposite free neighbours.
  for r, c in gw.DOORWAYS:
    i = gw.cell_index(r, c)
    moved = [tuple(gw.CELLS[j]) for j in gw.NEXT_CELL[i][:4]]
    stays = [m == (r, c) for m in moved]
    assert stays in ([True, True, False, False], [False, False, True, True]), (r, c)
    rooms = {int(gw.ROOM[gw.NEXT_CELL[i][a]]) for a in range(4) if not stays[a]}
    assert len(rooms) == 2 and -1 not in rooms
  # Walls between rooms block away from the doorways: (2, 5) right, (5, 2) down; the
  # outer wall at (1, 1) up and left; stay stays.
  def nxt(cell, a):
    return tuple(gw.CELLS[gw.NEXT_CELL[gw.cell_index(*cell), a]])
  assert nxt((2, 5), RIGHT) == (2, 5) and nxt((3, 5), RIGHT) == (3, 6)
  assert nxt((5, 1), DOWN) == (5, 1) and nxt((5, 2), DOWN) == (6, 2) and nxt((6, 2), DOWN) == (7, 2)
  assert nxt((6, 9), DOWN) == (7, 9) and nxt((6, 8), DOWN) == (6, 8)
  assert nxt((1, 1), UP) == (1, 1) and nxt((1, 1), LEFT) == (1, 1) and nxt((4, 4), STAY) == (4, 4)
  with pytest.raises(ValueError, match="not a free cell"):
    gw.cell_index(0, 0)


def test_four_rooms_goal_tasks_terminate_only_when_sparse_and_truncate_at_the_horizon():
  # (2, 2) -> down -> (3, 2) -> right x 9 -> (3, 11) -> up x 2 -> (1, 11): 12 steps.
  path = [DOWN] + [RIGHT] * 9 + [UP] * 2
  states = _walk(gw.GridWorldEnv("sparse_goal_top_right"), path + [STAY] * 3)
  assert [bool(s.terminated) for s in states].index(True) == 11
  assert [float(s.reward) for s in states[:12]] == [0.0] * 11 + [1.0]
  assert not any(bool(s.truncated) for s in states)
  states = _walk(gw.GridWorldEnv("goal_top_right"), path + [STAY] * 88)
  assert not any(bool(s.terminated) for s in states)
  assert [bool(s.truncated) for s in states].index(True) == 99
  assert sum(float(s.reward) for s in states) == 89.0
  np.testing.assert_array_equal(states[-1].next_obs, gw.goal_observation("top_right"))
  assert gw.optimal_return("goal_top_right") == 89.0                 # the path is optimal


def test_truncation_with_auto_reset_keeps_the_true_final_observation():
  for name, action in (("pointmass/right", jnp.ones((2, 2))),
                       ("gridworld/room_top_right", jnp.full(2, RIGHT))):
    env = envs.make_batched(name, 2, max_episode_steps=3)
    step = jax.jit(env.step)
    s = jax.jit(env.reset)(jax.random.PRNGKey(0))
    first = np.asarray(s.obs)
    for t in range(3):
      prev = s
      s = step(s, action)
    assert np.asarray(s.truncated).all() and not np.asarray(s.terminated).any()
    np.testing.assert_array_equal(np.asarray(s.obs), first)          # the reset start
    final = np.asarray(s.next_obs)                                   # the true last one
    assert not np.array_equal(final, first)
    np.testing.assert_array_equal(np.asarray(prev.next_obs), np.asarray(prev.obs))
    if name.startswith("point"):
      np.testing.assert_allclose(final, [[-0.4, -0.4]] * 2, atol=1e-6)
    else:
      np.testing.assert_array_equal(final.argmax(-1), [gw.cell_index(2, 5)] * 2)
    np.testing.assert_array_equal(np.asarray(s.episode.returned_length), [3, 3])


def test_every_task_reward_is_the_module_reward_of_the_next_observation():
  # One jitted function per family steps 256 random states under every task.
  for module, cls, act in ((pm, pm.PointMassEnv, lambda k: jax.random.uniform(
      k, (256, 2), minval=-1, maxval=1)), (gw, gw.GridWorldEnv, lambda k: jax.random.randint(
          k, (256,), 0, 5))):

    @jax.jit
    def go(key):
      k0, k1 = jax.random.split(key)
      out = {}
      for task in module.TASKS:
        env = cls(task, random_start=True)
        s = jax.vmap(env.step)(jax.vmap(env.reset)(jax.random.split(k0, 256)), act(k1))
        out[task] = (s.reward, module.reward(task, s.next_obs), s.terminated,
                     module.success(task, s.next_obs), s.truncated)
      return out

    out = go(jax.random.PRNGKey(0))
    for task, (r, want_r, term, succ, trunc) in out.items():
      np.testing.assert_allclose(r, want_r, atol=1e-6, err_msg=task)
      np.testing.assert_array_equal(term, np.asarray(succ) & task.startswith("sparse_"))
      assert not np.asarray(trunc).any()
    successes = {t: int(np.asarray(v[3]).sum()) for t, v in out.items()
                 if t.startswith("sparse_")}
    assert sum(successes.values()) > 0, successes      # the goal branch was exercised


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


def test_four_rooms_slip_matches_the_tabular_mdp():
  # From (1, 5) (a corner next to the wall): slip 0.4 -> each action's next-cell
  # frequencies over 4000 draws match the tabular P within 4 standard errors.
  mdp = gw.to_tabular("diagonal", slip=0.4)
  env = gw.GridWorldEnv("diagonal", slip=0.4)
  cell = gw.cell_index(1, 5)
  s0 = env.reset(jax.random.PRNGKey(0)).replace(
      env_state={"cell": jnp.int32(cell), "steps": jnp.int32(0)})
  n = 4000

  @jax.jit
  def next_cells(key, a):
    keys = jax.random.split(key, n)
    return jax.vmap(lambda k: env.step(s0.replace(key=k), a).env_state["cell"])(keys)

  for a in range(5):
    freq = np.bincount(np.asarray(next_cells(jax.random.PRNGKey(a), a)), minlength=104) / n
    p = mdp.transitions[cell, a]
    assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-9)
  np.testing.assert_allclose(mdp.transitions[cell, RIGHT, cell], 0.6 + 0.4 * 3 / 5)
  with pytest.raises(ValueError, match="`slip`"):
    gw.GridWorldEnv("diagonal", slip=1.5)


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
  # Next to the goal: every step of the episode can be spent on it.
  near = (11, 10)
  assert gw.optimal_return("goal_bottom_right", horizon=5, start=near) == 5.0
  assert gw.optimal_return("sparse_goal_bottom_right", horizon=1, start=near) == 1.0
  assert gw.optimal_return("sparse_goal_bottom_right", horizon=1, start=(10, 10)) == 0.0
  assert gw.optimal_return("goal_bottom_right", horizon=3, start=near, gamma=0.5) == 1.75
  assert gw.optimal_return("diagonal", horizon=2, start=(11, 10)) == pytest.approx(2.0)
  np.testing.assert_allclose(v[gw.cell_index(*near)], 1.0)
  # With slip the optimum can only drop.
  assert gw.optimal_return("goal_bottom_right", slip=0.2) < gw.optimal_return("goal_bottom_right")
  with pytest.raises(ValueError, match="`gamma`"):
    gw.optimal_return("diagonal", gamma=0.0)


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


def test_dataset_coverage_and_exploration():
  big = offline.generate("pointmass", num_episodes=300, seed=0)
  assert offline.coverage(big) > 0.95 and big["policy"] == "sticky"
  # Sticky actions travel further in an episode than uniform ones.
  rand = offline.generate("pointmass", num_episodes=100, seed=0, policy="random")
  def travel(d):   # mean distance from an episode's first to its last position
    return np.linalg.norm(d["next_observation"][99::100] - d["observation"][::100], axis=-1).mean()
  assert travel(big) > 1.5 * travel(rand)
  grid = offline.generate("gridworld", num_episodes=50, seed=0)
  assert offline.coverage(grid) == 1.0 and grid["policy"] == "random"
  assert np.bincount(grid["action"], minlength=5).min() > 0.18 * len(grid["action"])


def test_dataset_round_trip_and_load_or_generate(tmp_path, data):
  path = str(tmp_path / "d.npz")
  offline.save(path, data)
  back = offline.load(path, env=data["env"])
  for k in offline.ARRAYS:
    np.testing.assert_array_equal(back[k], data[k])
  assert back["seed"] == 3 and back["policy"] == offline.DEFAULT_POLICY[data["env"]]
  assert back["format_version"] == 1 and back["num_episodes"] == 40
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
    (lambda d: d.update(terminated=d["terminated"].astype(np.int8)), "terminated"),
    (lambda d: d.pop("action"), "action"),
    (lambda d: d.update(env="cartpole"), "env"),
    (lambda d: d.update(policy=np.int64(3)), "policy"),
    (lambda d: d.update(num_episodes="forty"), "num_episodes"),
    (lambda d: d.update(episode=d["episode"] + 1), "episode"),
    (lambda d: d.update(truncated=d["truncated"][:-1]), "truncated"),
])
def test_load_rejects_corrupted_files(tmp_path, data, corrupt, key):
  bad = dict(data)
  corrupt(bad)
  path = str(tmp_path / "bad.npz")
  np.savez(path, **{k: np.asarray(v) for k, v in bad.items()})
  with pytest.raises(ValueError, match=f"`{key}`") as e:
    offline.load(path)
  assert "bad.npz" in str(e.value)


def test_generate_accepts_names_and_default_envs_only():
  a = offline.generate("gridworld", num_episodes=3, seed=5)
  for env in ("gridworld/goal_top_right", gw.GridWorldEnv("diagonal"),
              envs.make_batched("gridworld/diagonal", 2)):
    b = offline.generate(env, num_episodes=3, seed=5)
    assert b["env"] == "gridworld" and b["policy"] == "random"
    for k in offline.ARRAYS:
      np.testing.assert_array_equal(a[k], b[k])
  for bad, match in ((gw.GridWorldEnv("diagonal", slip=0.1), "non-default dynamics"),
                     (pm.PointMassEnv("right", horizon=50), "non-default dynamics"),
                     ("cartpole", "unknown env"), ("gridworld/nowhere", "unknown task")):
    with pytest.raises(ValueError, match=match):
      offline.generate(bad, num_episodes=3, seed=5)
  with pytest.raises(ValueError, match="`policy`"):
    offline.generate("gridworld", num_episodes=3, seed=5, policy="greedy")
  with pytest.raises(ValueError, match="`num_episodes`"):
    offline.generate("gridworld", num_episodes=0, seed=5)


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


def test_random_start_option_of_the_registry_and_the_control_config():
  """`random_start`: fixed starts by default, free-space starts when asked (also after
  an auto-reset), refused for tasks outside the zero-shot families."""
  for name, start in (("pointmass/sparse_goal_center_top", pm.START),
                      ("gridworld/goal_top_right", None)):
    fixed = envs.make_batched(name, 64).reset(jax.random.PRNGKey(0)).obs
    moved = envs.make_batched(name, 64, random_start=True).reset(jax.random.PRNGKey(0)).obs
    assert np.unique(np.asarray(fixed), axis=0).shape[0] == 1
    assert np.unique(np.asarray(moved), axis=0).shape[0] > 32
    if start is not None:
      np.testing.assert_allclose(fixed[0], start)
      assert not np.any(np.asarray(pm.in_wall(moved)))
  for bad in ("CartPole-v1", "tomato"):
    with pytest.raises(ValueError, match="random_start.*pointmass/<task>"):
      envs.make(bad, random_start=True)
  from rlcore.agents import control, ppo
  c = ppo.default_config()
  c.env_name, c.random_start = "cartpole", True
  with pytest.raises(ValueError, match="config.random_start"):
    ppo.validate_config(c)
  c.env_name = "pointmass/top"
  ppo.validate_config(c)
  assert control.make_env(c).reset(jax.random.PRNGKey(1)).obs.shape == (c.num_envs, 2)
