"""Control agents: learning on small budgets, sweeps by vmap, the shaping hook, config errors."""

import dataclasses
import pathlib
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlcore
from rlcore import experiment
from rlcore.agents import control, ppo, reinforce
from tests.helpers import jit_quick_compile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _cartpole(**overrides):
  return experiment.override(ppo.default_config(), {"total_timesteps": 512 * 60, **overrides})


@pytest.fixture(scope="module")
def ppo_run():
  train = jax.jit(jax.vmap(ppo.make_train(_cartpole())))
  return train(jax.random.split(jax.random.key(0), 2))


def test_ppo_learns_cartpole_on_a_small_budget(ppo_run):
  _, m = ppo_run
  ret = np.asarray(m["episode_return"])
  assert ret.shape == (2, 60)
  assert np.all(ret[:, :3].mean(1) < 40)          # random policy: ~22
  assert np.all(ret[:, -5:].mean(1) > 120), ret[:, -5:]
  assert np.asarray(m["env_steps"])[0, -1] == 512 * 60


def test_ppo_losses_are_finite_and_kl_small(ppo_run):
  _, m = ppo_run
  for k in ("loss", "actor_loss", "value_loss", "entropy", "approx_kl"):
    assert np.all(np.isfinite(np.asarray(m[k]))), k
  assert np.abs(np.asarray(m["approx_kl"])).max() < 0.1
  lr = np.asarray(m["learning_rate"])[0]
  np.testing.assert_allclose(lr[0], 2.5e-4, rtol=1e-6)
  assert lr[-1] < lr[0] / 30   # annealed linearly


def test_reinforce_learns_cartpole():
  c = _cartpole(num_envs=8, lr=1e-3, gae_lambda=1.0, total_timesteps=1024 * 80)
  _, m = jax.jit(jax.vmap(reinforce.make_train(c)))(jax.random.split(jax.random.key(1), 2))
  ret = np.asarray(m["episode_return"])
  assert np.all(ret[:, -5:].mean(1) > 2.5 * ret[:, :3].mean(1)), ret[:, -5:]


def test_ppo_learns_pendulum_continuous():
  c = experiment.load_config(str(ROOT / "configs" / "ppo_pendulum.py"))
  c.total_timesteps = 16 * 128 * 60
  _, m = jax.jit(ppo.make_train(c))(jax.random.key(0))
  ret = np.asarray(m["episode_return"])
  assert np.isnan(ret[0])             # no 200-step episode has ended after 128 steps
  ret = ret[np.isfinite(ret)]
  assert ret[-5:].mean() > ret[:5].mean() + 150, (ret[:5], ret[-5:])


def test_hyperparameter_sweep_by_vmap_matches_separate_runs():
  c = _cartpole(total_timesteps=512 * 3)
  agent = ppo.make_agent(c)
  train = ppo.make_train(c)
  hp = agent.default_hparams()
  hps = dict(lr=jnp.array([2.5e-4, 1e-3]), ent_coef=jnp.array([0.01, 0.0]))   # partial
  key = jax.random.key(3)
  swept, _ = jit_quick_compile(jax.vmap(train, in_axes=(None, 0)))(key, hps)
  single, _ = jit_quick_compile(train)(key, dict(hp, lr=jnp.float32(1e-3), ent_coef=jnp.float32(0.0)))
  for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(swept.params)):
    np.testing.assert_allclose(np.asarray(b[1]), np.asarray(a), rtol=2e-5, atol=2e-6)
  diff = [np.abs(np.asarray(b[0] - b[1])).max() for b in jax.tree.leaves(swept.params)]
  assert max(diff) > 1e-3


