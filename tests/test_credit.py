"""Tests for rlcore.credit (PURE min-form credit assignment and token utilities).

Every public function is checked against a plain numpy reference written with
explicit loops from the docstring equations (and the PURE spec, section 3; in
`tests/references.py`), under
`jax.jit` and `jax.jit(jax.vmap(...))`, plus the identities of the PURE paper.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlcore
from tests.helpers import assert_close, check_jit_and_vmap
from tests.references import (ref_broadcast_to_tokens, ref_min_form, ref_pure_advantages,
                               ref_rloo_token_baseline, ref_step_ends, ref_steps_to_tokens,
                               ref_strict_min_form, ref_sum_form, ref_token_returns)

# ---------------------------------------------------------------------------------------
# random inputs
# ---------------------------------------------------------------------------------------


def _contiguous_masks(rng, shape, left_pad=True):
  """Response masks with random left padding (prompt) and right padding."""
  *lead, l_ = shape
  m = np.zeros(shape, bool)
  for idx in np.ndindex(*lead):
    start = rng.integers(0, l_ // 2 + 1) if left_pad else 0
    stop = rng.integers(start, l_ + 1)
    m[idx + (slice(start, stop),)] = True
  return m


def _step_inputs(rng, shape, p_mask=0.25, p_nan=0.0):
  r = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
  m = rng.random(shape) > p_mask
  if p_nan:
    r[rng.random(shape) < p_nan] = np.nan
  if len(shape) >= 2:
    m[(0,) * (len(shape) - 1)] = False  # one empty row
  return r, m


# ---------------------------------------------------------------------------------------
# min_form / strict_min_form / sum_form: reference parity
# ---------------------------------------------------------------------------------------

STEP_SHAPES = [(3, 1), (4, 5), (2, 3, 7)]


@pytest.mark.parametrize("shape,temperature", [((3, 1), 0.1), ((4, 5), 1.0), ((4, 5), 0.1),
                                               ((2, 3, 7), 0.02)])
def test_min_form_matches_reference(rng, shape, temperature):
  v = 3
  r, m = _step_inputs(rng, (v,) + shape, p_nan=0.1)
  check_jit_and_vmap(rlcore.min_form, ref_min_form, (r, m),
                     static_kwargs={"temperature": temperature}, atol=2e-5)


@pytest.mark.parametrize("shape", STEP_SHAPES)
def test_strict_min_form_matches_reference(rng, shape):
  r, m = _step_inputs(rng, (3,) + shape, p_nan=0.1)
  check_jit_and_vmap(rlcore.strict_min_form, ref_strict_min_form, (r, m))


@pytest.mark.parametrize("shape", STEP_SHAPES)
def test_sum_form_matches_reference(rng, shape):
  r, m = _step_inputs(rng, (3,) + shape, p_nan=0.1)
  check_jit_and_vmap(rlcore.sum_form, ref_sum_form, (r, m))


def test_min_form_rank1_and_ties(rng):
  r = np.array([0.2, -0.5, 0.3, -0.5], np.float32)
  m = np.ones(4, bool)
  assert_close(rlcore.min_form(r, m, temperature=0.1), ref_min_form(r, m, 0.1))
  # strict: the *first* argmin gets the credit on ties.
  assert_close(rlcore.strict_min_form(r, m), [0.0, -0.5, 0.0, 0.0])


# ---------------------------------------------------------------------------------------
# PURE identities
# ---------------------------------------------------------------------------------------


def _distinct_rewards(rng, shape):
  grid = np.linspace(-1.0, 1.0, 41)  # spacing 0.05
  out = np.zeros(shape, np.float32)
  for idx in np.ndindex(*shape[:-1]):
    out[idx] = rng.choice(grid, shape[-1], replace=False)
  return out


@pytest.mark.parametrize("shape", [(5, 6), (3, 1), (2, 4, 3)])
def test_min_form_zero_temperature_equals_strict(rng, shape):
  r = _distinct_rewards(rng, shape)
  m = rng.random(shape) > 0.3
  cold = rlcore.min_form(r, m, temperature=1e-4)
  strict = rlcore.strict_min_form(r, m)
  assert_close(cold, strict, atol=1e-5)
  assert_close(strict, ref_strict_min_form(r, m))


def test_spec_example_weights_and_token_returns():
  pr = np.array([[0.9, 0.8, -0.3, 0.7, 0.95]], np.float32)
  m = np.ones((1, 5), bool)
  r_star = rlcore.min_form(pr, m, temperature=0.1)
  weights = np.asarray(r_star) / pr
  np.testing.assert_allclose(weights, [[0, 0, 1, 0, 0]], atol=1e-3)
  # One token per step: step k ends at token k.
  idx = np.arange(5, dtype=np.int32)[None]
  tok = rlcore.steps_to_tokens(r_star, idx, m, 5)
  rtg = rlcore.token_returns(tok, m)
  np.testing.assert_allclose(rtg, [[-0.3, -0.3, -0.3, 0.0, 0.0]], atol=1e-3)
  # Weights follow the softmax formula exactly (not just approximately one-hot).
  e = np.exp(-pr[0].astype(np.float64) / 0.1)
  np.testing.assert_allclose(weights[0], e / e.sum(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_strict_min_form_return_to_go_is_suffix_min(seed):
  rng = np.random.default_rng(seed)
  b_, k_ = 6, 7
  r = _distinct_rewards(rng, (b_, k_))
  m = rng.random((b_, k_)) > 0.25
  m[:, 0] = True
  idx = np.tile(np.arange(k_, dtype=np.int32), (b_, 1))
  tok = rlcore.steps_to_tokens(rlcore.strict_min_form(r, m), idx, m, k_)
  rtg = np.asarray(rlcore.token_returns(tok, m))
  for b in range(b_):
    valid = [k for k in range(k_) if m[b, k]]
    w = min(valid, key=lambda k: r[b, k])
    for k in valid:
      suffix_min = min(r[b, j] for j in valid if j >= k)  # brute force
      expected = suffix_min if k <= w else 0.0
      np.testing.assert_allclose(rtg[b, k], expected, atol=1e-6, err_msg=f"row {b} step {k}")
    for k in range(k_):
      if not m[b, k]:
        assert rtg[b, k] == 0.0


def test_min_form_sum_approaches_min_as_temperature_falls(rng):
  r = rng.uniform(-1, 1, (8, 6)).astype(np.float32)
  m = rng.random((8, 6)) > 0.2
  m[:, 0] = True
  true_min = np.array([r[b][m[b]].min() for b in range(8)])
  gaps = []
  for t in [1.0, 0.3, 0.1, 0.03, 0.01, 0.001]:
    s = np.asarray(jnp.sum(rlcore.min_form(r, m, temperature=t), axis=-1))
    assert np.all(s >= true_min - 1e-5)  # a convex combination is >= the min
    gaps.append(s - true_min)
  gaps = np.stack(gaps)
  assert np.all(np.diff(gaps, axis=0) <= 1e-5)  # monotone in T
  assert np.max(gaps[-1]) < 1e-3
  assert np.max(gaps[0]) > 1e-2  # and T actually matters


@pytest.mark.parametrize("fn", [functools.partial(rlcore.min_form, temperature=0.1),
                                rlcore.strict_min_form, rlcore.sum_form])
def test_empty_rows_give_zeros_and_finite_grads(fn):
  r = np.array([[0.5, -0.2, 0.1], [0.3, 0.4, -0.9], [np.nan, 0.2, 0.7]], np.float32)
  m = np.array([[False, False, False], [True, True, True], [True, False, False]])
  out = np.asarray(fn(r, m))
  assert np.all(np.isfinite(out))
  np.testing.assert_array_equal(out[0], 0.0)
  np.testing.assert_array_equal(out[2], 0.0)  # only valid step is NaN -> empty row
  g = jax.grad(lambda x: jnp.sum(fn(x, m) * jnp.arange(1.0, 4.0)[None, :]))(jnp.asarray(r))
  assert np.all(np.isfinite(np.asarray(g)))
  np.testing.assert_array_equal(np.asarray(g)[0], 0.0)
  np.testing.assert_array_equal(np.asarray(g)[2], 0.0)


@pytest.mark.parametrize("fn", [functools.partial(rlcore.min_form, temperature=0.1),
                                rlcore.strict_min_form, rlcore.sum_form])
def test_nan_step_rewards_are_masked(rng, fn):
  r = rng.uniform(-1, 1, (4, 6)).astype(np.float32)
  m = np.ones((4, 6), bool)
  nan_at = rng.random((4, 6)) < 0.3
  nan_at[:, 0] = False
  r_nan = np.where(nan_at, np.nan, r).astype(np.float32)
  out = np.asarray(fn(r_nan, m))
  assert np.all(np.isfinite(out))
  np.testing.assert_array_equal(out[nan_at], 0.0)
  assert_close(out, fn(r, m & ~nan_at))


def test_min_form_gradient_matches_finite_differences(rng):
  r = rng.uniform(-1, 1, (3, 5))
  m = rng.random((3, 5)) > 0.2
  m[0] = False
  w = rng.normal(size=(3, 5))
  f = lambda x: jnp.sum(rlcore.min_form(x, m, temperature=0.3) * w)
  g = np.asarray(jax.grad(f)(jnp.asarray(r, jnp.float32)))
  assert np.all(np.isfinite(g))
  h = 1e-5
  num = np.zeros_like(r)
  for idx in np.ndindex(r.shape):
    dp, dm = r.copy(), r.copy()
    dp[idx] += h
    dm[idx] -= h
    num[idx] = (np.sum(ref_min_form(dp, m, 0.3) * w) - np.sum(ref_min_form(dm, m, 0.3) * w)) / (2 * h)
  np.testing.assert_allclose(g, num, atol=2e-4)
  np.testing.assert_array_equal(g[~m], 0.0)


def test_min_form_vmap_over_temperature(rng):
  r, m = _step_inputs(rng, (4, 5))
  temps = np.array([0.05, 0.1, 0.5, 2.0], np.float32)
  out = jax.jit(jax.vmap(lambda t: rlcore.min_form(r, m, temperature=t)))(temps)
  for i, t in enumerate(temps):
    assert_close(out[i], ref_min_form(r, m, float(t)), atol=2e-5)
  g = jax.grad(lambda t: jnp.sum(rlcore.min_form(r, m, temperature=t)))(0.2)
  assert np.isfinite(float(g))


# ---------------------------------------------------------------------------------------
# steps_to_tokens
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("b_,k_,l_", [(2, 3, 5), (4, 6, 12), (1, 1, 1)])
def test_steps_to_tokens_matches_reference(rng, b_, k_, l_):
  v = 3
  vals = rng.normal(size=(v, b_, k_)).astype(np.float32)
  idx = rng.integers(0, l_, (v, b_, k_)).astype(np.int32)  # duplicates are summed
  mask = rng.random((v, b_, k_)) > 0.3
  idx = np.where(mask, idx, -7).astype(np.int32)  # masked steps may hold garbage
  check_jit_and_vmap(rlcore.steps_to_tokens, ref_steps_to_tokens, (vals, idx, mask),
                     static_kwargs={"num_tokens": l_})


def test_steps_to_tokens_hand_case():
  vals = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]], np.float32)
  idx = np.array([[0, 3, 3], [1, 2, 99]], np.int32)
  mask = np.array([[True, True, True], [True, True, False]])
  out = rlcore.steps_to_tokens(vals, idx, mask, 4)
  np.testing.assert_array_equal(out, [[1, 0, 0, 6], [0, 8, 16, 0]])


# ---------------------------------------------------------------------------------------
# step_ends_from_separators
# ---------------------------------------------------------------------------------------


def _ends_as_one(sep, resp, max_steps):
  e, m, n = rlcore.step_ends_from_separators(sep, resp, max_steps=max_steps)
  return jnp.concatenate([e.astype(jnp.float32), m.astype(jnp.float32), n], axis=-1)


def _ref_ends_as_one(sep, resp, max_steps):
  e, m, n = ref_step_ends(sep, resp, max_steps)
  return np.concatenate([e, m, n], axis=-1).astype(np.float64)


@pytest.mark.parametrize("b_,l_,max_steps", [(3, 8, 4), (4, 16, 3), (2, 10, 12)])
def test_step_ends_matches_reference(rng, b_, l_, max_steps):
  v = 4
  resp = _contiguous_masks(rng, (v, b_, l_))
  sep = rng.random((v, b_, l_)) < 0.3
  check_jit_and_vmap(_ends_as_one, _ref_ends_as_one, (sep, resp),
                     static_kwargs={"max_steps": max_steps})


def test_step_ends_hand_cases():
  jitted = jax.jit(rlcore.step_ends_from_separators, static_argnums=2)
  f = lambda s, r, k: [np.asarray(x) for x in jitted(np.array(s, bool), np.array(r, bool), k)]
  # Separator at the EOS position: the EOS step is not counted twice. Left padding
  # (prompt at 0, 1) and a separator inside the prompt, which is ignored.
  ends, mask, ntok = f([[0, 1, 0, 1, 0, 0, 0, 1]], [[0, 0, 1, 1, 1, 1, 1, 1]], 4)
  np.testing.assert_array_equal(ends, [[3, 7, 0, 0]])
  np.testing.assert_array_equal(mask, [[True, True, False, False]])
  np.testing.assert_array_equal(ntok, [[2, 4, 0, 0]])
  assert ends.dtype == np.int32 and mask.dtype == bool and ntok.dtype == np.float32
  # No separators: one step ending at EOS; right padding after it.
  ends, mask, ntok = f([[0, 0, 0, 0, 0, 0]], [[1, 1, 1, 1, 0, 0]], 2)
  np.testing.assert_array_equal(ends, [[3, 0]])
  np.testing.assert_array_equal(mask, [[True, False]])
  np.testing.assert_array_equal(ntok, [[4, 0]])
  # More steps than max_steps: the later ones (including EOS) are dropped.
  ends, mask, ntok = f([[0, 1, 0, 1, 0, 1, 0, 0]], [[1] * 8], 2)
  np.testing.assert_array_equal(ends, [[1, 3]])
  np.testing.assert_array_equal(mask, [[True, True]])
  np.testing.assert_array_equal(ntok, [[2, 2]])
  # Separator on padding after EOS is ignored; empty response rows have no steps.
  ends, mask, ntok = f([[0, 0, 0, 1], [1, 1, 0, 0]], [[1, 1, 0, 0], [0, 0, 0, 0]], 3)
  np.testing.assert_array_equal(ends, [[1, 0, 0], [0, 0, 0]])
  np.testing.assert_array_equal(mask, [[True, False, False], [False, False, False]])
  np.testing.assert_array_equal(ntok, [[2, 0, 0], [0, 0, 0]])


# ---------------------------------------------------------------------------------------
# token_returns
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma,b_,l_,left_pad", [
    (1.0, 2, 5, False), (1.0, 5, 11, True), (0.9, 5, 11, True), (0.5, 2, 5, False),
    (0.0, 3, 6, True)])
def test_token_returns_matches_reference(rng, gamma, b_, l_, left_pad):
  v = 3
  r = rng.normal(size=(v, b_, l_)).astype(np.float32)
  m = _contiguous_masks(rng, (v, b_, l_), left_pad=left_pad)
  check_jit_and_vmap(rlcore.token_returns, ref_token_returns, (r, m),
                     static_kwargs={"gamma": gamma}, atol=2e-5)


def test_token_returns_hand_case_padding_both_sides():
  r = np.array([[5.0, 5.0, 1.0, 2.0, 4.0, 5.0]], np.float32)
  m = np.array([[False, False, True, True, True, False]])  # prompt, response, pad
  out = rlcore.token_returns(r, m, gamma=0.5)
  np.testing.assert_allclose(out, [[0, 0, 1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4, 0]])
  out1 = rlcore.token_returns(r, m)
  np.testing.assert_allclose(out1, [[0, 0, 7, 6, 4, 0]])


def test_token_returns_traced_gamma(rng):
  r = rng.normal(size=(3, 7)).astype(np.float32)
  m = _contiguous_masks(rng, (3, 7))
  gammas = np.array([1.0, 0.95, 0.3], np.float32)
  out = jax.jit(jax.vmap(lambda g: rlcore.token_returns(r, m, gamma=g)))(gammas)
  for i, g in enumerate(gammas):
    assert_close(out[i], ref_token_returns(r, m, float(g)), atol=2e-5)


# ---------------------------------------------------------------------------------------
# broadcast_to_tokens
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lead,l_", [((4,), 6), ((2, 3), 5), ((1,), 1)])
def test_broadcast_to_tokens_matches_reference(rng, lead, l_):
  v = 3
  adv = rng.normal(size=(v,) + lead).astype(np.float32)
  m = rng.random((v,) + lead + (l_,)) > 0.4
  check_jit_and_vmap(rlcore.broadcast_to_tokens, ref_broadcast_to_tokens, (adv, m))


# ---------------------------------------------------------------------------------------
# rloo_token_baseline
# ---------------------------------------------------------------------------------------


def _baseline_inputs(rng, lead, k_):
  r = rng.uniform(-1, 1, lead + (k_,)).astype(np.float32)
  ntok = rng.integers(1, 20, lead + (k_,)).astype(np.float32)
  m = rng.random(lead + (k_,)) > 0.25
  return r, ntok, m


@pytest.mark.parametrize("p_,g_,k_", [(3, 4, 5), (2, 2, 3), (4, 1, 2)])
def test_rloo_token_baseline_dense_matches_reference(rng, p_, g_, k_):
  v = 3
  r, ntok, m = _baseline_inputs(rng, (v, p_, g_), k_)
  r[0, 0, 0, :] = np.nan  # an unscorable sample: no steps, no tokens
  check_jit_and_vmap(rlcore.rloo_token_baseline, ref_rloo_token_baseline, (r, ntok, m))
  # With explicit response lengths and a validity mask.
  lengths = rng.integers(5, 50, (v, p_, g_)).astype(np.float32)
  valid = rng.random((v, p_, g_)) > 0.3
  f = lambda a, b, c, d, e: rlcore.rloo_token_baseline(a, b, c, response_lengths=d, valid=e)
  ref = lambda a, b, c, d, e: ref_rloo_token_baseline(a, b, c, response_lengths=d, valid=e)
  check_jit_and_vmap(f, ref, (r, ntok, m, lengths, valid))


@pytest.mark.parametrize("n_,num_groups,k_", [(10, 4, 3), (7, 7, 2), (12, 3, 6)])
def test_rloo_token_baseline_ragged_matches_reference(rng, n_, num_groups, k_):
  v = 3
  r, ntok, m = _baseline_inputs(rng, (v, n_), k_)
  gids = rng.integers(0, num_groups, (v, n_)).astype(np.int32)
  check_jit_and_vmap(rlcore.rloo_token_baseline, ref_rloo_token_baseline, (r, ntok, m, gids),
                     static_kwargs={"num_groups": num_groups})
  valid = rng.random((v, n_)) > 0.3
  f = lambda a, b, c, d, e, num_groups: rlcore.rloo_token_baseline(a, b, c, d, num_groups, valid=e)
  ref = lambda a, b, c, d, e, num_groups: ref_rloo_token_baseline(a, b, c, d, valid=e)
  check_jit_and_vmap(f, ref, (r, ntok, m, gids, valid), static_kwargs={"num_groups": num_groups})


def test_rloo_token_baseline_dense_equals_ragged(rng):
  r, ntok, m = _baseline_inputs(rng, (3, 4), 5)
  dense = rlcore.rloo_token_baseline(r, ntok, m)
  gids = np.repeat(np.arange(3), 4).astype(np.int32)
  perm = rng.permutation(12)
  ragged = rlcore.rloo_token_baseline(r.reshape(12, 5)[perm], ntok.reshape(12, 5)[perm],
                                      m.reshape(12, 5)[perm], gids[perm], 3)
  assert_close(np.asarray(ragged), np.asarray(dense).reshape(12, 5)[perm])


def test_rloo_token_baseline_hand_case():
  # One group of 3 samples, one or two steps each.
  r = np.array([[[0.4, 0.2], [0.6, 0.0], [-0.3, 0.0]]], np.float32)
  ntok = np.array([[[2, 3], [4, 0], [5, 0]]], np.float32)
  m = np.array([[[True, True], [True, False], [True, False]]])
  out = np.asarray(rlcore.rloo_token_baseline(r, ntok, m))
  # OR = [0.6, 0.6, -0.3], len = [5, 4, 5]
  avg0 = (0.6 - 0.3) / (4 + 5)
  avg1 = (0.6 - 0.3) / (5 + 5)
  avg2 = (0.6 + 0.6) / (5 + 4)
  np.testing.assert_allclose(out[0, 0], [0.4 - 2 * avg0, 0.2 - 3 * avg0], rtol=1e-6)
  np.testing.assert_allclose(out[0, 1], [0.6 - 4 * avg1, 0.0], rtol=1e-6)
  np.testing.assert_allclose(out[0, 2], [-0.3 - 5 * avg2, 0.0], rtol=1e-6)


def test_rloo_token_baseline_does_not_favour_fewer_steps():
  # Samples 0 and 1 have the same per-token quality (same total reward over the same
  # number of tokens), split into 1 and 4 steps; sample 2 is another response.
  r = np.array([[[0.8, 0.0, 0.0, 0.0], [0.2, 0.2, 0.2, 0.2], [-0.5, 0.1, 0.0, 0.0]]],
               np.float32)
  ntok = np.array([[[20, 0, 0, 0], [5, 5, 5, 5], [6, 4, 0, 0]]], np.float32)
  m = np.array([[[True, False, False, False], [True] * 4, [True, True, False, False]]])
  out = np.asarray(rlcore.rloo_token_baseline(r, ntok, m))
  totals = out.sum(-1)[0]
  np.testing.assert_allclose(totals[0], totals[1], rtol=1e-6)
  assert abs(totals[0] - 0.8) > 1e-3  # a non-trivial baseline was subtracted
  # The per-step baseline (mean of others' OR / n_steps, paid once per step) would
  # have favoured one of the two: check our construction can tell them apart.
  outcome, nsteps = r.sum(-1)[0], m.sum(-1)[0]
  step_base = [np.mean([outcome[j] / nsteps[j] for j in range(3) if j != i]) for i in range(3)]
  step_totals = [outcome[i] - step_base[i] * nsteps[i] for i in range(3)]
  assert abs(step_totals[0] - step_totals[1]) > 0.1


def test_rloo_token_baseline_singleton_groups_zero_baseline(rng):
  r, ntok, m = _baseline_inputs(rng, (5, 1), 4)
  out = rlcore.rloo_token_baseline(r, ntok, m)
  assert_close(out, np.where(m, r, 0.0))
  # Ragged: groups 0 and 2 are singletons, group 1 has two members.
  r, ntok, m = _baseline_inputs(rng, (4,), 3)
  gids = np.array([0, 1, 1, 2], np.int32)
  out = np.asarray(rlcore.rloo_token_baseline(r, ntok, m, gids, 3))
  assert_close(out[[0, 3]], np.where(m, r, 0.0)[[0, 3]])
  assert not np.allclose(out[[1, 2]], np.where(m, r, 0.0)[[1, 2]])
  # A group whose other member is invalid is a singleton too.
  valid = np.array([True, True, False, True])
  out = np.asarray(rlcore.rloo_token_baseline(r, ntok, m, gids, 3, valid=valid))
  assert_close(out[1], np.where(m, r, 0.0)[1])
  np.testing.assert_array_equal(out[2], 0.0)


# ---------------------------------------------------------------------------------------
# pure_advantages
# ---------------------------------------------------------------------------------------


def _adv_inputs(rng, shape):
  r = rng.normal(size=shape).astype(np.float32)
  m = _contiguous_masks(rng, shape)
  sep = (rng.random(shape) < 0.25)
  kl = rng.normal(size=shape).astype(np.float32)
  return r, m, sep, kl


@pytest.mark.parametrize("shape,whiten,gamma", [
    ((3, 8), True, 1.0), ((5, 13), True, 0.8), ((5, 13), False, 1.0), ((3, 8), False, 0.8)])
def test_pure_advantages_matches_reference(rng, shape, whiten, gamma):
  v = 3
  r, m, sep, kl = _adv_inputs(rng, (v,) + shape)
  kw = {"kl_coef": 0.1, "whiten": whiten, "gamma": gamma}
  f = lambda a, b, c, d, **k: rlcore.pure_advantages(a, b, c, kl=d, **k)
  ref = lambda a, b, c, d, **k: ref_pure_advantages(a, b, c, kl=d, **k)
  check_jit_and_vmap(f, ref, (r, m, sep, kl), static_kwargs=kw, atol=1e-4, rtol=1e-4)
  # Without separators and without kl.
  check_jit_and_vmap(rlcore.pure_advantages, ref_pure_advantages, (r, m),
                     static_kwargs={"whiten": whiten, "gamma": gamma}, atol=1e-4, rtol=1e-4)


def test_pure_advantages_separators_zero_and_whitening_excludes_them(rng):
  r, m, sep, kl = _adv_inputs(rng, (6, 20))
  sep &= m
  adv = np.asarray(rlcore.pure_advantages(r, m, sep, kl=kl, kl_coef=0.05))
  keep = m & ~sep
  np.testing.assert_array_equal(adv[sep], 0.0)
  np.testing.assert_array_equal(adv[~m], 0.0)
  vals = adv[keep].astype(np.float64)
  assert abs(vals.mean()) < 1e-5
  np.testing.assert_allclose(vals.std(ddof=1), 1.0, rtol=1e-4)
  # Separator rewards still flow into the returns of earlier tokens.
  raw = np.asarray(rlcore.pure_advantages(r, m, sep, whiten=False))
  assert_close(raw, np.where(keep, ref_token_returns(r, m), 0.0), atol=2e-5)


def test_pure_advantages_kl_term(rng):
  r, m, sep, kl = _adv_inputs(rng, (4, 9))
  beta = 0.3
  with_kl = rlcore.pure_advantages(r, m, sep, kl=kl, kl_coef=beta, whiten=False)
  folded = rlcore.pure_advantages(r - beta * kl, m, sep, whiten=False)
  assert_close(with_kl, folded, atol=2e-5)
  assert_close(with_kl, np.where(m & ~sep, ref_token_returns(r - beta * kl, m), 0.0), atol=2e-5)
  # Hand case: one response of 3 tokens, no separators.
  adv = rlcore.pure_advantages(np.array([[0.0, 0.0, 1.0]], np.float32), np.ones((1, 3), bool),
                               kl=np.array([[1.0, 2.0, 3.0]], np.float32), kl_coef=0.1,
                               whiten=False)
  np.testing.assert_allclose(adv, [[1.0 - 0.6, 1.0 - 0.5, 1.0 - 0.3]], rtol=1e-6)
  # kl_coef = 0 ignores kl.
  assert_close(rlcore.pure_advantages(r, m, kl=kl, kl_coef=0.0), rlcore.pure_advantages(r, m))


def test_pure_pipeline_end_to_end(rng):
  """steps -> min_form -> token baseline -> tokens -> advantages, vs references."""
  b_, l_, k_ = 4, 12, 5
  resp = np.zeros((b_, l_), bool)
  resp[:, 2:] = True
  resp[1, 9:] = False
  sep = rng.random((b_, l_)) < 0.25
  pr = rng.uniform(-1, 1, (b_, k_)).astype(np.float32)

  @jax.jit
  def pipeline(pr, sep, resp):
    ends, smask, ntok = rlcore.step_ends_from_separators(sep, resp, k_)
    r_star = rlcore.min_form(pr, smask, temperature=0.1)
    based = rlcore.rloo_token_baseline(r_star.reshape(2, 2, k_), ntok.reshape(2, 2, k_),
                                       smask.reshape(2, 2, k_)).reshape(b_, k_)
    tok = rlcore.steps_to_tokens(based, ends, smask, l_)
    return rlcore.pure_advantages(tok, resp, sep & resp)

  adv = pipeline(pr, sep, resp)
  e_ends, e_mask, e_ntok = ref_step_ends(sep, resp, k_)
  e_star = ref_min_form(pr, e_mask, 0.1)
  e_based = ref_rloo_token_baseline(e_star.reshape(2, 2, k_), e_ntok.reshape(2, 2, k_),
                                    e_mask.reshape(2, 2, k_)).reshape(b_, k_)
  e_tok = ref_steps_to_tokens(e_based, e_ends, e_mask, l_)
  e_adv = ref_pure_advantages(e_tok, resp, sep & resp)
  assert_close(adv, e_adv, atol=1e-4)


# ---------------------------------------------------------------------------------------
# bad inputs: ValueError naming the argument
# ---------------------------------------------------------------------------------------


def _raises(name, fn, *args, **kwargs):
  with pytest.raises(ValueError, match=f"`{name}[` ]"):
    fn(*args, **kwargs)


def test_bad_inputs_step_level():
  r, m = np.zeros((2, 3), np.float32), np.ones((2, 3), bool)
  for fn in (rlcore.min_form, rlcore.strict_min_form, rlcore.sum_form):
    _raises("step_rewards", fn, np.float32(1.0), True)
    _raises("step_mask", fn, r, np.ones((2, 4), bool))
  _raises("temperature", rlcore.min_form, r, m, temperature=0.0)
  _raises("temperature", rlcore.min_form, r, m, temperature=-0.1)


def test_bad_inputs_tokens():
  vals, idx, m = np.zeros((2, 3), np.float32), np.zeros((2, 3), np.int32), np.ones((2, 3), bool)
  _raises("step_values", rlcore.steps_to_tokens, np.zeros(3), idx[0], m[0], 4)
  _raises("step_end_index", rlcore.steps_to_tokens, vals, np.zeros((2, 4), np.int32), m, 4)
  _raises("step_mask", rlcore.steps_to_tokens, vals, idx, np.ones((3, 3), bool), 4)
  _raises("num_tokens", rlcore.steps_to_tokens, vals, idx, m, 0)
  _raises("step_end_index", rlcore.steps_to_tokens, vals, idx.astype(np.float32), m, 4)
  bad = idx.copy()
  bad[1, 2] = 4
  _raises("step_end_index", rlcore.steps_to_tokens, vals, bad, m, 4)
  bad[1, 2] = -1
  _raises("step_end_index", rlcore.steps_to_tokens, vals, bad, m, 4)
  m2 = m.copy()
  m2[1, 2] = False  # out of range on a masked step is fine
  np.testing.assert_array_equal(rlcore.steps_to_tokens(vals + 1, bad, m2, 4)[1], [2, 0, 0, 0])
  _raises("separator_mask", rlcore.step_ends_from_separators, np.ones(4, bool),
          np.ones(4, bool), 2)
  _raises("response_mask", rlcore.step_ends_from_separators, m, np.ones((2, 4), bool), 2)
  _raises("max_steps", rlcore.step_ends_from_separators, m, m, 0)
  _raises("token_rewards", rlcore.token_returns, np.zeros(3), np.ones(3, bool))
  _raises("mask", rlcore.token_returns, vals, np.ones((2, 4), bool))
  _raises("gamma", rlcore.token_returns, vals, m, gamma=1.5)
  _raises("gamma", rlcore.token_returns, vals, m, gamma=-0.1)
  _raises("response_mask", rlcore.broadcast_to_tokens, np.zeros(3), np.ones((4, 5), bool))
  _raises("response_mask", rlcore.broadcast_to_tokens, np.zeros(3), np.ones(3, bool))


def test_bad_inputs_baseline_and_advantages():
  r, n, m = np.zeros((2, 3, 4)), np.ones((2, 3, 4)), np.ones((2, 3, 4), bool)
  _raises("step_num_tokens", rlcore.rloo_token_baseline, r, np.ones((2, 3, 5)), m)
  _raises("step_mask", rlcore.rloo_token_baseline, r, n, m[..., :3])
  _raises("step_rewards", rlcore.rloo_token_baseline, r[0], n[0], m[0])  # rank 2, no ids
  _raises("num_groups", rlcore.rloo_token_baseline, r[0], n[0], m[0], np.zeros(3, np.int32))
  _raises("group_ids", rlcore.rloo_token_baseline, r[0], n[0], m[0], np.zeros(2, np.int32), 2)
  _raises("group_ids", rlcore.rloo_token_baseline, r[0], n[0], m[0], np.array([0, 2], np.int32),
          2)
  _raises("response_lengths", rlcore.rloo_token_baseline, r, n, m,
          response_lengths=np.ones((2, 4)))
  _raises("valid", rlcore.rloo_token_baseline, r, n, m, valid=np.ones(6, bool))
  t, tm = np.zeros((2, 5)), np.ones((2, 5), bool)
  _raises("token_rewards", rlcore.pure_advantages, np.zeros(5), np.ones(5, bool))
  _raises("response_mask", rlcore.pure_advantages, t, tm[:, :4])
  _raises("separator_mask", rlcore.pure_advantages, t, tm, tm[:1])
  _raises("kl", rlcore.pure_advantages, t, tm, kl=np.zeros((2, 4)), kl_coef=0.1)
  _raises("kl_coef", rlcore.pure_advantages, t, tm, kl=t, kl_coef=-1.0)


def test_nan_coefficients_name_the_argument():
  r, m = np.zeros((2, 3), np.float32), np.ones((2, 3), bool)
  _raises("temperature", rlcore.min_form, r, m, temperature=float("nan"))
  _raises("gamma", rlcore.token_returns, r, m, gamma=np.float32(np.nan))
  _raises("kl_coef", rlcore.pure_advantages, r, m, kl=r, kl_coef=float("nan"))


# ---------------------------------------------------------------------------------------
# empty step / token axes, traced out-of-range group ids
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
def test_zero_steps_give_empty_results(jit):
  wrap = jax.jit if jit else (lambda f: f)
  r, m = np.zeros((3, 0), np.float32), np.zeros((3, 0), bool)
  for fn in (rlcore.min_form, rlcore.strict_min_form, rlcore.sum_form):
    out = wrap(fn)(r, m)
    assert out.shape == (3, 0) and out.dtype == jnp.float32, fn.__name__
  out = wrap(lambda a, b, c: rlcore.steps_to_tokens(a, b, c, 5))(r, r.astype(np.int32), m)
  np.testing.assert_array_equal(out, np.zeros((3, 5)))
  steps = np.zeros((2, 3, 0), np.float32)
  out = wrap(rlcore.rloo_token_baseline)(steps, steps, steps > 0)
  assert out.shape == (2, 3, 0) and out.dtype == jnp.float32
  ids = np.array([0, 0, 1], np.int32)
  out = wrap(lambda a, b, c, i: rlcore.rloo_token_baseline(a, b, c, i, 2))(
      steps[0], steps[0], steps[0] > 0, ids)
  assert out.shape == (3, 0)


@pytest.mark.parametrize("jit", [False, True])
def test_zero_tokens_give_empty_results(jit):
  wrap = jax.jit if jit else (lambda f: f)
  t, m = np.zeros((3, 0), np.float32), np.zeros((3, 0), bool)
  for gamma in (1.0, 0.9):
    out = wrap(lambda a, b: rlcore.token_returns(a, b, gamma=gamma))(t, m)
    assert out.shape == (3, 0) and out.dtype == jnp.float32
  out = wrap(lambda a, b: rlcore.pure_advantages(a, b, b, kl=a, kl_coef=0.1))(t, m)
  assert out.shape == (3, 0) and out.dtype == jnp.float32
  ends, mask, ntok = wrap(lambda a, b: rlcore.step_ends_from_separators(a, b, 2))(m, m)
  assert ends.shape == mask.shape == ntok.shape == (3, 2)
  assert not np.any(mask) and np.all(np.asarray(ntok) == 0)
  assert rlcore.broadcast_to_tokens(np.zeros(3), m).shape == (3, 0)


def test_rloo_token_baseline_traced_out_of_range_ids_count_as_invalid(rng):
  r = rng.normal(size=(6, 3)).astype(np.float32)
  n = rng.integers(1, 5, (6, 3)).astype(np.float32)
  m = np.ones((6, 3), bool)
  ids = np.array([0, 0, 1, 1, 1, 0], np.int32)
  bad = np.array([0, 1, 0, 0, 1, 0], bool)
  wild = np.where(bad, np.array([0, 2, 0, 0, -3, 0]), ids).astype(np.int32)
  f = jax.jit(lambda r, n, m, i, v: rlcore.rloo_token_baseline(r, n, m, i, 2, valid=v))
  want = np.asarray(f(r, n, m, np.where(bad, 0, ids).astype(np.int32), ~bad))
  got = np.asarray(f(r, n, m, wild, np.ones(6, bool)))
  np.testing.assert_array_equal(got[bad], 0.0)
  assert_close(got, want)
  _raises("group_ids", rlcore.rloo_token_baseline, r, n, m, wild, 2)
