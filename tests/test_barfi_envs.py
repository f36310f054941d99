"""rlcore.envs.barfi: BARFI's GridWorld and CartPole with their heuristic rewards.

Expected values are worked out by hand from the task description (start, sub-steps of
0.045, regions), not from the code.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore.envs import barfi

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def _play(env, actions, key=0):
  """Steps `actions` eagerly; returns (rewards, aux, terminated, truncated, positions)."""
  step = jax.jit(env.step)
  s = env.reset(jax.random.PRNGKey(key))
  out = []
  for a in actions:
    s = step(s, jnp.asarray(a))
    out.append((float(s.reward), float(s.info[barfi.AUX_REWARD]), bool(s.terminated),
                bool(s.truncated), np.asarray(s.obs)))
  return [list(x) for x in zip(*out)]


def test_gridworld_shortest_path_reaches_the_goal():
  # x: 0.125 + 16 * 0.045 = 0.845 after four RIGHTs; y needs 14 sub-steps (0.755), i.e.
  # the second sub-step of the fourth UP: the goal on step 8, return 100 - 8 * 0.1.
  env = barfi.GridWorld("none", random_action_prob=0.0)
  r, aux, term, trunc, pos = _play(env, [RIGHT] * 4 + [UP] * 4)
  np.testing.assert_allclose(pos[-1], [0.845, 0.755], atol=1e-5)
  assert term == [False] * 7 + [True] and not any(trunc)
  np.testing.assert_allclose(sum(r), 99.2, atol=1e-4)
  assert aux == [0.0] * 8


def test_gridworld_distractor_pays_per_sub_step_inside_the_centre_square():
  # After RIGHT, RIGHT (x = 0.485) and UP (y = 0.305), the next UP's sub-steps reach
  # y = 0.35, 0.395, 0.44, 0.485: the last two are inside [0.4, 0.6]^2.
  env = barfi.GridWorld("bad", random_action_prob=0.0)
  _, aux, *_ = _play(env, [RIGHT, RIGHT, UP, UP])
  assert aux == [0.0, 0.0, 0.0, 100.0]


def test_gridworld_good_heuristic_uses_x_only():
  env = barfi.GridWorld("good", random_action_prob=0.0)
  _, aux, _, _, pos = _play(env, [RIGHT, UP])
  xs = 0.125 + 0.045 * np.arange(1, 5)
  np.testing.assert_allclose(aux[0], np.sum(-(xs - 0.87) ** 2 - 0.0144), rtol=1e-5)
  np.testing.assert_allclose(aux[1], 4 * (-(xs[-1] - 0.87) ** 2 - 0.0144), rtol=1e-5)


def test_gridworld_walls_stop_the_move_and_the_time_limit_truncates():
  env = barfi.GridWorld("good", random_action_prob=0.0)
  _, aux, term, trunc, pos = _play(env, [LEFT] + [DOWN] * 49)
  np.testing.assert_allclose(pos[0], [0.035, 0.125], atol=1e-6)   # 0.08, 0.035, then wall
  np.testing.assert_allclose(aux[0], 2 * -0.0144 - (0.08 - 0.87) ** 2 - (0.035 - 0.87) ** 2,
                             rtol=1e-5)
  assert trunc == [False] * 49 + [True] and not any(term)
  assert aux[-1] == 0.0      # the heuristic is 0 on the step that ends the episode


def test_gridworld_random_actions_at_ten_percent():
  env = barfi.GridWorld("none")
  states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 4000))
  nxt = jax.jit(jax.vmap(env.step))(states, jnp.full(4000, UP))
  moved_up = np.asarray(nxt.obs[:, 1] > 0.125)
  # A replaced action is uniform over 4, so 3/4 of the 10% go elsewhere.
  assert abs((1 - moved_up.mean()) - 0.075) < 0.015


def _pd_episode(env, key, follow=True):
  s = env.reset(jax.random.PRNGKey(key))
  step = jax.jit(env.step)
  ret, aux, n = 0.0, [], 0
  while True:
    angle = float(s.obs[2])
    pd = int(0.1 * angle + 0.5 * (angle - float(s.info["pd.prev_angle"])) > 0)
    s = step(s, jnp.asarray(pd if follow else 1 - pd))
    ret += float(s.reward)
    aux.append(float(s.info[barfi.AUX_REWARD]))
    n += 1
    if bool(s.terminated | s.truncated):
      return ret, aux, n


def test_cartpole_pd_controller_balances_and_heuristics_score_it():
  ret, aux, n = _pd_episode(barfi.CartPolePD("helpful"), 0)
  assert ret >= 200                         # the PD controller is a good policy
  assert aux == [1.0] * (n - 1) + [0.0]     # agrees every step; 0 on the last
  _, aux, n = _pd_episode(barfi.CartPolePD("misleading"), 0)
  assert aux == [-5.0] * (n - 1) + [0.0]
  ret_bad, aux, n = _pd_episode(barfi.CartPolePD("misleading"), 0, follow=False)
  assert ret_bad < 50 and aux == [1.0] * (n - 1) + [0.0]
  _, aux, n = _pd_episode(barfi.CartPolePD("noisy"), 0)
  assert all(-5.0 <= a <= 0.0 for a in aux[:-1]) and len(set(aux[:-1])) > 1


def test_envs_vmap_and_jit_agree():
  env = barfi.CartPolePD("noisy")
  keys = jax.random.split(jax.random.PRNGKey(2), 3)
  batched = jax.jit(jax.vmap(env.reset))(keys)
  stepped = jax.jit(jax.vmap(env.step))(batched, jnp.asarray([0, 1, 1]))
  for i in range(3):
    one = env.step(env.reset(keys[i]), jnp.asarray([0, 1, 1][i]))
    np.testing.assert_allclose(stepped.obs[i], one.obs, rtol=1e-6)
    np.testing.assert_allclose(stepped.info[barfi.AUX_REWARD][i], one.info[barfi.AUX_REWARD],
                               rtol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: barfi.GridWorld("misleading"), "`aux` must be one of"),
    (lambda: barfi.CartPolePD("bad"), "`aux` must be one of"),
    (lambda: barfi.make("maze", "none"), "`task` must be one of"),
])
def test_bad_names(call, match):
  with pytest.raises(ValueError, match=match):
    call()