def test_zero_scale_potential_shaping_is_exactly_no_shaping():
  c0 = _cartpole(total_timesteps=512 * 3)
  c1 = _cartpole(total_timesteps=512 * 3, **{"shaping.chain": "potential_based",
                                             "shaping.potential": "cartpole_upright",
                                             "shaping.scale": 0.0})
  k = jax.random.key(5)
  s0, _ = jit_quick_compile(ppo.make_train(c0))(k)
  s1, m1 = jit_quick_compile(ppo.make_train(c1))(k)
  for a, b in zip(jax.tree.leaves(s0.params), jax.tree.leaves(s1.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(np.asarray(m1["shaped_return"]), np.asarray(m1["episode_return"]))


def test_shaped_return_telescopes_with_gamma_one():
  """γ = 1 and Φ(terminal) = 0: a terminated episode's shaped return is R − Φ(s_0)."""
  c = _cartpole(total_timesteps=512 * 4, gamma=1.0,
                **{"shaping.chain": "potential_based", "shaping.potential": "cartpole_upright",
                   "shaping.scale": 1.0})
  _, m = jit_quick_compile(ppo.make_train(c))(jax.random.key(2))
  gap = np.asarray(m["episode_return"]) - np.asarray(m["shaped_return"])
  # Φ(s_0) for |x|, |θ| <= 0.05 lies in [0.87, 1]; early episodes all terminate.
  assert np.all((gap > 0.86) & (gap <= 1.0 + 1e-5)), gap


@pytest.mark.parametrize("unroll", [0, 2, 4])
def test_advantages_bootstrap_from_the_true_next_observation_on_truncation(unroll):
  """A numpy GAE loop; with gae_unroll = k the recursion is also cut after every k-th
  step, bootstrapping from the critic there (brax's unrolls)."""
  c = _cartpole(gae_unroll=unroll)
  agent = ppo.make_agent(c)
  params = agent.init(jax.random.key(0)).params
  T, B = 6, 2
  rng = np.random.default_rng(0)
  obs = jnp.asarray(rng.normal(size=(T, B, 4)), jnp.float32)
  next_obs = jnp.asarray(rng.normal(size=(T, B, 4)), jnp.float32)
  terminated = jnp.zeros((T, B), bool).at[2, 0].set(True)
  truncated = jnp.zeros((T, B), bool).at[3, 1].set(True)
  _, value = agent.network.apply(params, obs)
  zeros = jnp.zeros((T, B))
  transition = rlcore.Transition(obs=obs, action=jnp.zeros((T, B), jnp.int32),
                                 reward=jnp.ones((T, B)), next_obs=next_obs,
                                 terminated=terminated, truncated=truncated,
                                 valid=jnp.ones((T, B), bool))
  _, v_next = agent.network.apply(params, next_obs)
  traj = control.Rollout(transition=transition, obs=obs, next_obs=next_obs, value=value,
                         next_value=v_next, log_prob=zeros, episode_return=zeros,
                         episode_length=zeros, episode_done=jnp.zeros((T, B), bool))
  hp = agent.default_hparams()
  shaped, _, adv = control.shaped_advantages(c, traj, (), hp, None)
  v, vn = np.asarray(value), np.asarray(v_next)
  g, lam = 0.99, 0.95
  expected = np.zeros((T, B))
  for b in range(B):
    a = 0.0
    for t in reversed(range(T)):
      term, trunc = bool(terminated[t, b]), bool(truncated[t, b])
      trunc = trunc or (unroll > 0 and t % unroll == unroll - 1)
      delta = 1.0 + g * (0.0 if term else vn[t, b]) - v[t, b]
      a = delta + (0.0 if (term or trunc) else g * lam * a)
      expected[t, b] = a
  np.testing.assert_allclose(np.asarray(adv), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(shaped), 1.0)


@pytest.mark.slow
def test_rollout_next_values_are_the_critic_on_the_true_next_observations():
  """Time limit 15 with 60 steps: several truncations per env (several chunks), with
  terminations and normalised observations; two vmapped runs."""
  c = _cartpole(num_envs=3, num_steps=60, max_episode_steps=15, normalize_obs=True)
  agent = ppo.make_agent(c)
  rollout = control.make_rollout(agent.env, agent.network, agent.distribution, 60,
                                 lambda s: s)

  def run(key):
    state = agent.init(key)
    return rollout(state.params, state.env_state, state.key)[2], state.params

  batched = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(2), 2))
  apply = jax.jit(agent.network.apply)
  for i in range(2):
    traj, params = jax.tree.map(lambda x, i=i: x[i], batched)
    t = traj.transition
    assert int(t.truncated.sum()) > 2 * 3 and int(t.terminated.sum()) > 0
    _, v_next = apply(params, traj.next_obs)
    want = np.where(np.asarray(t.terminated), 0.0, np.asarray(v_next))
    np.testing.assert_allclose(np.asarray(traj.next_value), want, rtol=1e-5, atol=1e-6)
    _, v = apply(params, traj.obs)
    np.testing.assert_allclose(np.asarray(traj.value), np.asarray(v), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pattern", ["none", "few", "all"])
def test_next_values_from_shifted_against_numpy(pattern):
  T, B = 5, 3
  rng = np.random.default_rng(0)
  shifted = rng.normal(size=(T, B)).astype(np.float32)
  next_obs = rng.normal(size=(T, B, 2)).astype(np.float32)
  truncated = {"none": np.zeros((T, B), bool), "all": np.ones((T, B), bool),
               "few": rng.random((T, B)) < 0.3}[pattern]
  terminated = (rng.random((T, B)) < 0.2) & ~truncated
  critic = lambda x: x @ jnp.array([1.5, -2.0])
  got = jax.jit(lambda *a: control.next_values_from_shifted(critic, *a))(
      shifted, next_obs, terminated, truncated)
  want = np.where(truncated, next_obs @ np.array([1.5, -2.0]), shifted)
  want = np.where(terminated, 0.0, want)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("overrides, match", [
    (dict(num_minibatches=3), r"4 \* 128 = 512 is not divisible by num_minibatches = 3"),
    (dict(num_envs=0), "num_envs must be a positive integer"),
    (dict(activation="gelu"), "activation.*tanh"),
    (dict(env_name="Cartpole"), "config.env_name: 'Cartpole' is not allowed.*CartPole-v1"),
    ({"shaping.chain": "potential_based,laser"}, "unknown transform 'laser'"),
    ({"shaping.chain": "potential_based", "shaping.potential": "upright"},
     "unknown potential 'upright'"),
    (dict(total_timesteps=100), "smaller than one update's batch"),
    (dict(gae_unroll=-1), "config.gae_unroll must be a non-negative integer, got -1"),
    (dict(obs_clip=0.0), r"config.obs_clip must be a number > 0 \(inf: no clipping\), got 0.0"),
    (dict(action_distribution="beta"),
     "config.action_distribution: 'beta' is not allowed; choose one of normal, tanh_normal"),
])
def test_bad_configs_fail_with_the_value_and_what_is_allowed(overrides, match):
  with pytest.raises(ValueError, match=match):
    ppo.make_agent(_cartpole(**overrides))


def test_hparams_keys_are_checked():
  agent = ppo.make_agent(_cartpole())
  with pytest.raises(ValueError, match="unknown keys \\['learning_rate'\\]"):
    agent.init(jax.random.key(0), dict(agent.default_hparams(), learning_rate=1.0))
  partial = agent.init(jax.random.key(0), {"lr": 1e-3})
  assert float(partial.hparams["lr"]) == np.float32(1e-3)
  assert float(partial.hparams["gamma"]) == np.float32(0.99)


def test_partial_hparams_fill_from_the_config():
  agent = ppo.make_agent(_cartpole())
  partial = agent.init(jax.random.key(0), {"lr": 1e-3})
  assert float(partial.hparams["lr"]) == np.float32(1e-3)
  assert float(partial.hparams["gamma"]) == np.float32(0.99)


def test_tanh_normal_policy_acts_through_the_squashing_in_the_action_box():
  """Rollouts store the pre-tanh u (what log_prob reads) and step the env with
  mid + half · tanh(u), Pendulum's box [-2, 2]; the greedy action is 2 tanh(loc)."""
  c = experiment.override(ppo.default_config(), dict(
      env_name="Pendulum-v1", num_envs=4, num_steps=8, total_timesteps=32,
      normalize_obs=False, action_distribution="tanh_normal"))
  agent = ppo.make_agent(c)
  state = agent.init(jax.random.PRNGKey(0))
  params = jax.tree.map(lambda x: x, state.params)
  params["params"]["actor_head"]["bias"] = jnp.asarray([2.5, 0.0])   # loc 2.5: |u| past 2
  rollout = control.make_rollout(agent.env, agent.network, agent.distribution, 8,
                                 lambda s: s)
  _, _, traj = rollout(params, state.env_state, jax.random.PRNGKey(1))
  u = traj.transition.action
  assert u.shape == (8, 4, 1) and float(jnp.max(jnp.abs(u))) > 3
  # replaying the env with 2 tanh(u) gives the stored next observations
  env_state = state.env_state
  for t in range(8):
    env_state = agent.env.step(env_state, 2 * jnp.tanh(u[t]))
    np.testing.assert_allclose(env_state.next_obs, traj.next_obs[t], rtol=1e-5, atol=1e-5)
  head, _ = agent.network.apply(params, traj.obs)
  assert np.all(np.isfinite(np.asarray(agent.distribution.log_prob(head, u))))
  greedy = agent.policy(params, traj.obs[0])
  np.testing.assert_allclose(greedy, 2 * jnp.tanh(head[0, :, :1]), rtol=1e-6)
  sampled = jax.vmap(lambda k: agent.policy(params, traj.obs[0, 0], k))(
      jax.random.split(jax.random.PRNGKey(2), 500))
  assert float(jnp.max(jnp.abs(sampled))) < 2 and float(jnp.max(jnp.abs(sampled))) > 1


def test_tanh_normal_needs_a_bounded_box():
  c = _cartpole(env_name="Pendulum-v1", action_distribution="tanh_normal")
  spec = control.make_env(c).action_spec
  env = types.SimpleNamespace(action_spec=dataclasses.replace(spec, high=None))
  with pytest.raises(ValueError, match="'tanh_normal' needs a bounded action box"):
    control.make_network(env, c)
