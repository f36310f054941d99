"""rlcore.features: the coupled Fourier basis and the linear map with a transposed copy."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore import features
from tests.helpers import assert_close, check_jit_and_vmap


def _ref_fourier(x, order):
  """cos(π c·x) for c in itertools.product(range(order + 1), repeat=D), in numpy."""
  c = np.array(list(itertools.product(range(order + 1), repeat=x.shape[-1])), np.float64)
  return np.cos(np.pi * np.asarray(x, np.float64) @ c.T)


@pytest.mark.parametrize("order,dim", [(0, 3), (1, 1), (3, 2), (3, 4), (5, 3)])
def test_fourier_features_match_the_cosine_of_every_frequency(order, dim):
  x = np.random.default_rng(order * 10 + dim).uniform(size=(4, 7, dim)).astype(np.float32)
  assert_close(features.fourier_basis(order, dim),
               np.array(list(itertools.product(range(order + 1), repeat=dim))))
  out = features.fourier_features(jnp.asarray(x), order)
  assert out.shape == (4, 7, (order + 1) ** dim)
  assert_close(out, _ref_fourier(x, order), rtol=0, atol=2e-5)
  # Endpoints of the scaled range, where cos(kπ) alternates in sign.
  ends = np.array([[0.0] * dim, [1.0] * dim], np.float32)
  assert_close(features.fourier_features(ends, order), _ref_fourier(ends, order), rtol=0,
               atol=2e-5)


def test_fourier_features_under_jit_and_vmap_and_from_trig_transposed():
  x = np.random.default_rng(0).uniform(size=(3, 50, 4)).astype(np.float32)
  check_jit_and_vmap(lambda v: features.fourier_features(v, 3),
                     lambda v: _ref_fourier(v, 3), (x,), rtol=0, atol=2e-5)
  from_trig_t = lambda v: features.fourier_features_from_trig(
      *features.fourier_trig(v), 3, transpose=True)
  check_jit_and_vmap(from_trig_t, lambda v: _ref_fourier(v, 3).T, (x,), rtol=0, atol=2e-5)
  c, s = features.fourier_trig(x)
  assert_close(c, np.cos(np.pi * x), rtol=0, atol=1e-6)
  assert_close(s, np.sin(np.pi * x), rtol=0, atol=1e-6)


def _problem(seed=0, n=60, f=16, k=3):
  rng = np.random.default_rng(seed)
  feats = jnp.asarray(rng.normal(size=(n // 6, 6, f)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(f, k)), jnp.float32)
  target = jnp.asarray(rng.normal(size=(n // 6, 6, k)), jnp.float32)
  return feats, feats.reshape(n, f).T, kernel, target


def _loss(linear, kernel, target, scale):
  return jnp.sum(jnp.tanh(scale * linear(kernel)) * target) + jnp.sum(linear(kernel) ** 2)


def test_features_linear_has_the_plain_products_values_and_derivatives():
  feats, feats_t, kernel, target = _problem()
  fast = lambda k: features.features_linear(feats, k, feats_t)
  plain = lambda k: feats @ k
  assert_close(fast(kernel), plain(kernel), rtol=1e-6, atol=1e-5)
  g = lambda lin: jax.grad(lambda k: _loss(lin, k, target, 0.7))
  assert_close(g(fast)(kernel), g(plain)(kernel), rtol=1e-5, atol=1e-4)
  p = jnp.ones_like(kernel) * 0.3
  hvp = lambda lin: jax.jvp(g(lin), (kernel,), (p,))[1]
  assert_close(hvp(fast), hvp(plain), rtol=1e-5, atol=1e-4)
  # Reverse over reverse, with respect to another input of the loss (as BARFI's
  # mixed second derivative does).
  mixed = lambda lin: jax.grad(lambda s: jnp.vdot(
      jax.grad(lambda k: _loss(lin, k, target, s))(kernel), p))(0.7)
  assert_close(mixed(fast), mixed(plain), rtol=1e-5, atol=1e-4)
  # Under jit(vmap): a batch of kernels.
  ks = jnp.stack([kernel, 2 * kernel, -kernel])
  out = jax.jit(jax.vmap(g(fast)))(ks)
  assert_close(out, jax.vmap(g(plain))(ks), rtol=1e-5, atol=1e-4)


def test_bad_inputs_name_the_argument():
  feats, feats_t, kernel, _ = _problem()
  with pytest.raises(ValueError, match="features_t"):
    features.features_linear(feats, kernel, feats_t[:, :-1])
  with pytest.raises(ValueError, match="features"):
    features.features_linear(feats[..., :-1], kernel, feats_t)
  with pytest.raises(ValueError, match="kernel"):
    features.features_linear(feats, kernel[0], feats_t)
  with pytest.raises(ValueError, match="order"):
    features.fourier_features(jnp.zeros((2, 3)), -1)
  with pytest.raises(ValueError, match="order"):
    features.fourier_basis(1.5, 2)
  with pytest.raises(ValueError, match="transpose"):
    features.fourier_features_from_trig(jnp.zeros((2, 3, 4)), jnp.zeros((2, 3, 4)), 2,
                                        transpose=True)
  with pytest.raises(ValueError, match="sin_pix"):
    features.fourier_features_from_trig(jnp.zeros((2, 4)), jnp.zeros((2, 3)), 2)
  with pytest.raises(ValueError, match="x"):
    features.fourier_trig(jnp.zeros(()))
