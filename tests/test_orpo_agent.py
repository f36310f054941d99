"""rlcore.agents.orpo: the reference flow, the regularisers, learning on a small budget."""

import os
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore.agents import control, get_family, orpo
from rlcore.agents.protocol import check_agent
from rlcore.envs import tomato
from tests.helpers import jit_quick_compile

REFERENCE_CONFIG = textwrap.dedent("""
    from rlcore import experiment
    from rlcore.agents import ppo

    def get_config(arg=None):
      c = experiment.with_runner_defaults(ppo.default_config())
      c.env_name = "tomato-true"
      c.num_envs, c.num_steps, c.total_timesteps = 4, 100, 400
      c.hidden_sizes = (16,)
      c.num_seeds, c.plot = 1, False
      return c
""")


@pytest.fixture(scope="module")
def reference_setup(tmp_path_factory):
  """A one-update PPO reference on the true reward (close to uniform), trained by
  `load_reference` through the runner because its workdir is empty."""
  root = tmp_path_factory.mktemp("orpo")
  path = root / "ref_config.py"
  path.write_text(REFERENCE_CONFIG)
  return str(path), str(root / "reference")


def _config(reference_setup, **kw):
  path, workdir = reference_setup
  c = orpo.default_config()
  c.num_envs, c.reference_envs, c.num_steps = 8, 8, 100
  c.total_timesteps = 8 * 100 * 40
  c.hidden_sizes = (16,)
  c.disc_hidden = (32,)
  c.disc_epochs, c.disc_minibatches, c.num_minibatches, c.update_epochs = 2, 4, 4, 4
  c.lr = 3e-3
  c.reference.config, c.reference.workdir = path, workdir
  for k, v in kw.items():
    c[k] = v
  return c


def test_reference_is_trained_first_then_read_from_its_checkpoint(reference_setup):
  config = _config(reference_setup)
  first = orpo.load_reference(config)
  assert os.path.exists(os.path.join(reference_setup[1], "summary.json"))
  again = orpo.load_reference(config)     # the finished run is read, not trained again
  for a, b in zip(jax.tree.leaves(first.params), jax.tree.leaves(again.params)):
    np.testing.assert_array_equal(a, b)
  config.reference.run = 1
  with pytest.raises(ValueError, match="reference.run = 1 is out of range"):
    orpo.load_reference(config)


def test_mixed_logits_are_the_epsilon_random_policy():
  logits = jnp.array([[2.0, -1.0, 0.5, 0.0]])
  p = np.exp(np.asarray(orpo.mixed_logits(logits, 0.1, 4)))
  expected = 0.9 * np.asarray(jax.nn.softmax(logits)) + 0.025
  np.testing.assert_allclose(p, expected, rtol=1e-6)
  np.testing.assert_allclose(np.exp(orpo.mixed_logits(logits, 0.0, 4)),
                             jax.nn.softmax(logits), rtol=1e-6)


@pytest.fixture(scope="module")
def sqrt_chi2_runs(reference_setup):
  """Two seeds at λ = 0 and λ = 1 (sqrt-χ² occupancy), vmapped in one call."""
  agent = check_agent(get_family("orpo").make_agent(_config(reference_setup)), "orpo")
  keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1, 0, 1)])
  coefs = jnp.array([0.0, 0.0, 1.0, 1.0])
  run = lambda k, c: agent.run_chunk(agent.init(k, {"reg_coef": c}), agent.num_updates)
  states, metrics = jit_quick_compile(jax.vmap(run))(keys, coefs)
  return agent, states, metrics


def _exact(agent, states, r):
  return agent.evaluate(jax.tree.map(lambda x: x[r], states))


