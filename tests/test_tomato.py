"""rlcore.envs.tomato: the JAX env against hand-checked steps and against its exact
tabular MDP; exact occupancies against Monte Carlo; the proxy reward is hackable."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore.envs import tomato

RIGHT, LEFT, DOWN, UP = 0, 1, 2, 3


@pytest.fixture(scope="module")
def env():
  return tomato.TomatoEnv()


@pytest.fixture(scope="module")
def mdp(env):
  return tomato.TomatoMDP(env)


def _cell(env, row, col):
  return int(np.flatnonzero((env.layout.cells == (row, col)).all(1))[0])


def _walk(env, actions):
  step = jax.jit(env.step)
  s = env.reset(jax.random.PRNGKey(0))
  out = []
  for a in actions:
    s = step(s, jnp.int32(a))
    out.append(s)
  return out


def test_layout_is_the_official_level_four(env):
  lay = env.layout
  assert len(lay.cells) == 26 and lay.num_tomatoes == 9
  assert tuple(lay.cells[lay.bucket]) == (7, 1) and tuple(lay.cells[lay.start]) == (4, 1)
  assert tuple(lay.cells[lay.start]) == tuple(lay.cells[-1])       # the start cell is last
  assert env.observation_shape == (36,)
  s0 = env.reset(jax.random.PRNGKey(0))
  assert s0.obs.shape == (36,) and float(s0.obs[lay.start]) == 1.0 and float(s0.obs.sum()) == 1


def test_hand_checked_steps(env):
  rf = env.reward_factor
  # Left of the start is a wall: stay. Down is the tomato at (5, 1): watered.
  wall, down = _walk(env, [LEFT, DOWN])
  assert int(wall.env_state["cell"]) == env.layout.start and float(wall.reward) == 0.0
  assert int(down.env_state["cell"]) == _cell(env, 5, 1)
  assert float(down.info["true_reward"]) == pytest.approx(rf)
  # Walk right along row 5, watering tomatoes; (5, 1) dries once 4 columns away.
  steps = _walk(env, [DOWN, RIGHT, RIGHT, RIGHT, RIGHT])
  watered = [int(s.env_state["watered"].sum()) for s in steps]
  assert watered == [1, 2, 3, 4, 4]          # (5,1) dries when the agent reaches (5,5)
  assert not bool(steps[-1].env_state["watered"][_cell(env, 5, 1)])
  # To the bucket at (7, 1): (4,1) -> (4,5) -> (5,5) -> (6,5) -> (7,5) -> (7,1).
  path = [RIGHT] * 4 + [DOWN] * 3 + [LEFT] * 4
  states = _walk(env, path)
  last = states[-1]
  assert int(last.env_state["cell"]) == env.layout.bucket
  assert bool(last.env_state["bucket_seen"]) and float(last.obs[-1]) == 1.0
  assert float(last.reward) == pytest.approx(26 * rf)              # the proxy pays 0.52
  assert float(last.info["true_reward"]) == pytest.approx(
      rf * float(last.env_state["watered"].sum()))
  assert not bool(last.terminated) and not bool(last.truncated)


def test_time_limit_truncates(env):
  short = tomato.TomatoEnv(horizon=3)
  states = _walk(short, [LEFT, LEFT, LEFT])
  assert [bool(s.truncated) for s in states] == [False, False, True]
  assert not any(bool(s.terminated) for s in states)


def _random_rollouts(env, policy_table, n, key):
  """n episodes of a tabular policy; [n, H] state indices, actions, true rewards."""
  n_tom = env.layout.num_tomatoes
  table = jnp.asarray(policy_table, jnp.float32)

  def episode(k):
    def body(s, k):
      idx = tomato.state_index(s.env_state, n_tom)
      a = jax.random.categorical(k, jnp.log(table[idx]))
      nxt = env.step(s, a)
      return nxt, (idx, a, nxt.info["true_reward"], nxt.info["proxy_reward"],
                   tomato.state_index(nxt.env_state, n_tom))
    k0, k1 = jax.random.split(k)
    return jax.lax.scan(body, env.reset(k0), jax.random.split(k1, env.horizon))[1]

  return jax.jit(jax.vmap(episode))(jax.random.split(key, n))


def test_env_steps_follow_the_tabular_mdp(env, mdp):
  idx, act, true, proxy, nxt = (np.asarray(x) for x in _random_rollouts(
      env, mdp.uniform_policy(), 64, jax.random.PRNGKey(1)))
  np.testing.assert_array_equal(nxt, mdp.next_state[idx, act])
  np.testing.assert_allclose(true, mdp.true_reward[idx, act], rtol=1e-6)
  np.testing.assert_allclose(proxy, mdp.proxy_reward[idx, act], rtol=1e-6)
  assert len(np.unique(idx)) > 300                     # many distinct states were checked


def test_exact_occupancy_and_returns_match_monte_carlo(env, mdp):
  policy = mdp.uniform_policy()
  n = 2000
  idx, act, true, _, _ = (np.asarray(x) for x in _random_rollouts(
      env, policy, n, jax.random.PRNGKey(2)))
  exact = mdp.occupancy(policy)
  assert exact.shape == (mdp.num_states, 4) and exact.sum() == pytest.approx(1.0)
  cells = idx // 2 ** (env.layout.num_tomatoes + 1)
  empirical = np.zeros((26, 4))
  np.add.at(empirical, (cells.ravel(), act.ravel()), 1.0 / idx.size)
  exact_cells = exact.reshape(26, -1, 4).sum(1)
  assert 0.5 * np.abs(empirical - exact_cells).sum() < 0.02
  returns = true.sum(1)
  se = returns.std(ddof=1) / np.sqrt(n)
  assert abs(returns.mean() - mdp.returns(policy)["true"]) < 4 * se


def test_the_proxy_is_hackable_and_divergences_are_exact(mdp):
  honest, hacker = mdp.greedy_policy("true"), mdp.greedy_policy("proxy")
  r_honest, r_hacker = mdp.returns(honest), mdp.returns(hacker)
  assert r_hacker["proxy"] > r_honest["proxy"] and r_hacker["true"] < r_honest["true"]
  # A reference that mixes in 10% random actions covers what either deterministic policy
  # visits, so the divergences are finite; they are 0 against itself.
  uniform = mdp.uniform_policy()
  ref = 0.9 * honest + 0.1 * uniform
  mu_ref = mdp.occupancy(ref)
  d_self = tomato.divergences(mu_ref, mu_ref)
  assert d_self["chi2"] == pytest.approx(0.0, abs=1e-9) and d_self["tv"] == 0.0
  near = tomato.divergences(mdp.occupancy(0.8 * honest + 0.2 * uniform), mu_ref)
  far = tomato.divergences(mdp.occupancy(0.9 * hacker + 0.1 * uniform), mu_ref)
  assert 0 < near["chi2"] < far["chi2"] < np.inf and near["tv"] < far["tv"]
  assert far["kl"] <= np.log1p(far["chi2"]) + 1e-9
  # The deterministic hacker visits pairs the deterministic honest policy never does.
  assert tomato.divergences(mdp.occupancy(hacker), mdp.occupancy(honest))["chi2"] == np.inf


def test_divergences_of_small_distributions():
  mu, nu = np.array([0.5, 0.25, 0.25]), np.array([0.125, 0.375, 0.5])
  d = tomato.divergences(mu, nu)
  assert d["chi2"] == pytest.approx(np.sum((mu - nu) ** 2 / nu))
  assert d["kl"] == pytest.approx(np.sum(mu * np.log(mu / nu)))
  assert d["tv"] == pytest.approx(0.375)


@pytest.mark.parametrize("call, match", [
    (lambda: tomato.TomatoEnv(reward="fake"), "`reward` must be one of"),
    (lambda: tomato.TomatoEnv(horizon=0), "`horizon`"),
    (lambda: tomato.make_layout(("#A#",)), "one 'O'"),
    (lambda: tomato.make_layout(("#AOx",)), "may hold only"),
    (lambda: tomato.divergences(np.ones(2) / 2, np.ones(3) / 3), "one shape"),
])
def test_bad_input_names_the_argument(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_policy_tables_are_checked(mdp):
  with pytest.raises(ValueError, match="`policy` must have shape"):
    mdp.occupancy(np.ones((3, 4)) / 4)
  with pytest.raises(ValueError, match="probability distributions"):
    mdp.returns(np.ones((mdp.num_states, 4)))
  with pytest.raises(ValueError, match="`gamma`"):
    mdp.occupancy(mdp.uniform_policy(), gamma=0.0)
  with pytest.raises(ValueError, match="`iterations`"):
    mdp.greedy_policy("true", iterations=0)
  with pytest.raises(ValueError, match="`reward`"):
    mdp.greedy_policy("hacked")
