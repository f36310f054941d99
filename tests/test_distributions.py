"""The continuous action distributions of rlcore.nets.mlp against numpy and brax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore.nets import mlp


def _softplus(x):
  return np.logaddexp(0.0, x)


def _np_tanh_normal_log_prob(h, u, min_std=0.001):
  """log density of tanh(u) at tanh(u), u ~ N(loc, scale²): Gaussian − log(1 − tanh² u)."""
  size = h.shape[-1] // 2
  loc, scale = h[..., :size], _softplus(h[..., size:]) + min_std
  gauss = -0.5 * ((u - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
  return np.sum(gauss - np.log1p(-np.tanh(u) ** 2), -1)


def _heads(key, batch=7, size=3):
  return np.asarray(jax.random.normal(jax.random.PRNGKey(key), (batch, 2 * size)),
                    np.float64)


def test_tanh_normal_log_prob_matches_numpy():
  dist = mlp.tanh_normal(3)
  h = _heads(0)
  u = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (7, 3)), np.float64) * 1.5
  got = dist.log_prob(jnp.asarray(h, jnp.float32), jnp.asarray(u, jnp.float32))
  np.testing.assert_allclose(got, _np_tanh_normal_log_prob(h, u), rtol=1e-5, atol=1e-5)


def test_tanh_normal_density_of_the_squashed_action_integrates_to_one():
  """exp(log_prob(u)) is the density of a = tanh(u): ∫ p da over (−1, 1) = 1."""
  dist = mlp.tanh_normal(1)
  for loc, raw_scale in [(0.0, 0.0), (1.2, -1.0), (-0.5, 1.0)]:
    a = np.linspace(-1, 1, 400_001)[1:-1]
    u = np.arctanh(a)
    h = np.broadcast_to(np.array([loc, raw_scale]), (a.size, 2))
    density = np.exp(_np_tanh_normal_log_prob(h, u[:, None]))
    np.testing.assert_allclose(np.trapezoid(density, a), 1.0, atol=2e-3)
    got = np.exp(np.asarray(dist.log_prob(jnp.asarray(h[::1000], jnp.float32),
                                          jnp.asarray(u[::1000, None], jnp.float32))))
    np.testing.assert_allclose(got, density[::1000], rtol=1e-3, atol=1e-6)


def test_tanh_normal_entropy_estimate_is_unbiased():
  """E_ε[entropy(h, key)] = −E_u[log π(u)], the entropy of tanh(u)."""
  dist = mlp.tanh_normal(2)
  h = jnp.asarray([[0.8, -0.3, 0.5, -1.5]], jnp.float32)
  keys = jax.random.split(jax.random.PRNGKey(3), 40_000)
  estimates = jax.vmap(lambda k: dist.entropy(h, k))(keys)[:, 0]
  u = jax.vmap(lambda k: dist.sample(k, h))(jax.random.split(jax.random.PRNGKey(4), 40_000))
  monte_carlo = -jnp.mean(jax.vmap(lambda x: dist.log_prob(h, x))(u))
  se = float(jnp.std(estimates)) / np.sqrt(len(keys))
  assert abs(float(jnp.mean(estimates)) - float(monte_carlo)) < 5 * se + 1e-2
  # and it is below the Gaussian's: squashing only removes entropy
  gaussian = float(jnp.sum(jnp.log(jax.nn.softplus(h[0, 2:]) + 0.001))
                   + np.log(2 * np.pi * np.e))
  assert float(jnp.mean(estimates)) < gaussian - 0.1


def test_tanh_normal_entropy_gradient_reaches_the_scale():
  """The estimate is reparameterised: its gradient in the scale matches finite differences."""
  dist = mlp.tanh_normal(2)
  key = jax.random.PRNGKey(5)
  h = jnp.asarray([0.4, -0.9, 0.2, 0.7], jnp.float64 if jax.config.x64_enabled else
                  jnp.float32)
  f = lambda x: dist.entropy(x, key)
  grad = np.asarray(jax.grad(f)(h))
  eps = 1e-2
  fd = [(float(f(h.at[i].add(eps))) - float(f(h.at[i].add(-eps)))) / (2 * eps)
        for i in range(4)]
  np.testing.assert_allclose(grad, fd, rtol=2e-2, atol=2e-3)
  assert np.all(np.abs(grad) > 1e-3)   # loc and scale both move the estimate


def test_tanh_normal_matches_brax():
  distribution = pytest.importorskip("brax.training.distribution")
  theirs = distribution.NormalTanhDistribution(event_size=3)
  ours = mlp.tanh_normal(3)
  h = jnp.asarray(_heads(6), jnp.float32)
  key = jax.random.PRNGKey(7)
  u = theirs.sample_no_postprocessing(h, key)
  np.testing.assert_allclose(ours.sample(key, h), u, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(ours.log_prob(h, u), theirs.log_prob(h, u), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ours.entropy(h, key), theirs.entropy(h, key), rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(ours.postprocess(ours.mode(h)), theirs.mode(h), rtol=1e-6)


def test_tanh_normal_under_jit_and_jit_vmap():
  dist = mlp.tanh_normal(3)
  h = jnp.asarray(_heads(8, batch=4), jnp.float32)
  keys = jax.random.split(jax.random.PRNGKey(9), 4)
  u = jax.vmap(dist.sample)(keys, h)
  f = lambda hi, ui, k: jnp.stack([dist.log_prob(hi, ui), dist.entropy(hi, k)])
  eager = np.stack([f(h[i], u[i], keys[i]) for i in range(4)])
  jitted = np.stack([jax.jit(f)(h[i], u[i], keys[i]) for i in range(4)])
  np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(jax.jit(jax.vmap(f))(h, u, keys), eager, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(_np_tanh_normal_log_prob(np.asarray(h, np.float64),
                                                      np.asarray(u, np.float64)),
                             eager[:, 0], rtol=1e-5, atol=1e-5)


def test_tanh_normal_refuses_a_missing_key_and_a_wrong_head():
  dist = mlp.tanh_normal(3)
  with pytest.raises(ValueError, match="key"):
    dist.entropy(jnp.zeros((6,)))
  with pytest.raises(ValueError, match="2 \\* action_size = 6"):
    dist.log_prob(jnp.zeros((4,)), jnp.zeros((3,)))


def test_state_dependent_scale_head_and_squashed_policy():
  """With `state_dependent_scale` the head has loc and scale per action, no log_std."""
  net = mlp.ActorCritic(2, False, (8,), "tanh", state_dependent_scale=True)
  params = net.init(jax.random.PRNGKey(0), jnp.zeros((5,)))["params"]
  assert "log_std" not in params and params["actor_head"]["kernel"].shape == (8, 4)
  head, value = net.apply({"params": params}, jnp.ones((10, 5)))
  assert head.shape == (10, 4) and value.shape == (10,)
  dist = mlp.tanh_normal(2)
  # the 0.01-gain head starts near loc 0, scale softplus(0) + 0.001
  np.testing.assert_allclose(jax.nn.softplus(head[:, 2:]) + 0.001, np.log(2) + 0.001,
                             atol=0.02)
  actions = dist.postprocess(dist.sample(jax.random.PRNGKey(1), jnp.tile(head[:1], (2000, 1))))
  assert float(jnp.max(jnp.abs(actions))) < 1
  # the spread of tanh(u) for u ~ N(0, 0.694²): numpy's draw of the same law
  ref = np.tanh(np.random.default_rng(0).normal(0, np.log(2) + 0.001, 200_000))
  assert float(jnp.std(actions)) == pytest.approx(ref.std(), rel=0.06)
