"""Token losses: numpy references, clip semantics, KL estimators, aggregation modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlcore
from tests.helpers import assert_close, check_jit_and_vmap


def _np_aggregate(x, m, mode, c=None):
  m = m.astype(np.float64)
  if mode == "token-mean":
    return (x * m).sum() / max(m.sum(), 1)
  if mode == "seq-mean-token-sum":
    return (x * m).sum(-1).mean()
  if mode == "seq-mean-token-mean":
    return ((x * m).sum(-1) / np.maximum(m.sum(-1), 1)).mean()
  return (x * m).sum() / (x.shape[0] * (x.shape[1] if c is None else c))


def _np_clip_loss(lp, old, adv, m, lo, hi, mode):
  ratio = np.exp(lp - old)
  per = np.maximum(-adv * ratio, -adv * np.clip(ratio, 1 - lo, 1 + hi))
  return _np_aggregate(per, m, mode)


def _batch(rng, V=3, B=4, L=7):
  lp = rng.normal(-1.0, 0.3, (V, B, L)).astype(np.float32)
  old = (lp + rng.normal(0, 0.3, lp.shape)).astype(np.float32)
  adv = rng.normal(size=lp.shape).astype(np.float32)
  lengths = rng.integers(0, L + 1, (V, B))
  mask = np.arange(L)[None, None] < lengths[..., None]
  return lp, old, adv, mask


@pytest.mark.parametrize("mode", rlcore.losses.AGGREGATIONS)
def test_aggregate_tokens_matches_numpy(rng, mode):
  x = rng.normal(size=(3, 4, 6)).astype(np.float32)
  m = rng.random((3, 4, 6)) < 0.6
  m[0, 1] = False   # an empty row
  check_jit_and_vmap(lambda a, b: rlcore.aggregate_tokens(a, b, mode),
                     lambda a, b: _np_aggregate(a, b, mode), (x, m))


def test_constant_normaliser_is_length_unbiased():
  # Two sequences, same per-token loss; doubling one's length doubles its share under
  # "constant" and "seq-mean-token-sum" but not under "seq-mean-token-mean".
  x = jnp.ones((2, 8))
  m = jnp.array([[1] * 2 + [0] * 6, [1] * 4 + [0] * 4], bool)
  assert float(rlcore.aggregate_tokens(x, m, "seq-mean-token-mean")) == 1.0
  assert float(rlcore.aggregate_tokens(x, m, "constant", normaliser=4.0)) == 0.75
  assert float(rlcore.aggregate_tokens(x, m, "token-mean")) == 1.0


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
@pytest.mark.parametrize("lo, hi", [(0.2, 0.2), (0.2, 0.28)])
def test_ppo_clip_loss_matches_numpy(rng, mode, lo, hi):
  lp, old, adv, mask = _batch(rng)
  check_jit_and_vmap(
      lambda a, b, c, d: rlcore.ppo_clip_loss(a, b, c, d, clip_low=lo, clip_high=hi,
                                              aggregation=mode)[0],
      lambda a, b, c, d: _np_clip_loss(a, b, c, d, lo, hi, mode), (lp, old, adv, mask),
      rtol=1e-4, atol=1e-5)


def test_clip_higher_lets_positive_advantages_grow_further():
  old = jnp.zeros((1, 1))
  adv, m = jnp.ones((1, 1)), jnp.ones((1, 1), bool)
  grad = lambda lp, hi: jax.grad(lambda x: rlcore.ppo_clip_loss(
      x, old, adv, m, clip_low=0.2, clip_high=hi)[0])(lp)
  lp = jnp.full((1, 1), np.log(1.25))   # ratio 1.25: clipped at 1.2, not at 1.28
  assert float(grad(lp, 0.2)[0, 0]) == 0.0
  assert float(grad(lp, 0.28)[0, 0]) < 0.0
  # Negative advantage below 1 - eps_low is clipped whatever eps_high.
  low = jnp.full((1, 1), np.log(0.7))
  g = jax.grad(lambda x: rlcore.ppo_clip_loss(x, old, -adv, m, clip_high=0.28)[0])(low)
  assert float(g[0, 0]) == 0.0


def test_kl_estimators(rng):
  lp = rng.normal(-1, 0.5, (2, 5, 6)).astype(np.float32)
  ref = rng.normal(-1, 0.5, lp.shape).astype(np.float32)
  refs = {"k1": lambda a, b: a - b, "k2": lambda a, b: 0.5 * (a - b) ** 2,
          "k3": lambda a, b: np.exp(b - a) - (b - a) - 1}
  for kind, fn in refs.items():
    check_jit_and_vmap(lambda a, b: rlcore.kl_estimate(a, b, kind), fn, (lp, ref))
  assert np.all(np.asarray(rlcore.kl_estimate(lp, ref, "k3")) >= 0)
  # Unbiasedness of k1 and k3 for KL(p||q) between two categoricals, sampling from p.
  p = np.array([0.5, 0.3, 0.2]); q = np.array([0.2, 0.5, 0.3])
  kl = float(np.sum(p * np.log(p / q)))
  ids = np.random.default_rng(0).choice(3, size=200_000, p=p)
  for kind in ("k1", "k3"):
    est = np.asarray(rlcore.kl_estimate(np.log(p)[ids], np.log(q)[ids], kind)).mean()
    assert abs(est - kl) < 0.01, (kind, est, kl)


def test_policy_gradient_loss_and_errors(rng):
  lp, _, adv, mask = _batch(rng, V=1)
  got = rlcore.policy_gradient_loss(lp[0], adv[0], mask[0])
  assert_close(got, _np_aggregate(-adv[0] * lp[0], mask[0], "token-mean"), rtol=1e-5)
  g = jax.grad(lambda a: rlcore.policy_gradient_loss(lp[0], a, mask[0]))(adv[0])
  assert np.all(np.asarray(g) == 0)   # advantages are constants
  with pytest.raises(ValueError, match="mode"):
    rlcore.aggregate_tokens(lp[0], mask[0], "sum")
  with pytest.raises(ValueError, match="kind"):
    rlcore.kl_estimate(lp[0], lp[0], "k4")
