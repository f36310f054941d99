"""Token losses: numpy references, clip semantics, KL estimators, aggregation modes."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlcore
from tests.helpers import assert_close, check_jit_and_vmap
from tests.references import ref_aggregate_tokens, ref_kl_estimate, ref_ppo_clip_loss


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
                     lambda a, b: ref_aggregate_tokens(a, b, mode), (x, m))


def test_constant_normaliser_is_length_unbiased():
  # B = 2 rows, L = 8. Row 0 has one response token of loss 3, row 1 has n1 tokens of
  # loss 1; padding holds 100, which every mode must leave out. Four different values:
  #
  #   n1 = 3 (row sums 3 and 3, token counts 1 and 3)
  #     token-mean           (3 + 3) / (1 + 3)     = 1.5
  #     seq-mean-token-sum   (3 + 3) / 2           = 3.0
  #     seq-mean-token-mean  (3/1 + 3/3) / 2       = 2.0
  #     constant, C = 4      (3 + 3) / (2 * 4)     = 0.75
  #     constant, C = L = 8  (3 + 3) / (2 * 8)     = 0.375
  #   n1 = 6: row 1 twice as long, same per-token loss (row sums 3 and 6, counts 1 and 6)
  #     token-mean           (3 + 6) / (1 + 6)     = 9/7
  #     seq-mean-token-sum   (3 + 6) / 2           = 4.5     row 1's share 1.5 -> 3
  #     seq-mean-token-mean  (3/1 + 6/6) / 2       = 2.0     row 1's share 0.5 -> 0.5
  #     constant, C = 4      (3 + 6) / (2 * 4)     = 1.125   row 1's share 0.375 -> 0.75
  #     constant, C = L = 8  (3 + 6) / (2 * 8)     = 0.5625
  #
  # So "constant" and "seq-mean-token-sum" weight a sequence by its length (doubling it
  # doubles its share) and "seq-mean-token-mean" does not.
  want = {
      3: {"token-mean": 1.5, "seq-mean-token-sum": 3.0, "seq-mean-token-mean": 2.0,
          "constant": 0.375, "constant C=4": 0.75},
      6: {"token-mean": 9 / 7, "seq-mean-token-sum": 4.5, "seq-mean-token-mean": 2.0,
          "constant": 0.5625, "constant C=4": 1.125},
  }

  def batch(n1):
    x = np.full((2, 8), 100.0, np.float32)
    m = np.zeros((2, 8), bool)
    x[0, 0], m[0, 0] = 3.0, True
    x[1, :n1], m[1, :n1] = 1.0, True
    return x, m

  for n1, expected in want.items():
    assert len(set(expected.values())) == len(expected)  # the modes are told apart
    x, m = batch(n1)
    got = {mode: float(rlcore.aggregate_tokens(x, m, mode)) for mode in rlcore.losses.AGGREGATIONS}
    got["constant C=4"] = float(rlcore.aggregate_tokens(x, m, "constant", normaliser=4.0))
    assert got.keys() == expected.keys()
    for mode, value in expected.items():
      np.testing.assert_allclose(got[mode], value, rtol=1e-6, err_msg=f"{mode}, n1={n1}")

  # Per-token weights (the gradient), n1 = 3: "constant" gives every response token
  # 1 / (B * C) = 1/8 whatever its sequence's length, "seq-mean-token-mean" gives
  # 1 / (B * |o_b|): 1/2 to row 0's token, 1/6 to each of row 1's; padding gets 0.
  x, m = batch(3)
  row_weights = {"token-mean": (1 / 4, 1 / 4), "seq-mean-token-sum": (1 / 2, 1 / 2),
                 "seq-mean-token-mean": (1 / 2, 1 / 6), "constant C=4": (1 / 8, 1 / 8)}
  for mode, (w0, w1) in row_weights.items():
    name, kw = ("constant", dict(normaliser=4.0)) if mode == "constant C=4" else (mode, {})
    grad = np.asarray(jax.grad(lambda v: rlcore.aggregate_tokens(v, m, name, **kw))(x))
    expected = np.where(m, np.array([[w0], [w1]]), 0.0)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, err_msg=mode)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
@pytest.mark.parametrize("lo, hi", [(0.2, 0.2), (0.2, 0.28)])
def test_ppo_clip_loss_matches_numpy(rng, mode, lo, hi):
  lp, old, adv, mask = _batch(rng)
  check_jit_and_vmap(
      lambda a, b, c, d: rlcore.ppo_clip_loss(a, b, c, d, clip_low=lo, clip_high=hi,
                                              aggregation=mode)[0],
      lambda a, b, c, d: ref_ppo_clip_loss(a, b, c, d, lo, hi, mode), (lp, old, adv, mask),
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
  for kind in ("k1", "k2", "k3"):
    check_jit_and_vmap(lambda a, b: rlcore.kl_estimate(a, b, kind),
                       lambda a, b: ref_kl_estimate(a, b, kind), (lp, ref))
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
  assert_close(got, ref_aggregate_tokens(-adv[0] * lp[0], mask[0], "token-mean"), rtol=1e-5)
  g = jax.grad(lambda a: rlcore.policy_gradient_loss(lp[0], a, mask[0]))(adv[0])
  assert np.all(np.asarray(g) == 0)   # advantages are constants
  with pytest.raises(ValueError, match="mode"):
    rlcore.aggregate_tokens(lp[0], mask[0], "sum")
  with pytest.raises(ValueError, match="kind"):
    rlcore.kl_estimate(lp[0], lp[0], "k4")


# --- masked positions, array-likes, argument checks ------------------------------------------

def _poison(x, mask, values):
  """x with masked entries replaced by NaN / ±inf, cycling through `values`."""
  bad = np.resize(np.asarray(values, np.float32), x.shape)
  return np.where(mask, x, bad).astype(np.float32)


@pytest.mark.parametrize("mode", rlcore.losses.AGGREGATIONS)
@pytest.mark.parametrize("which", ["ppo", "pg"])
def test_non_finite_masked_positions_change_neither_loss_nor_gradient(rng, mode, which):
  lp, old, adv, mask = (x[0] for x in _batch(rng, V=1, B=5, L=6))
  mask[0] = False                       # an empty row
  mask[1, :] = True                     # a full one
  assert np.any(~mask[2:]) and np.any(mask[2:])
  nan_lp = _poison(lp, mask, [np.nan, -np.inf, np.inf])
  nan_old = _poison(old, mask, [-np.inf, np.nan])
  nan_adv = _poison(adv, mask, [np.inf, np.nan, -np.inf])
  seq_adv = adv[:, 0]

  if which == "ppo":
    def loss(lp, old, adv):
      return rlcore.ppo_clip_loss(lp, old, adv, mask, clip_high=0.28, aggregation=mode)
  else:
    def loss(lp, old, adv):
      del old
      return rlcore.policy_gradient_loss(lp, adv, mask, aggregation=mode), {}

  nan_seq_adv = seq_adv.copy()
  nan_seq_adv[0] = np.nan               # the advantage of a row with no response tokens
  value = lambda *a: loss(*a)[0]
  for a, bad_adv in [((lp, old, adv), nan_adv), ((lp, old, seq_adv), nan_seq_adv)]:
    clean_loss, clean_stats = jax.jit(loss)(*a)
    clean_grad = jax.jit(jax.grad(value))(*a)
    bad = (nan_lp, nan_old, bad_adv)
    bad_loss, bad_stats = jax.jit(loss)(*bad)
    bad_grad = np.asarray(jax.jit(jax.grad(value))(*bad))
    assert np.isfinite(float(bad_loss))
    np.testing.assert_array_equal(bad_loss, clean_loss)
    for k in clean_stats:
      np.testing.assert_array_equal(bad_stats[k], clean_stats[k], err_msg=k)
    assert np.all(np.isfinite(bad_grad))
    np.testing.assert_array_equal(bad_grad, clean_grad)
    np.testing.assert_array_equal(bad_grad[~mask], 0.0)
    assert np.any(bad_grad[mask] != 0)


@pytest.mark.parametrize("mode", rlcore.losses.AGGREGATIONS)
def test_aggregate_tokens_and_masked_mean_ignore_non_finite_masked_values(rng, mode):
  x = rng.normal(size=(4, 5)).astype(np.float32)
  m = rng.random((4, 5)) < 0.6
  bad = _poison(x, m, [np.nan, np.inf, -np.inf])
  agg = lambda v: rlcore.aggregate_tokens(v, m, mode)
  np.testing.assert_array_equal(agg(bad), agg(x))
  g = np.asarray(jax.grad(agg)(bad))
  np.testing.assert_array_equal(g, jax.grad(agg)(x))
  np.testing.assert_array_equal(g[~m], 0.0)
  # float weights keep their meaning
  w = np.where(m, 0.5, 0.0).astype(np.float32)
  assert_close(rlcore.aggregate_tokens(bad, w, "seq-mean-token-sum"),
               0.5 * np.mean(np.sum(np.where(m, x, 0.0), -1)), rtol=1e-6)
  mm = lambda v: rlcore.masked_mean(v, m)
  np.testing.assert_array_equal(mm(bad), mm(x))
  np.testing.assert_array_equal(np.asarray(jax.grad(mm)(bad))[~m], 0.0)


def test_losses_accept_array_likes(rng):
  lp, old, adv, mask = (x[0] for x in _batch(rng, V=1, B=2, L=3))
  want, want_stats = rlcore.ppo_clip_loss(lp, old, adv, mask)
  got, stats = rlcore.ppo_clip_loss(lp.tolist(), old.tolist(), adv.tolist(), mask.tolist())
  assert_close(got, want)
  for k in want_stats:
    assert_close(stats[k], want_stats[k], err_msg=k)
  got = rlcore.ppo_clip_loss(lp.tolist(), old.tolist(), adv[:, 0].tolist(), mask.tolist())[0]
  assert_close(got, rlcore.ppo_clip_loss(lp, old, adv[:, 0], mask)[0])
  assert_close(rlcore.policy_gradient_loss(lp.tolist(), adv.tolist(), mask.tolist()),
               rlcore.policy_gradient_loss(lp, adv, mask))
  assert_close(rlcore.aggregate_tokens(lp.tolist(), mask.tolist()),
               rlcore.aggregate_tokens(lp, mask))


@pytest.mark.parametrize("shape", [(3,), (2, 4), (4, 3), (2, 3, 1), ()])
def test_wrongly_shaped_advantages_name_the_argument_and_shapes(shape):
  z = np.zeros((2, 3), np.float32)
  adv = np.zeros(shape, np.float32)
  want = r"`advantages` must have shape \(2, 3\) .* or \(2,\) .*got " + re.escape(str(shape))
  with pytest.raises(ValueError, match="ppo_clip_loss: " + want):
    rlcore.ppo_clip_loss(z, z, adv, z)
  with pytest.raises(ValueError, match="policy_gradient_loss: " + want):
    rlcore.policy_gradient_loss(z, adv, z)


@pytest.mark.parametrize("kw, name, interval", [
    (dict(clip_low=-0.1), "clip_low", r"\[0.0, 1.0\]"),
    (dict(clip_low=1.5), "clip_low", r"\[0.0, 1.0\]"),
    (dict(clip_low=float("nan")), "clip_low", r"\[0.0, 1.0\]"),
    (dict(clip_high=-0.2), "clip_high", r"\[0.0, inf\]"),
    (dict(clip_high=np.float32(np.nan)), "clip_high", r"\[0.0, inf\]"),
    (dict(aggregation="sum"), "aggregation", "one of"),
])
def test_bad_clip_bounds_name_the_argument_and_range(kw, name, interval):
  z = np.zeros((2, 3), np.float32)
  with pytest.raises(ValueError, match=f"ppo_clip_loss: `{name}` must .*{interval}"):
    rlcore.ppo_clip_loss(z, z, z, z, **kw)


def test_traced_clip_bounds_are_not_checked():
  z = jnp.zeros((2, 3))
  f = jax.jit(lambda lo, hi: rlcore.ppo_clip_loss(z, z, z, z, clip_low=lo, clip_high=hi)[0])
  assert float(f(0.2, 0.28)) == 0.0
