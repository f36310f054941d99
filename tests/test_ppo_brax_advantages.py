"""config.advantages = "brax": PPO's advantages and targets recomputed in every minibatch
with the current critic over whole unrolls, as brax's PPO (`ppo.brax_advantages`)."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore.agents import ppo
from tests.helpers import assert_close

K, N, OBS = 6, 5, 3


def _critic(x):
  return 2.0 * x[..., 0] - x[..., 1]


def _inputs(seed, p_term=0.2, p_trunc=0.0):
  rng = np.random.default_rng(seed)
  f = lambda *s: rng.normal(size=s).astype(np.float32)
  return dict(values=f(K, N), reward=f(K, N), next_obs=f(K, N, OBS),
              terminated=rng.random((K, N)) < p_term,
              truncated=rng.random((K, N)) < p_trunc)


def _ours(x, gamma, lam, fn=ppo.brax_advantages):
  return fn(_critic, x["values"], x["reward"], x["next_obs"], x["terminated"],
            x["truncated"], gamma, lam)


def test_without_truncations_they_are_brax_compute_gae():
  """brax's own function is the reference (its truncation rule differs; none here)."""
  losses = pytest.importorskip("brax.training.agents.ppo.losses")
  x = _inputs(0)
  vs, adv = losses.compute_gae(
      truncation=jnp.zeros((K, N)), termination=jnp.asarray(x["terminated"], jnp.float32),
      rewards=x["reward"], values=x["values"],
      bootstrap_value=_critic(x["next_obs"][-1]), lambda_=0.95, discount=0.97)
  got_adv, got_target = _ours(x, 0.97, 0.95)
  assert_close(got_adv, adv)
  assert_close(got_target, vs)
  assert x["terminated"].any()


def _numpy_reference(x, gamma, lam):
  v, r = x["values"].astype(np.float64), x["reward"].astype(np.float64)
  term, trunc = x["terminated"], x["truncated"]
  adv, target = np.zeros((K, N)), np.zeros((K, N))
  for b in range(N):
    a_next, target_next = 0.0, 0.0
    for t in reversed(range(K)):
      cut = trunc[t, b] or t == K - 1
      if term[t, b]:
        nv = 0.0
      elif cut:
        nv = 2.0 * x["next_obs"][t, b, 0] - x["next_obs"][t, b, 1]
      else:
        nv = v[t + 1, b]
      gae = r[t, b] + gamma * nv - v[t, b]
      if not (cut or term[t, b]):
        gae += gamma * lam * a_next
      boot = 0.0 if term[t, b] else (nv if cut else target_next)
      adv[t, b] = r[t, b] + gamma * boot - v[t, b]
      target[t, b] = v[t, b] + gae
      a_next, target_next = gae, target[t, b]
  return adv, target


def test_truncations_bootstrap_from_the_critic_on_the_true_next_observation():
  x = _inputs(1, p_term=0.15, p_trunc=0.2)
  assert x["truncated"][:-1].any()
  adv, target = _numpy_reference(x, 0.9, 0.8)
  got_adv, got_target = _ours(x, 0.9, 0.8)
  assert_close(got_adv, adv)
  assert_close(got_target, target)


def test_jit_and_jit_vmap():
  xs = [_inputs(s, p_trunc=0.2) for s in (2, 3)]
  gammas, lams = np.array([0.9, 0.99], np.float32), np.array([0.5, 0.95], np.float32)
  f = lambda v, r, o, d, c, g, l: ppo.brax_advantages(_critic, v, r, o, d, c, g, l)
  stacked = [np.stack([x[k] for x in xs]) for k in ("values", "reward", "next_obs",
                                                     "terminated", "truncated")]
  adv, target = jax.jit(jax.vmap(f))(*stacked, gammas, lams)
  for i, x in enumerate(xs):
    ref_adv, ref_target = _numpy_reference(x, float(gammas[i]), float(lams[i]))
    assert_close(adv[i], ref_adv)
    assert_close(target[i], ref_target)
    one_adv, _ = jax.jit(f)(*[s[i] for s in stacked], gammas[i], lams[i])
    assert_close(one_adv, ref_adv)


def test_shapes_are_checked():
  x = _inputs(0)
  with pytest.raises(AssertionError):
    ppo.brax_advantages(_critic, x["values"][:, :2], x["reward"], x["next_obs"],
                        x["terminated"], x["truncated"], 0.9, 0.9)


def test_to_unrolls_keeps_each_env_s_consecutive_steps():
  t, b, k = 8, 3, 4
  x = 100 * np.arange(b)[None, :] + np.arange(t)[:, None]      # x[t, b] = 100 b + t
  got = np.asarray(ppo.to_unrolls(jnp.asarray(x), k))
  assert got.shape == (t // k * b, k)
  for j in range(t // k):
    for env in range(b):
      np.testing.assert_array_equal(got[j * b + env], 100 * env + np.arange(j * k, j * k + k))


def _one_update(advantages, gae_lambda):
  c = ppo.default_config()
  c.num_envs, c.num_steps, c.total_timesteps = 4, 8, 32
  c.hidden_sizes, c.gae_unroll, c.gae_lambda = (16,), 4, gae_lambda
  c.update_epochs, c.num_minibatches, c.advantages = 1, 1, advantages
  agent = ppo.make_agent(c)
  state, metrics = jax.jit(lambda s: agent.run_chunk(s, 1))(agent.init(jax.random.PRNGKey(0)))
  return jax.flatten_util.ravel_pytree(state.params)[0], metrics


def test_with_lambda_one_one_minibatch_it_is_the_rollout_gae():
  """With λ = 1 brax's advantage is the GAE advantage, and at the first minibatch the
  current critic is the rollout's: one epoch of one minibatch gives the same value loss
  and step as config.advantages = "rollout" (same gae_unroll cuts; 1e-9 apart here).
  With λ = 0.5 the value loss is still the same but the step is not (1.8e-5 apart:
  Adam's first step moves each parameter by about lr = 2.5e-4)."""
  rollout, m_rollout = _one_update("rollout", 1.0)
  brax, m_brax = _one_update("brax", 1.0)
  assert_close(m_brax["value_loss"], m_rollout["value_loss"], rtol=1e-5)
  assert float(jnp.max(jnp.abs(brax - rollout))) < 1e-6   # float rounding only
  rollout, m_rollout = _one_update("rollout", 0.5)
  brax, m_brax = _one_update("brax", 0.5)
  assert_close(m_brax["value_loss"], m_rollout["value_loss"], rtol=1e-5)
  assert float(jnp.max(jnp.abs(brax - rollout))) > 5e-6


@pytest.mark.parametrize("overrides,match", [
    (dict(advantages="gae"), r"config.advantages = 'gae'; expected one of \('rollout', 'brax'\)"),
    (dict(advantages="brax", gae_unroll=0), r"gae_unroll .*now 0\) > 0 dividing"),
    (dict(advantages="brax", gae_unroll=3), r"dividing config.num_steps = 8"),
    (dict(advantages="brax", gae_unroll=4, num_minibatches=64),
     r"32 unrolls into num_minibatches = 64"),
])
def test_bad_settings_name_the_keys(overrides, match):
  c = ppo.default_config()
  c.num_envs, c.num_steps = 16, 8
  for key, value in overrides.items():
    c[key] = value
  with pytest.raises(ValueError, match=match):
    ppo.validate_config(c)