def test_unregularised_ppo_learns_the_proxy_and_the_regulariser_holds_it_to_the_reference(
    sqrt_chi2_runs):
  agent, states, metrics = sqrt_chi2_runs
  ev = [_exact(agent, states, r) for r in range(4)]
  reference_proxy = ev[0]["reference_exact_proxy_return"]
  for r in (0, 1):    # λ = 0: the proxy return climbs well above the reference's
    assert ev[r]["exact_proxy_return"] > reference_proxy + 2.5, ev[r]
  for r in (2, 3):    # λ = 1: a much smaller occupancy χ² to the reference, same seed
    assert ev[r]["exact_chi2"] < 0.2 * ev[r - 2]["exact_chi2"], (ev[r], ev[r - 2])
    assert ev[r]["exact_proxy_return"] < ev[r - 2]["exact_proxy_return"]
  # The training metrics say the same: the discriminator tells the policies apart where
  # they differ, and the penalty is paid only at λ > 0.
  last = {k: np.asarray(v)[:, -1] for k, v in metrics.items()}
  assert (last["disc_accuracy"][:2] > 0.7).all()
  assert (last["penalty"][:2] == 0).all() and (last["penalty"][2:] != 0).all()
  assert np.isfinite(last["chi2_estimate"]).all()
  # The last update's true return (8 episodes of the policy before that update) agrees
  # with the exact return of the final policy to within the metric's own noise: 1 plus
  # twice its spread over the last 8 updates (about 0.1 at λ = 0, 1 at λ = 1).
  spread = np.asarray(metrics["true_return"])[:, -8:].std(1)
  np.testing.assert_array_less(
      np.abs(last["true_return"] - [e["exact_true_return"] for e in ev]), 1.0 + 2 * spread)


def test_action_kl_baseline_keeps_the_action_distribution_close(reference_setup):
  config = _config(reference_setup, regularizer="action_kl", total_timesteps=8 * 100 * 25)
  agent = orpo.make_agent(config)
  run = lambda c: agent.run_chunk(agent.init(jax.random.PRNGKey(2), {"reg_coef": c}),
                                  agent.num_updates)
  _, m = jit_quick_compile(jax.vmap(run))(jnp.array([0.0, 0.1]))
  div = np.asarray(m["action_divergence"])[:, -5:].mean(1)
  assert div[1] < 0.25 * div[0], div
  assert "disc_loss" not in m and not np.asarray(m["penalty"]).any()


def test_init_from_reference_starts_at_the_reference(reference_setup):
  config = _config(reference_setup, init_from_reference=True)
  agent = orpo.make_agent(config)
  state = agent.init(jax.random.PRNGKey(0))
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(state.ref_params)):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match="init_from_reference"):
    orpo.make_agent(_config(reference_setup, init_from_reference=True, hidden_sizes=(8,)))


def test_tomato_reward_recovery_matches_the_env():
  env = tomato.TomatoEnv()
  state = env.reset(jax.random.PRNGKey(0))
  for action in [0, 0, 2, 2, 3, 1, 1, 2, 2, 2, 0]:
    state = env.step(state, jnp.int32(action))
    true, proxy = env.rewards_of(state.next_obs)
    assert float(true) == pytest.approx(float(state.info["true_reward"]))
    assert float(proxy) == pytest.approx(float(state.info["proxy_reward"]))
  mdp = tomato.TomatoMDP(env)
  obs = env.observations(mdp.num_states)
  idx = int(tomato.state_index(state.env_state, env.layout.num_tomatoes))
  np.testing.assert_array_equal(obs[idx], state.obs)


@pytest.mark.parametrize("overrides, match", [
    ({"regularizer": "l2"}, "regularizer"),
    ({"occupancy": "action"}, "occupancy"),
    ({"disc_minibatches": 7}, "disc_minibatches"),
    ({"reference.epsilon": 1.0}, "reference.epsilon"),
    ({"penalty_clip": 0.0}, "penalty_clip"),
    ({"shaping.chain": "reward_scale"}, "shaping.chain"),
    ({"disc_hidden": ()}, "disc_hidden"),
])
def test_bad_configs_fail_naming_the_key(overrides, match):
  c = orpo.default_config()
  for k, v in overrides.items():
    sub, _, name = k.rpartition(".")
    (c[sub] if sub else c)[name] = v
  with pytest.raises(ValueError, match=match):
    orpo.validate_config(c)
