"""Tests for rlcore/group.py: GRPO and its relatives.

Every public function is checked against a plain numpy reference written from the
docstring equations with explicit Python loops over groups, samples and pairs (in
`tests/references.py`), under
`jax.jit` and `jax.jit(jax.vmap(...))`, on dense `[P, G]` and ragged `[N]` batches.
Then identities (RLOO vs GRPO, Pass@k sums and worked numbers, win-rate sums), the
documented edge cases (singletons, zero variance, NaN / invalid samples), argument
errors, retracing, traced coefficients and gradients, and a REINFORCE++ parity test
against a literal transcription of verl's code.
"""

import functools
import inspect
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlcore import group
from tests.helpers import assert_close, assert_no_retrace, check_jit_and_vmap
from tests.references import (ref_gpg, ref_grpo, ref_masked_whiten, ref_opo, ref_pass_at_k,
                               ref_pass_at_k_enumerated, ref_passk, ref_reinforce_pp,
                               ref_reinforce_pp_baseline, ref_remax, ref_rloo,
                               ref_score_preferences, ref_win_rate)

# Static configuration arguments of the functions under test; everything else is traced.
STATIC = ("num_groups", "scale", "ddof", "singleton", "alpha_mode", "normalize_std", "judged")


class _Jitted:
  """`jg.f` is `jax.jit(group.f)` with the configuration arguments static.

  Compiling once is much faster than eager op-by-op dispatch on new shapes. Checks of
  concrete values (out-of-range ids, k > G, negative lengths) need eager calls, so the
  error tests use `group.f` directly.
  """

  @functools.lru_cache(maxsize=None)
  def __getattr__(self, name):
    fn = getattr(group, name)
    params = inspect.signature(fn).parameters
    return jax.jit(fn, static_argnames=[a for a in STATIC if a in params])


jg = _Jitted()

# float32 against a float64 reference: std-normalised outputs are O(1), with relative
# rounding of a few 1e-7 amplified by cancellation in r − mean.
TOL = dict(rtol=1e-4, atol=2e-5)
V = 3  # examples stacked on the leading (vmapped) axis


# ---------------------------------------------------------------------------------------
# random batches
# ---------------------------------------------------------------------------------------

# ("dense", (P, G)) or ("ragged", group sizes); ragged ids are shuffled per example.
LAYOUTS = [
    ("dense", (3, 4)),
    ("dense", (5, 8)),
    ("dense", (2, 2)),
    ("ragged", (3, 1, 4, 2)),  # one singleton
    ("ragged", (1, 5, 0, 2, 1)),  # an empty group and two singletons
]
LAYOUT_IDS = ["dense3x4", "dense5x8", "dense2x2", "ragged3142", "ragged15021"]


def _shape(layout):
  kind, spec = layout
  return spec if kind == "dense" else (sum(spec),)


def _rewards(rng, layout, kind="mixed", n=V):
  """[n, *shape] float32 rewards with ties, flat groups and NaNs (kind="mixed")."""
  shape = _shape(layout)
  if kind == "binary":
    x = rng.integers(0, 2, (n,) + shape).astype(np.float32)
  else:
    x = np.where(rng.random((n,) + shape) < 0.5, rng.integers(-16, 17, (n,) + shape) / 8.0,
                 rng.uniform(-1.0, 2.0, (n,) + shape)).astype(np.float32)
  if kind == "mixed":
    x[rng.random(x.shape) < 0.1] = np.nan
    if layout[0] == "dense":  # one flat row per example, at a value that rounds (0.1)
      x[np.arange(n), rng.integers(0, shape[0], n)] = np.float32(0.1)
  return x


def _group_ids(rng, layout, n=V):
  sizes = layout[1]
  base = np.repeat(np.arange(len(sizes)), sizes).astype(np.int32)
  return np.stack([rng.permutation(base) for _ in range(n)])


def _valid(rng, layout, n=V, p=0.85):
  return rng.random((n,) + _shape(layout)) < p


def _positional(f, ragged, n_extra=0):
  """(x, *extra, [group_ids], valid, **static) -> f(..., valid=valid, **static)."""

  def call(*arrays, **static):
    x, extra, rest = arrays[0], arrays[1:1 + n_extra], arrays[1 + n_extra:]
    if ragged:
      ids, valid = rest
      return f(x, *extra, group_ids=ids, valid=valid, **static)
    (valid,) = rest
    return f(x, *extra, valid=valid, **static)

  return call


def _parity(fn, ref, layout, arrays, n_extra=0, **static):
  ragged = layout[0] == "ragged"
  args = tuple(arrays)
  if ragged:
    static["num_groups"] = len(layout[1])
  return check_jit_and_vmap(_positional(fn, ragged, n_extra), _positional(ref, ragged, n_extra),
                            args, static_kwargs=static, **TOL)


def _layout_args(rng, layout, x):
  """(x, [ids]) for the layout."""
  return (x, _group_ids(rng, layout)) if layout[0] == "ragged" else (x,)


def _grid(options, all_layouts=False):
  """(layout, options) cases: the first options on every layout (but dense [3, 4] unless
  `all_layouts`), the others alternately on the ragged layout with singletons and an
  empty group and on dense [5, 8]. Each case costs two compiles."""
  cases = []
  for n, opt in enumerate(options):
    first = range(len(LAYOUTS)) if all_layouts else range(1, len(LAYOUTS))
    picks = first if n == 0 else ((4,) if n % 2 else (1,))
    for i in picks:
      label = ",".join(f"{k}={v}" for k, v in opt.items()) or "default"
      cases.append(pytest.param(LAYOUTS[i], opt, id=f"{LAYOUT_IDS[i]}-{label}"))
  return cases


# ---------------------------------------------------------------------------------------
# 1. parity with the references under jit and jit(vmap)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout, options", _grid([
    dict(), dict(scale="batch"), dict(scale="none"), dict(singleton="raw"),
    dict(ddof=0, eps=1e-3), dict(singleton="raw", scale="none", eps=0.0)], all_layouts=True))
def test_grpo_matches_reference(layout, options, rng):
  x = _rewards(rng, layout)
  out = _parity(jg.grpo_advantages, ref_grpo, layout,
                _layout_args(rng, layout, x) + (_valid(rng, layout),), **options)
  assert np.all(np.isfinite(out))


@pytest.mark.parametrize("layout, options", _grid([dict(), dict(singleton="raw")]))
def test_rloo_matches_reference(layout, options, rng):
  x = _rewards(rng, layout)
  _parity(jg.rloo_advantages, ref_rloo, layout,
          _layout_args(rng, layout, x) + (_valid(rng, layout),), **options)


@pytest.mark.parametrize("layout, options", _grid([dict(k=1), dict(k=2)]))
def test_passk_advantages_match_reference(layout, options, rng):
  x = _rewards(rng, layout, "binary")
  x[rng.random(x.shape) < 0.1] = np.nan
  _parity(jg.passk_advantages, ref_passk, layout,
          _layout_args(rng, layout, x) + (_valid(rng, layout),), **options)


@pytest.mark.parametrize("k", [4, 8])
def test_passk_advantages_large_k_match_reference(k, rng):
  layout = LAYOUTS[1]  # dense [5, 8]
  x = np.where(rng.random((V, 5, 8)) < 0.3, 1.0, -1.0).astype(np.float32)  # ±1 rewards
  _parity(jg.passk_advantages, ref_passk, layout, (x, _valid(rng, layout, p=0.9)),
          k=k, eps=1e-3)


def test_pass_at_k_matches_reference_jit_vmap(rng):
  n = rng.integers(1, 12, (4, 6))
  c = np.minimum(rng.integers(0, 12, (4, 6)), n)
  k = rng.integers(1, 8, (4, 6))
  check_jit_and_vmap(jg.pass_at_k, ref_pass_at_k, (n, c, k), **TOL)
  check_jit_and_vmap(lambda n, c: jg.pass_at_k(n, c, 3),
                     lambda n, c: ref_pass_at_k(n, c, 3), (n, c), **TOL)


@pytest.mark.parametrize("layout, options", _grid([dict(), dict(singleton="raw")]))
def test_opo_matches_reference(layout, options, rng):
  x = _rewards(rng, layout)
  lengths = rng.integers(0, 20, x.shape).astype(np.float32)
  lengths[0] = 0  # example 0: every group falls back to the plain mean
  args = (x, lengths) + _layout_args(rng, layout, x)[1:] + (_valid(rng, layout),)
  _parity(jg.opo_advantages, ref_opo, layout, args, n_extra=1, **options)


@pytest.mark.parametrize("layout, options", _grid([
    dict(alpha_mode="paper"), dict(alpha_mode="verl"),
    dict(alpha_mode="paper", normalize_std=True),
    dict(alpha_mode="verl", normalize_std=True, ddof=0)]))
def test_gpg_matches_reference(layout, options, rng):
  x = _rewards(rng, layout)
  x[0] = np.round(x[0])  # integer rewards: zeros for the verl rule, more flat groups
  _parity(jg.gpg_advantages, ref_gpg, layout,
          _layout_args(rng, layout, x) + (_valid(rng, layout),), **options)


@pytest.mark.parametrize("shape, ddof, eps", [((4, 6), 1, 1e-8), ((2, 3, 5), 1, 1e-8),
                                              ((7,), 1, 1e-8), ((4, 6), 0, 0.5)])
def test_masked_whiten_matches_reference(shape, ddof, eps, rng):
  x = rng.normal(size=(V,) + shape).astype(np.float32)
  x[rng.random(x.shape) < 0.1] = np.nan  # NaN outside the mask must not leak
  mask = rng.random(x.shape) < 0.7
  mask[np.isnan(x)] = False
  mask[0] = False  # one entry only: fewer than ddof + 1 for ddof = 1
  mask[0].flat[0] = True
  x[0].flat[0] = 1.5
  mask[1] = False  # empty mask
  check_jit_and_vmap(functools.partial(jg.masked_whiten, ddof=ddof, eps=eps),
                     functools.partial(ref_masked_whiten, ddof=ddof, eps=eps), (x, mask),
                     **TOL)


def _contiguous_mask(rng, n, batch, length, left_pad=False):
  """[n, batch, length] masks: one contiguous run of tokens per row (maybe empty)."""
  m = np.zeros((n, batch, length), bool)
  for a in range(n):
    for b in range(batch):
      size = rng.integers(0 if b else 1, length + 1)
      start = rng.integers(0, length - size + 1) if left_pad else 0
      m[a, b, start:start + size] = True
  return m


@pytest.mark.parametrize("gamma, shape", [(1.0, (3, 5)), (1.0, (6, 9)), (0.9, (6, 9))])
def test_reinforce_pp_matches_reference(gamma, shape, rng):
  rew = rng.normal(size=(V,) + shape).astype(np.float32)
  mask = _contiguous_mask(rng, V, *shape, left_pad=True)
  mask[1, 0, ::2] = True  # a row with holes: returns run through masked tokens
  check_jit_and_vmap(functools.partial(jg.reinforce_pp_advantages, gamma=gamma),
                     functools.partial(ref_reinforce_pp, gamma=gamma), (rew, mask), **TOL)


@pytest.mark.parametrize("layout, options", _grid([dict(), dict(singleton="raw")]))
def test_reinforce_pp_baseline_matches_reference(layout, options, rng):
  x = _rewards(rng, layout)
  mask = rng.random((V,) + _shape(layout) + (5,)) < 0.7
  ids = _layout_args(rng, layout, x)[1:]
  args = (x, mask) + ids + (_valid(rng, layout),)
  _parity(jg.reinforce_pp_baseline_advantages, ref_reinforce_pp_baseline, layout, args,
          n_extra=1, **options)


@pytest.mark.parametrize("greedy_shape", [(3, 4), (3, 1)])
def test_remax_matches_reference(greedy_shape, rng):
  x = _rewards(rng, ("dense", (3, 4)))
  greedy = rng.normal(size=(V,) + greedy_shape).astype(np.float32)
  greedy[0, 0, 0] = np.nan  # unscorable greedy reward: its samples get 0
  valid = rng.random(x.shape) < 0.8
  check_jit_and_vmap(lambda r, g, v: jg.remax_advantages(r, g, valid=v),
                     lambda r, g, v: ref_remax(r, g, valid=v), (x, greedy, valid), **TOL)


@pytest.mark.parametrize("shape, options", [
    ((3, 4), dict()), ((6,), dict()), ((3, 4), dict(margin=0.25)),
    ((2, 3, 5), dict(temperature=0.5))])
def test_score_preferences_matches_reference(shape, options, rng):
  s = (rng.integers(-8, 9, (V,) + shape) / 8.0).astype(np.float32)  # exact diffs, ties
  s[rng.random(s.shape) < 0.1] = np.nan
  check_jit_and_vmap(functools.partial(jg.score_preferences, **options),
                     functools.partial(ref_score_preferences, **options), (s,), **TOL)


@pytest.mark.parametrize("shape, judged", [
    ((3, 4, 4), "both"), ((2, 2, 2), "both"), ((6, 6), "both"), ((5, 8, 8), "upper")])
def test_win_rate_rewards_matches_reference(shape, judged, rng):
  o = rng.random((V,) + shape).astype(np.float32)
  o = np.where(rng.random(o.shape) < 0.3, np.round(o * 2) / 2, o).astype(np.float32)
  o[rng.random(o.shape) < 0.1] = np.nan
  valid = rng.random((V,) + shape[:-1]) < 0.8
  out = check_jit_and_vmap(lambda p, v: jg.win_rate_rewards(p, valid=v, judged=judged),
                           lambda p, v: ref_win_rate(p, valid=v, judged=judged), (o, valid),
                           **TOL)
  assert np.all((out >= 0) & (out <= 1))


def test_references_are_not_trivial(rng):
  """Guards the parity tests: the references see nonzero, non-flat values."""
  x = _rewards(rng, LAYOUTS[1])
  assert np.count_nonzero(ref_grpo(x[0])) > 10
  assert np.count_nonzero(ref_rloo(x[0])) > 10


# ---------------------------------------------------------------------------------------
# 2. identities
# ---------------------------------------------------------------------------------------


def test_rloo_is_scaled_mean_centring(rng):
  x = rng.normal(size=(5, 8)).astype(np.float32)
  centred = x - x.mean(axis=1, keepdims=True)
  assert_close(jg.rloo_advantages(x), 8 / 7 * centred)
  ids = np.array([0, 1, 1, 0, 2, 1, 0, 0, 2], np.int32)
  xr = rng.normal(size=9).astype(np.float32)
  want = np.zeros(9)
  for g in range(3):
    sel = ids == g
    n = sel.sum()
    want[sel] = n / (n - 1) * (xr[sel] - xr[sel].mean())
  assert_close(jg.rloo_advantages(xr, ids, 3), want)


def test_grpo_scale_none_is_mean_centring(rng):
  x = rng.normal(size=(4, 6)).astype(np.float32)
  assert_close(jg.grpo_advantages(x, scale="none"), x - x.mean(axis=1, keepdims=True))


def test_grpo_scale_batch_uses_batch_std(rng):
  x = rng.normal(size=(4, 6)).astype(np.float32)
  want = (x - x.mean(axis=1, keepdims=True)) / (np.std(x, ddof=1) + 1e-6)
  assert_close(jg.grpo_advantages(x, scale="batch"), want, rtol=1e-4)


def _passk_rows(n=16, seed=0):
  """Row c has c correct answers out of n, shuffled."""
  rng = np.random.default_rng(seed)
  rows = np.zeros((n + 1, n), np.float32)
  for c in range(n + 1):
    rows[c, rng.permutation(n)[:c]] = 1.0
  return rows


def test_passk_sums_to_zero_for_every_c():
  rows = _passk_rows()
  adv = np.asarray(jg.passk_advantages(rows, 4), np.float64)
  assert np.all(np.isfinite(adv))
  # float32 gammaln: C(n − c, k)/C(n, k) is good to ~1e-5 and A_neg cancels 1 − ρ − ratio
  np.testing.assert_allclose(adv.sum(axis=1), 0.0, atol=5e-4)
  # the float64 reference sums to 0 to rounding, and matches
  want = ref_passk(rows, 4)
  np.testing.assert_allclose(want.sum(axis=1), 0.0, atol=1e-12)
  assert_close(adv, want, rtol=1e-3, atol=1e-4)
  assert np.any(np.abs(adv) > 0.1)


def test_passk_k1_is_grpo_with_population_std():
  rows = _passk_rows()
  for eps in (1e-6, 1e-3):
    assert_close(jg.passk_advantages(rows, 1, eps=eps),
                 jg.grpo_advantages(rows, ddof=0, eps=eps), rtol=1e-4, atol=1e-5)
    # and the closed form (1 − p)/(σ + ε), −p/(σ + ε) with the population σ
    p = rows.mean(axis=1, keepdims=True)
    sigma = np.sqrt(p * (1 - p))
    want = np.where(sigma > 0, np.where(rows > 0, 1 - p, -p) / (sigma + eps), 0.0)
    assert_close(jg.passk_advantages(rows, 1, eps=eps), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("c, pos, neg", [(1, 1.73, -0.12), (4, 0.61, -0.20),
                                         (8, 0.20, -0.20)])
def test_passk_spec_worked_numbers(c, pos, neg):
  row = _passk_rows()[c:c + 1]
  adv = np.asarray(jg.passk_advantages(row, 4))[0]
  np.testing.assert_allclose(adv[row[0] > 0], pos, atol=0.006)
  np.testing.assert_allclose(adv[row[0] == 0], neg, atol=0.006)


def test_passk_saturated_and_all_wrong_groups_are_zero():
  rows = _passk_rows()
  adv = np.asarray(jg.passk_advantages(rows, 4))
  np.testing.assert_array_equal(adv[13:], 0.0)  # c > n − k: every 4-subset has a hit
  np.testing.assert_array_equal(adv[0], 0.0)
  assert np.all(adv[1:13] != 0)


def test_passk_bool_and_pm1_inputs_agree():
  rows = _passk_rows(8)
  want = jg.passk_advantages(rows, 3)
  assert_close(jg.passk_advantages(rows > 0, 3), want)
  assert_close(jg.passk_advantages(2 * rows - 1, 3), want)


def test_pass_at_k_matches_subset_enumeration():
  cases = [(n, c, k) for n in range(1, 8) for c in range(n + 1) for k in range(1, 9)]
  n, c, k = (np.array(v) for v in zip(*cases))
  want = [ref_pass_at_k_enumerated(*case) for case in cases]
  assert_close(jax.jit(jg.pass_at_k)(n, c, k), want, atol=2e-6)
  assert_close(jg.pass_at_k(n.astype(np.float32), c.astype(np.float32), k), want, atol=2e-6)


def test_pass_at_k_large_n_log_space():
  # n = 1000 would overflow a direct binomial in float32; the log-space form does not.
  got = float(jg.pass_at_k(1000, 10, 100))
  want = 1.0 - math.prod(1 - 100 / i for i in range(991, 1001))
  assert abs(got - want) < 1e-3


@given(st.lists(st.lists(st.booleans(), min_size=6, max_size=6), min_size=3, max_size=3),
       st.integers(0, 2**31 - 1), st.sampled_from(["both", "upper"]))
def test_win_rates_sum_to_half_n(valid, seed, judged):
  # G fixed at 6 (one compile per mode); the valid masks make groups of 0 to 6 samples
  g = 6
  rng = np.random.default_rng(seed)
  o = rng.random((3, g, g)).astype(np.float32)
  o[rng.random(o.shape) < 0.15] = np.nan
  o[0] = np.round(o[0] * 2) / 2  # judgements in {0, ½, 1} (and NaN)
  valid = np.array(valid, bool)
  w = np.asarray(jg.win_rate_rewards(o, judged=judged))
  np.testing.assert_allclose(w.sum(axis=-1), g / 2, atol=1e-5)
  w = np.asarray(jg.win_rate_rewards(o, valid=valid, judged=judged))
  for b in range(3):
    n = valid[b].sum()
    if n >= 2:
      np.testing.assert_allclose(w[b][valid[b]].sum(), n / 2, atol=1e-5)
    np.testing.assert_array_equal(w[b][~valid[b]], 0.5)


def test_all_ties_give_half_and_zero_advantage():
  scores = np.array([[0.7, 0.7, 0.7, 0.7], [0.70, 0.701, 0.699, 0.7005]], np.float32)
  w = jg.win_rate_rewards(jg.score_preferences(scores, margin=0.01))
  np.testing.assert_array_equal(np.asarray(w), 0.5)
  np.testing.assert_array_equal(np.asarray(jg.grpo_advantages(w)), 0.0)
  w = jg.win_rate_rewards(jnp.full((2, 5, 5), 0.5))
  np.testing.assert_array_equal(np.asarray(w), 0.5)
  np.testing.assert_array_equal(np.asarray(jg.grpo_advantages(w, eps=0.0)), 0.0)


@pytest.mark.parametrize("g", [2, 3, 6])
def test_strict_total_order_gives_rank_over_g_minus_1(g, rng):
  scores = rng.permutation(g).astype(np.float32) * 0.001 + 0.5  # tiny gaps
  ranks = np.argsort(np.argsort(scores))  # number of samples each one beats
  want = ranks / (g - 1)
  assert_close(jg.win_rate_rewards(jg.score_preferences(scores)), want)
  beats = (scores[:, None] > scores[None, :]).astype(np.float32)
  assert_close(jg.win_rate_rewards(beats), want)
  assert_close(jg.win_rate_rewards(np.triu(beats, 1), judged="upper"), want)


def _official_pref_grpo_win_rates(g, judge):
  """Pref-GRPO's _pairwise_win_rate: each pair judged once, sample i shown first."""
  wins = [0.0] * g
  for i, j in itertools.combinations(range(g), 2):
    outcome = judge(i, j)  # 1: i wins, 0: j wins, 0.5: tie / unparsable
    wins[i] += outcome
    wins[j] += 1.0 - outcome
  return [w / (g - 1) for w in wins]


@pytest.mark.parametrize("g", [2, 4, 7])
def test_judged_upper_matches_official_one_order_per_pair(g, rng):
  outcomes = rng.choice([0.0, 0.5, 1.0], size=(g, g))
  want = _official_pref_grpo_win_rates(g, lambda i, j: outcomes[i, j])
  prefs = np.where(np.triu(np.ones((g, g), bool), 1), outcomes, np.nan)  # never read
  assert_close(jg.win_rate_rewards(prefs.astype(np.float32), judged="upper"), want)
  garbage = np.where(np.triu(np.ones((g, g), bool), 1), outcomes, rng.random((g, g)))
  assert_close(jg.win_rate_rewards(garbage.astype(np.float32), judged="upper"), want)
  # "both" on a matrix that is already consistent (o_ji = 1 − o_ij) agrees too
  full = np.where(np.triu(np.ones((g, g), bool), 1), outcomes, 1.0 - outcomes.T)
  assert_close(jg.win_rate_rewards(full.astype(np.float32)), want)


def test_judged_both_averages_out_position_bias():
  # A judge that always prefers the sample shown first: o_ij = 1 for all i != j.
  biased = np.ones((4, 4), np.float32)
  np.testing.assert_allclose(np.asarray(jg.win_rate_rewards(biased)), 0.5)
  assert not np.allclose(np.asarray(jg.win_rate_rewards(biased, judged="upper")), 0.5)


def test_g2_ddof1_gives_pm_0_7071():
  want = np.array([[-1.0, 1.0], [1.0, -1.0]]) / math.sqrt(2)
  x = np.array([[0.3, 0.9], [0.51, 0.5]], np.float32)
  assert_close(jg.grpo_advantages(x), want, rtol=1e-3, atol=1e-3)
  w = jg.win_rate_rewards(jg.score_preferences(np.array([[0.5, 0.501]], np.float32)))
  assert_close(jg.grpo_advantages(w), want[:1], rtol=1e-5, atol=1e-5)
  assert_close(jg.grpo_advantages(x, ddof=0), want * math.sqrt(2), rtol=1e-3, atol=1e-3)


def test_grpo_scale_invariance_per_prompt(rng):
  x = rng.normal(size=(3, 5)).astype(np.float32)
  c = np.array([[0.5], [3.0], [10.0]], np.float32)
  assert_close(jg.grpo_advantages(c * x, eps=0.0), jg.grpo_advantages(x, eps=0.0),
               rtol=1e-4, atol=1e-5)


def test_dense_equals_ragged(rng):
  x = rng.normal(size=(3, 4)).astype(np.float32)
  perm = rng.permutation(12)
  flat, ids = x.ravel()[perm], np.repeat(np.arange(3), 4)[perm].astype(np.int32)
  lengths = rng.integers(1, 9, 12).astype(np.float32)
  pairs = [
      (jg.grpo_advantages(x), jg.grpo_advantages(flat, ids, 3)),
      (jg.grpo_advantages(x, scale="batch"),
       jg.grpo_advantages(flat, ids, 3, scale="batch")),
      (jg.rloo_advantages(x), jg.rloo_advantages(flat, ids, 3)),
      (jg.gpg_advantages(x), jg.gpg_advantages(flat, ids, 3)),
      (jg.opo_advantages(x, lengths.reshape(3, 4)),
       jg.opo_advantages(flat, lengths[perm], ids, 3)),
  ]
  for dense, ragged in pairs:
    assert_close(np.asarray(dense).ravel()[perm], ragged)


def test_opo_equal_lengths_is_mean_centring(rng):
  x = rng.normal(size=(3, 5)).astype(np.float32)
  assert_close(jg.opo_advantages(x, np.full((3, 5), 7.0)), x - x.mean(1, keepdims=True))


def test_gpg_alpha_values():
  # paper: 8 valid, 4 in the flat group -> α = 2; verl: 2 nonzero rewards -> α = 4
  x = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
  centred = x - x.mean(axis=1, keepdims=True)
  assert_close(jg.gpg_advantages(x), 2.0 * centred)
  assert_close(jg.gpg_advantages(x, alpha_mode="verl"), 4.0 * centred)
  x[1] = [1.0, 1.0, 1.0, 1.0]  # all-correct group: verl counts its 4 nonzero rewards
  assert_close(jg.gpg_advantages(x, alpha_mode="verl"), 8 / 6 * centred)
  assert_close(jg.gpg_advantages(x), 2.0 * centred)


# ---------------------------------------------------------------------------------------
# 3. edge cases: singletons, zero variance, unscorable / invalid samples, empty masks
# ---------------------------------------------------------------------------------------

SINGLE_IDS = np.array([0, 1, 1, 1, 2], np.int32)  # groups 0 and 2 are singletons
SINGLE_R = np.array([0.8, 0.2, 0.5, 1.0, -0.6], np.float32)
SINGLE_L = np.array([3.0, 5.0, 1.0, 2.0, 4.0], np.float32)

# name -> f(x, lengths, group_ids, num_groups, valid), one value per sample. Always
# called with the same argument structure, so that tests share compiles (see `_call`).
GROUP_FNS = {
    "grpo": lambda x, l, i, n, v: jg.grpo_advantages(x, i, n, valid=v),
    "grpo_batch": lambda x, l, i, n, v: jg.grpo_advantages(x, i, n, scale="batch", valid=v),
    "grpo_none": lambda x, l, i, n, v: jg.grpo_advantages(x, i, n, scale="none", valid=v),
    "rloo": lambda x, l, i, n, v: jg.rloo_advantages(x, i, n, valid=v),
    "opo": lambda x, l, i, n, v: jg.opo_advantages(x, l, i, n, valid=v),
    "gpg": lambda x, l, i, n, v: jg.gpg_advantages(x, i, n, valid=v),
    "gpg_verl_std": lambda x, l, i, n, v: jg.gpg_advantages(
        x, i, n, alpha_mode="verl", normalize_std=True, valid=v),
    "passk": lambda x, l, i, n, v, k=1: jg.passk_advantages(x, k, i, n, valid=v),
    # all-ones token masks: each group's centred rewards sum to 0, so the token mean is 0
    "rpp_baseline": lambda x, l, i, n, v: jg.reinforce_pp_baseline_advantages(
        x, jnp.ones(x.shape + (3,), bool), i, n, valid=v)[..., 0],
}
REMOVAL_FNS = dict(GROUP_FNS, remax=lambda x, l, i, n, v: jg.remax_advantages(x, l / 10.0,
                                                                              valid=v))


def _call(name, x, group_ids=None, num_groups=None, valid=None, lengths=None, **kw):
  x = np.asarray(x, np.float32)
  valid = np.ones(x.shape, bool) if valid is None else np.asarray(valid, bool)
  if lengths is None:
    lengths = (np.arange(x.size) % 5 + 1).reshape(x.shape).astype(np.float32)
  return np.asarray(REMOVAL_FNS[name](x, lengths, group_ids, num_groups, valid, **kw))


@pytest.mark.parametrize("name", list(GROUP_FNS))
def test_singleton_groups_get_zero(name):
  r = SINGLE_R if name != "passk" else SINGLE_R > 0.4
  out = _call(name, r, SINGLE_IDS, 3)
  assert np.all(np.isfinite(out))
  atol = 1e-6 if name == "rpp_baseline" else 0  # whitening: token mean 0 up to rounding
  np.testing.assert_allclose(out[[0, 4]], 0.0, atol=atol)
  assert np.any(out[1:4] != 0)
  # dense: a row with one valid sample is a singleton as well
  dense = np.array([[0.3, 0.9, 0.1, 0.5, 0.2, 0.8, 0.6], [0.7, 0.2, 0.4, 0.1, 0, 1, 1]])
  valid = np.ones((2, 7), bool)
  valid[1, 1:] = False
  out = _call(name, dense if name != "passk" else dense > 0.35, valid=valid)
  assert np.all(np.isfinite(out))
  np.testing.assert_allclose(out[1], 0.0, atol=atol)
  assert np.any(out[0] != 0)


def test_singleton_raw_reproduces_verl():
  eps = 1e-6
  grpo = np.asarray(jg.grpo_advantages(SINGLE_R, SINGLE_IDS, 3, singleton="raw"))
  assert_close(grpo[[0, 4]], SINGLE_R[[0, 4]] / (1 + eps), rtol=1e-6, atol=0)
  big = np.asarray(jg.grpo_advantages(SINGLE_R, SINGLE_IDS, 3, singleton="raw", eps=0.5))
  assert_close(big[[0, 4]], SINGLE_R[[0, 4]] / 1.5, rtol=1e-6, atol=0)
  assert_close(grpo[1:4], ref_grpo(SINGLE_R, SINGLE_IDS, 3)[1:4])
  for fn in (jg.rloo_advantages,
             lambda r, ids, ng, **kw: jg.opo_advantages(r, SINGLE_L, ids, ng, **kw)):
    out = np.asarray(fn(SINGLE_R, SINGLE_IDS, 3, singleton="raw"))
    np.testing.assert_array_equal(out[[0, 4]], SINGLE_R[[0, 4]])
    np.testing.assert_array_equal(out[1:4], np.asarray(fn(SINGLE_R, SINGLE_IDS, 3))[1:4])
  # a singleton with zero length (Σ L = 0) still gets the raw reward
  out = jg.opo_advantages(SINGLE_R, np.zeros(5, np.float32), SINGLE_IDS, 3, singleton="raw")
  np.testing.assert_array_equal(np.asarray(out)[[0, 4]], SINGLE_R[[0, 4]])
  # REINFORCE++-baseline: a = r for the singleton before whitening
  mask = np.ones((5, 2), bool)
  raw = jg.reinforce_pp_baseline_advantages(SINGLE_R, mask, SINGLE_IDS, 3, singleton="raw")
  assert_close(raw, ref_reinforce_pp_baseline(SINGLE_R, mask, SINGLE_IDS, 3,
                                              singleton="raw"))


@pytest.mark.parametrize("name", list(GROUP_FNS))
def test_zero_variance_groups_get_zero(name):
  values = [0.0, 1.0] if name == "passk" else [0.0, 1.0, 0.1, 0.7, -0.3, 1 / 3]
  for value in values:
    x = np.full((2, 7), value, np.float32)
    x[1] = np.linspace(0, 1, 7)
    out = _call(name, x)
    assert np.all(np.isfinite(out))
    if name in ("rloo", "opo", "rpp_baseline"):
      # no std to blow up the rounding of the (weighted / token) mean
      np.testing.assert_allclose(out[0], 0.0, atol=1e-6, err_msg=f"value={value}")
    else:
      np.testing.assert_array_equal(out[0], 0.0, err_msg=f"value={value}")
    assert np.any(out[1] != 0)
    # every group flat
    np.testing.assert_allclose(_call(name, np.full((2, 7), value)), 0.0,
                               atol=1e-6 if name in ("rloo", "opo") else 0)


@pytest.mark.parametrize("scale", ["group", "batch"])
def test_eps_zero_with_zero_variance_is_zero_not_nan(scale):
  x = np.array([[1.0, 1.0, 1.0], [0.1, 0.1, 0.1]], np.float32)
  for r in (x, np.repeat(x[:1], 2, axis=0)):  # batch std 0 in the second case
    np.testing.assert_array_equal(np.asarray(jg.grpo_advantages(r, eps=0.0, scale=scale)),
                                  0.0)
  if scale == "batch":
    return
  np.testing.assert_array_equal(
      np.asarray(jg.gpg_advantages(x, normalize_std=True, eps=0.0)), 0.0)
  np.testing.assert_array_equal(
      np.asarray(jg.passk_advantages(np.array([[0, 0, 0], [1, 1, 1]]), 2, eps=0.0)), 0.0)
  assert_close(jg.passk_advantages(np.array([[1, 0, 0, 1]]), 1, eps=0.0), [[1, -1, -1, 1]])
  mask = np.ones((2, 3), bool)
  np.testing.assert_array_equal(
      np.asarray(jg.masked_whiten(np.ones((2, 3)), mask, eps=0.0)), 0.0)
  np.testing.assert_array_equal(
      np.asarray(jg.masked_whiten(np.full((2, 3), 0.1, np.float32), mask, eps=0.0)), 0.0)
  np.testing.assert_array_equal(
      np.asarray(jg.reinforce_pp_advantages(np.zeros((2, 3)), mask, eps=0.0)), 0.0)
  np.testing.assert_array_equal(
      np.asarray(jg.reinforce_pp_baseline_advantages(x, np.ones((2, 3, 2)), eps=0.0)),
      0.0)


def _removal_case(rng):
  """Ragged [8] batch, 3 groups, 3 unscorable samples incl. all of group 2; the kept
  batch is [5] with 3 groups like SINGLE_R (shapes are shared to share compiles)."""
  ids = np.array([0, 1, 0, 2, 1, 0, 1, 2], np.int32)
  drop = np.array([0, 0, 1, 1, 0, 0, 0, 1], bool)
  x = np.array([0.25, 1.0, 0.5, -1.0, -0.5, -0.75, 0.75, 2.0], np.float32)
  x = np.where(rng.random(8) < 0.5, x, x[::-1]).astype(np.float32)
  x[[1, 4]] = [1.0, -0.5]  # group 1 is never flat
  lengths = rng.integers(1, 10, 8).astype(np.float32)
  return x, ids, drop, lengths


@pytest.mark.parametrize("name, how", [(n, h) for n in REMOVAL_FNS for h in (
    "nan", "invalid") + (("inf",) if n in ("grpo", "passk", "remax") else ())])
def test_unscorable_samples_are_left_out(name, how, rng):
  x, ids, drop, lengths = _removal_case(rng)
  kw = {}
  if name == "passk":
    x = (np.arange(8) == 4).astype(np.float32)  # kept group 1 is [0, 1, 0]
    kw = dict(k=2)
  keep = ~drop
  want = _call(name, x[keep], ids[keep], 3, lengths=lengths[keep], **kw)
  bad = x.copy()
  valid = None
  if how == "nan":
    bad[drop] = np.nan
  elif how == "inf":
    bad[drop] = np.where(np.arange(drop.sum()) % 2, np.inf, -np.inf)
  else:
    bad[drop] = 1e3  # a value that would dominate every statistic if it leaked
    valid = keep
  got = _call(name, bad, ids, 3, valid=valid, lengths=lengths, **kw)
  assert np.all(np.isfinite(got))
  np.testing.assert_array_equal(got[drop], 0.0)
  assert_close(got[keep], want, rtol=1e-5, atol=1e-6)
  assert np.any(want != 0)


@pytest.mark.parametrize("name", ["grpo", "grpo_batch", "rloo", "gpg", "passk", "opo"])
def test_dense_unscorable_equals_ragged_removed(name, rng):
  x = (rng.integers(0, 5, (2, 7)) / 4).astype(np.float32)
  x[:, :2] = [0.0, 1.0]  # no flat row
  if name == "passk":
    x = (x > 0.4).astype(np.float32)
  bad = x.copy()
  bad[0, [1, 4, 5]] = np.nan
  bad[1, [0, 3, 6]] = np.nan
  keep = np.isfinite(bad)
  ids = np.repeat(np.arange(2), 7).astype(np.int32).reshape(2, 7)
  lengths = (np.arange(14) % 5 + 1).reshape(2, 7).astype(np.float32)
  # ragged [8] with an empty third group: the shape of test_unscorable_samples_are_left_out
  want = _call(name, x[keep], ids[keep], 3, lengths=lengths[keep])
  got = _call(name, bad)
  assert np.all(np.isfinite(got))
  np.testing.assert_array_equal(got[~keep], 0.0)
  assert_close(got[keep], want, rtol=1e-5, atol=1e-6)
  assert np.any(want != 0)


def test_invalid_samples_left_out_of_win_rates_and_whitening(rng):
  o = rng.random((6, 6)).astype(np.float32)
  valid = np.array([1, 0, 1, 1, 0, 1], bool)
  sub = o[np.ix_(valid, valid)]
  for judged in ("both", "upper"):
    got = np.asarray(jg.win_rate_rewards(o, valid=valid, judged=judged))
    assert_close(got[valid], jg.win_rate_rewards(sub, judged=judged))
    np.testing.assert_array_equal(got[~valid], 0.5)
  x = rng.normal(size=10).astype(np.float32)
  m = rng.random(10) < 0.6
  got = np.asarray(jg.masked_whiten(x, m))
  assert_close(got[m], jg.masked_whiten(x[m], np.ones(m.sum(), bool)))
  np.testing.assert_array_equal(got[~m], 0.0)


def test_all_nan_group_and_all_invalid_batch():
  x = np.array([[np.nan] * 7, [0.0, 1.0, 1.0, 0.0, 1.0, 0.5, 0.25]], np.float32)
  for name in GROUP_FNS:
    out = _call(name, x)
    assert np.all(np.isfinite(out)), name
    np.testing.assert_array_equal(out[0], 0.0)  # rpp_baseline: 0 on every token
    assert np.any(out[1] != 0), name
    np.testing.assert_array_equal(_call(name, np.full((2, 7), np.nan)), 0.0)
    np.testing.assert_array_equal(_call(name, x, valid=np.zeros((2, 7), bool)), 0.0)
  np.testing.assert_array_equal(
      np.asarray(jg.remax_advantages(x, np.zeros((2, 1)), valid=np.zeros((2, 7)))), 0.0)
  w = np.asarray(jg.win_rate_rewards(np.full((3, 3), np.nan)))
  np.testing.assert_array_equal(w, 0.5)


def test_empty_masks():
  x = np.arange(12, dtype=np.float32).reshape(3, 4)
  for ddof in (0, 1):
    np.testing.assert_array_equal(
        np.asarray(jg.masked_whiten(x, np.zeros((3, 4), bool), ddof=ddof)), 0.0)
  one = np.zeros((3, 4), bool)
  one[1, 2] = True
  np.testing.assert_array_equal(np.asarray(jg.masked_whiten(x, one)), 0.0)  # n <= ddof
  np.testing.assert_array_equal(np.asarray(jg.masked_whiten(x, one, ddof=0)), 0.0)
  np.testing.assert_array_equal(
      np.asarray(jg.reinforce_pp_advantages(x, np.zeros((3, 4), bool))), 0.0)
  np.testing.assert_array_equal(
      np.asarray(jg.reinforce_pp_baseline_advantages(x[:, :2], np.zeros((3, 2, 4)))), 0.0)
  # float 0/1 masks work like bool masks
  m = (x % 3 != 0)
  assert_close(jg.masked_whiten(x, m.astype(np.float32)), jg.masked_whiten(x, m))


def test_opo_zero_lengths_fall_back_to_mean(rng):
  x = rng.normal(size=(2, 5)).astype(np.float32)
  lengths = np.array([[0, 0, 0, 0, 0], [0, 0, 3, 0, 0]], np.float32)
  out = np.asarray(jg.opo_advantages(x, lengths))
  assert_close(out[0], x[0] - x[0].mean())
  assert_close(out[1], x[1] - x[1, 2])  # the only sample with weight is the baseline
  # invalid samples carry no weight: the group whose only weighted sample is invalid
  valid = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 1, 1]], bool)
  out = np.asarray(jg.opo_advantages(x, lengths, valid=valid))
  keep = valid[1]
  assert_close(out[1][keep], x[1][keep] - x[1][keep].mean())
  assert out[1, 2] == 0


def test_ragged_passk_group_smaller_than_k():
  ids = np.array([0, 0, 1, 1, 1, 1, 1], np.int32)
  x = np.array([1, 0, 1, 0, 0, 0, 0], np.float32)
  out = np.asarray(jg.passk_advantages(x, 3, ids, 2))
  np.testing.assert_array_equal(out[:2], 0.0)
  assert_close(out[2:], ref_passk(x[None, 2:], 3)[0])
  assert np.any(out[2:] != 0)


# ---------------------------------------------------------------------------------------
# 4. bad input: ValueError naming the argument
# ---------------------------------------------------------------------------------------

R2 = np.zeros((2, 3), np.float32)
R1 = np.zeros(6, np.float32)
IDS = np.array([0, 0, 1, 1, 2, 2], np.int32)

BAD_CALLS = [
    ("rewards", lambda: group.grpo_advantages(R1)),
    ("rewards", lambda: group.grpo_advantages(np.zeros((2, 3, 4)))),
    ("rewards", lambda: group.grpo_advantages(R2, IDS, 3)),
    ("rewards", lambda: group.rloo_advantages(R1)),
    ("rewards", lambda: group.opo_advantages(R1, R1)),
    ("rewards", lambda: group.gpg_advantages(R1)),
    ("correct", lambda: group.passk_advantages(R1, 1)),
    ("rewards", lambda: group.reinforce_pp_baseline_advantages(R1, np.ones((6, 2)))),
    ("token_rewards", lambda: group.reinforce_pp_advantages(R1, R1)),
    ("scores", lambda: group.score_preferences(np.float32(1.0))),
    ("preferences", lambda: group.win_rate_rewards(R1)),
    ("preferences", lambda: group.win_rate_rewards(np.zeros((2, 3, 4)))),
    ("valid", lambda: group.grpo_advantages(R2, valid=np.ones((3, 2), bool))),
    ("valid", lambda: group.rloo_advantages(R1, IDS, 3, valid=np.ones(5, bool))),
    ("valid", lambda: group.passk_advantages(R2, 1, valid=np.ones((2, 4), bool))),
    ("valid", lambda: group.remax_advantages(R2, R2, valid=np.ones(3, bool))),
    ("valid", lambda: group.win_rate_rewards(np.zeros((3, 3)), valid=np.ones(4, bool))),
    ("group_ids", lambda: group.grpo_advantages(R1, IDS[:5], 3)),
    ("lengths", lambda: group.opo_advantages(R2, np.ones((2, 4)))),
    ("response_mask", lambda: group.reinforce_pp_advantages(R2, np.ones((2, 4), bool))),
    ("response_mask", lambda: group.reinforce_pp_baseline_advantages(R2, np.ones((2, 4, 5)))),
    ("response_mask", lambda: group.reinforce_pp_baseline_advantages(R2, np.ones((2, 3)))),
    ("response_mask", lambda: group.reinforce_pp_baseline_advantages(R1, np.ones((5, 2)), IDS,
                                                                     3)),
    ("mask", lambda: group.masked_whiten(R2, np.ones((3, 2), bool))),
    ("greedy_rewards", lambda: group.remax_advantages(R2, np.zeros((3, 1)))),
    ("num_groups", lambda: group.grpo_advantages(R1, IDS)),
    ("num_groups", lambda: group.grpo_advantages(R2, num_groups=2)),
    ("num_groups", lambda: group.rloo_advantages(R1, IDS, 0)),
    ("num_groups", lambda: group.passk_advantages(R1, 1, IDS)),
    ("num_groups", lambda: group.grpo_advantages(R1, IDS, 3.0)),
    ("group_ids", lambda: group.grpo_advantages(R1, IDS.astype(np.float32), 3)),
    ("group_ids", lambda: group.opo_advantages(R1, R1, IDS.astype(np.float32), 3)),
    ("group_ids", lambda: group.grpo_advantages(R1, IDS, 2)),
    ("group_ids", lambda: group.grpo_advantages(R1, IDS - 1, 3)),
    ("group_ids", lambda: group.passk_advantages(R1, 1, IDS + 1, 3)),
    ("scale", lambda: group.grpo_advantages(R2, scale="std")),
    ("singleton", lambda: group.grpo_advantages(R2, singleton="nan")),
    ("singleton", lambda: group.rloo_advantages(R2, singleton="verl")),
    ("singleton", lambda: group.opo_advantages(R2, R2, singleton="one")),
    ("singleton", lambda: group.reinforce_pp_baseline_advantages(R2, np.ones((2, 3, 2)),
                                                                 singleton="x")),
    ("alpha_mode", lambda: group.gpg_advantages(R2, alpha_mode="official")),
    ("judged", lambda: group.win_rate_rewards(np.zeros((3, 3)), judged="lower")),
    ("k", lambda: group.passk_advantages(R2, 4)),
    ("k", lambda: group.passk_advantages(R2, 0)),
    ("k", lambda: group.pass_at_k(4, 2, 0)),
    ("lengths", lambda: group.opo_advantages(R2, -np.ones((2, 3)))),
    ("eps", lambda: group.grpo_advantages(R2, eps=-1e-3)),
    ("eps", lambda: group.grpo_advantages(R2, eps=float("nan"))),
    ("eps", lambda: group.masked_whiten(R2, R2 == 0, eps=np.float32(np.nan))),
    ("k", lambda: group.passk_advantages(R2, float("nan"))),
    ("gamma", lambda: group.reinforce_pp_advantages(R2, R2 == 0, gamma=float("nan"))),
    ("temperature", lambda: group.score_preferences(R2, temperature=float("nan"))),
    ("ddof", lambda: group.grpo_advantages(R2, ddof=-1)),
    ("ddof", lambda: group.gpg_advantages(R2, ddof=1.0)),
    ("gamma", lambda: group.reinforce_pp_advantages(R2, R2 == 0, gamma=1.5)),
    ("margin", lambda: group.score_preferences(R2, margin=-0.1)),
    ("temperature", lambda: group.score_preferences(R2, temperature=0.0)),
]


@pytest.mark.parametrize("name, call", BAD_CALLS,
                         ids=[f"{i}-{n}" for i, (n, _) in enumerate(BAD_CALLS)])
def test_bad_input_raises_value_error_naming_the_argument(name, call):
  with pytest.raises(ValueError, match=f"`{name}`"):
    call()


@pytest.mark.parametrize("ids", [IDS + 1, IDS - 1, np.array([0, 0, 1, 1, 7, 2], np.int32)])
def test_concrete_out_of_range_group_ids_name_group_ids_and_num_groups(ids):
  for call in (lambda: group.grpo_advantages(R1, ids, 3),
               lambda: group.passk_advantages(R1, 1, ids, 3),
               lambda: group.opo_advantages(R1, R1, ids, 3)):
    with pytest.raises(ValueError, match=r"`group_ids` must lie in \[0, num_groups\) = "
                                         r"\[0, 3\), got \[-?\d"):
      call()


@pytest.mark.parametrize("name", list(GROUP_FNS))
def test_traced_out_of_range_group_ids_count_as_invalid(name):
  # Documented (module docstring): under jit, a sample whose group id is outside
  # [0, num_groups) is treated as valid=False: advantage 0, in no statistic.
  x = np.array([0.25, 1.0, 0.5, -1.0, -0.5, -0.75, 0.75, 2.0], np.float32)
  if name == "passk":
    x = (x > 0).astype(np.float32)
  ids = np.array([0, 1, 0, 2, 1, 0, 1, 2], np.int32)
  bad = np.array([0, 0, 1, 0, 0, 1, 0, 1], bool)
  wild = np.where(bad, np.array([0, 0, 3, 0, 0, -1, 0, 1 << 20], np.int32), ids)
  want = _call(name, x, np.where(bad, 0, ids).astype(np.int32), 3, valid=~bad)
  got = _call(name, x, wild.astype(np.int32), 3)      # jitted: the ids are traced
  assert np.all(np.isfinite(got))
  np.testing.assert_array_equal(got[bad], 0.0)
  assert_close(got, want, rtol=1e-5, atol=1e-6)
  assert np.any(want != 0)


@pytest.mark.parametrize("name", list(GROUP_FNS))
def test_empty_batches_give_empty_results(name):
  for shape, ids, n in [((3, 0), None, None), ((0, 4), None, None), ((0, 0), None, None),
                        ((0,), np.zeros(0, np.int32), 2)]:
    out = _call(name, np.zeros(shape, np.float32), ids, n)
    assert out.shape == shape and out.dtype == np.float32, (shape, out.shape, out.dtype)
    out = _call_eager(name, np.zeros(shape, np.float32), ids, n)
    assert out.shape == shape and out.dtype == np.float32, (shape, out.shape, out.dtype)


def _call_eager(name, x, group_ids=None, num_groups=None):
  """As `_call`, but with the `group` functions themselves (concrete-value checks run)."""
  valid = np.ones(x.shape, bool)
  lengths = np.ones(x.shape, np.float32)
  fns = {"grpo": lambda: group.grpo_advantages(x, group_ids, num_groups, valid=valid),
         "grpo_batch": lambda: group.grpo_advantages(x, group_ids, num_groups, scale="batch"),
         "grpo_none": lambda: group.grpo_advantages(x, group_ids, num_groups, scale="none"),
         "rloo": lambda: group.rloo_advantages(x, group_ids, num_groups),
         "opo": lambda: group.opo_advantages(x, lengths, group_ids, num_groups),
         "gpg": lambda: group.gpg_advantages(x, group_ids, num_groups),
         "gpg_verl_std": lambda: group.gpg_advantages(x, group_ids, num_groups,
                                                      alpha_mode="verl", normalize_std=True),
         "passk": lambda: group.passk_advantages(x, 1, group_ids, num_groups),
         "rpp_baseline": lambda: group.reinforce_pp_baseline_advantages(
             x, np.ones(x.shape + (3,), bool), group_ids, num_groups)[..., 0]}
  return np.asarray(fns[name]())


def test_empty_whitening_and_win_rates():
  for x in (np.zeros(0, np.float32), np.zeros((0, 5), np.float32), np.zeros((4, 0))):
    out = group.masked_whiten(x, np.ones(x.shape, bool))
    assert out.shape == x.shape and out.dtype == jnp.float32
  out = group.reinforce_pp_advantages(np.zeros((2, 0)), np.zeros((2, 0), bool))
  assert out.shape == (2, 0)
  assert group.win_rate_rewards(np.zeros((3, 0, 0))).shape == (3, 0)
  assert group.score_preferences(np.zeros((3, 0))).shape == (3, 0, 0)


def test_bad_input_raises_under_jit():
  with pytest.raises(ValueError, match="`scale`"):
    jax.jit(lambda r: group.grpo_advantages(r, scale="bad"))(R2)
  with pytest.raises(ValueError, match="`valid`"):
    jax.jit(lambda r, v: group.grpo_advantages(r, valid=v))(R2, np.ones(3, bool))


def test_reinforce_pp_baseline_accepts_matching_shapes():
  # leading dims of the token mask equal to `rewards` must not be rejected
  for r, mask, extra in [(R2, np.ones((2, 3, 4)), ()), (R1, np.ones((6, 4)), (IDS, 3)),
                         (np.zeros((1, 1)), np.ones((1, 1, 1)), ())]:
    out = jg.reinforce_pp_baseline_advantages(r, mask, *extra)
    assert out.shape == mask.shape


# ---------------------------------------------------------------------------------------
# 5. no retrace
# ---------------------------------------------------------------------------------------


def test_no_retrace(rng):
  a, b = rng.normal(size=(2, 4, 6)).astype(np.float32)
  assert_no_retrace(group.grpo_advantages, a, second_args=(b,))
  assert_no_retrace(group.grpo_advantages, a, second_args=(b,), scale="batch")
  ids1, ids2 = (rng.integers(0, 5, 24).astype(np.int32) for _ in range(2))
  assert_no_retrace(group.grpo_advantages, a.ravel(), ids1, second_args=(b.ravel(), ids2),
                    num_groups=5)
  o1, o2 = rng.random((2, 3, 5, 5)).astype(np.float32)
  assert_no_retrace(group.win_rate_rewards, o1, second_args=(o2,))
  assert_no_retrace(group.win_rate_rewards, o1, second_args=(o2,), judged="upper")
  assert_no_retrace(group.passk_advantages, a > 0, 2, second_args=(b > 0, 3))
  assert_no_retrace(group.score_preferences, a, second_args=(b,), margin=0.1)
  assert_no_retrace(group.rloo_advantages, a, second_args=(b,))


# ---------------------------------------------------------------------------------------
# 6. traced coefficients and gradients
# ---------------------------------------------------------------------------------------


def test_vmap_over_eps(rng):
  x = _rewards(rng, ("dense", (3, 4)), n=1)[0]
  eps = np.array([0.0, 1e-6, 1e-2, 0.5, 2.0], np.float32)
  out = jax.jit(jax.vmap(lambda e: jg.grpo_advantages(x, eps=e)))(eps)
  for i, e in enumerate(eps):
    assert_close(out[i], ref_grpo(x, eps=float(e)), **TOL)
  assert not np.allclose(out[0], out[-1])
  out = jax.jit(jax.vmap(lambda e: jg.passk_advantages(x > 0, 2, eps=e)))(eps)
  for i, e in enumerate(eps):
    assert_close(out[i], ref_passk(x > 0, 2, eps=float(e)), **TOL)


def test_vmap_over_k(rng):
  x = (rng.random((4, 8)) < 0.3).astype(np.float32)
  x[0, :2] = np.nan
  ks = np.arange(1, 9)
  for dtype in (np.int32, np.float32):
    out = jax.jit(jax.vmap(lambda k: jg.passk_advantages(x, k)))(ks.astype(dtype))
    for i, k in enumerate(ks):
      assert_close(out[i], ref_passk(x, k), **TOL, err_msg=f"k={k}")
  ids = np.repeat(np.arange(3), [2, 5, 1]).astype(np.int32)
  out = jax.vmap(lambda k: jg.passk_advantages(x[1], k, ids, 3))(ks)
  for i, k in enumerate(ks):
    assert_close(out[i], ref_passk(x[1], k, ids, 3), **TOL)
  n, c = np.array([8, 8, 5]), np.array([1, 4, 0])
  out = jax.jit(jax.vmap(lambda k: jg.pass_at_k(n, c, k)))(ks)
  assert_close(out, [ref_pass_at_k(n, c, k) for k in ks], **TOL)


def test_vmap_over_margin_and_temperature(rng):
  s = (rng.integers(0, 8, (2, 5)) / 8).astype(np.float32)
  margins = np.array([0.0, 0.125, 0.3], np.float32)
  out = jax.vmap(lambda m: jg.score_preferences(s, margin=m))(margins)
  for i, m in enumerate(margins):
    assert_close(out[i], ref_score_preferences(s, margin=float(m)))
  temps = np.array([0.1, 1.0], np.float32)
  out = jax.vmap(lambda t: jg.score_preferences(s, temperature=t))(temps)
  for i, t in enumerate(temps):
    assert_close(out[i], ref_score_preferences(s, temperature=float(t)))


def test_vmap_over_gamma(rng):
  rew = rng.normal(size=(3, 6)).astype(np.float32)
  mask = _contiguous_mask(rng, 1, 3, 6)[0]
  gammas = np.array([0.0, 0.5, 1.0], np.float32)
  out = jax.vmap(lambda g: jg.reinforce_pp_advantages(rew, mask, gamma=g))(gammas)
  for i, g in enumerate(gammas):
    assert_close(out[i], ref_reinforce_pp(rew, mask, gamma=float(g)), **TOL)


def _fd_grad(f, x, h):
  x = np.asarray(x, np.float64)
  g = np.zeros_like(x)
  for i in np.ndindex(x.shape):
    e = np.zeros_like(x)
    e[i] = h
    g[i] = (f(x + e) - f(x - e)) / (2 * h)
  return g


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_grpo_gradient_matches_finite_differences(scale):
  x = np.array([[0.1, 0.5, 0.3, 0.9], [0.2, 0.4, 0.8, 0.0], [1.0, -0.5, 0.25, 0.6]])
  w = np.arange(12.0).reshape(3, 4) / 7 - 0.5

  def loss(r):
    # group.f, not the cached jg.f: a jit cache entry must not be shared across x64 modes
    return jnp.sum(group.grpo_advantages(r, scale=scale) ** 2 * w.astype(r.dtype))

  # central differences of the float64 numpy reference
  fd = _fd_grad(lambda r: float(np.sum(ref_grpo(r, scale=scale) ** 2 * w)), x, 1e-5)
  grad32 = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(x, jnp.float32)))
  with jax.enable_x64(True):  # float64 end to end for a tight comparison
    grad = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(x, jnp.float64)))
  assert np.all(np.isfinite(grad))
  assert np.abs(grad).max() > 0.1
  np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
  # float32 (the default dtype) as well, looser tolerance
  assert np.all(np.isfinite(grad32))
  np.testing.assert_allclose(grad32, fd, rtol=2e-3, atol=2e-3)


def test_gradient_is_finite_with_nan_rewards():
  x = jnp.array([[0.1, jnp.nan, 0.3, 0.9], [0.2, 0.4, 0.8, 0.0]])
  for fn in (jg.grpo_advantages, jg.rloo_advantages, jg.gpg_advantages):
    grad = jax.grad(lambda r: jnp.sum(fn(r) ** 2 * jnp.arange(8.0).reshape(2, 4)))(x)
    assert np.all(np.isfinite(np.asarray(grad)[0, [0, 2, 3]])), fn.__name__
    assert np.all(np.isfinite(np.asarray(grad)[1])), fn.__name__


@pytest.mark.parametrize("scale", ["group", "batch"])
def test_gradient_is_finite_with_singleton_and_flat_groups(scale):
  x = jnp.array([[0.1, 0.5, 0.3, 0.9], [1.0, 1.0, 1.0, 1.0]])
  grad = jax.grad(lambda r: jnp.sum(group.grpo_advantages(r, scale=scale) ** 2
                                    * jnp.arange(8.0).reshape(2, 4)))(x)
  assert np.all(np.isfinite(np.asarray(grad)))
  ragged = jnp.array([0.3, 0.1, 0.7, 2.0])  # group 1 is a singleton
  ids = jnp.array([0, 0, 0, 1])
  g2 = jax.grad(lambda r: jnp.sum(group.grpo_advantages(r, ids, 2, scale=scale) ** 2))(ragged)
  assert np.all(np.isfinite(np.asarray(g2)))
  flat = jnp.ones((3, 5))
  g3 = jax.grad(lambda r: jnp.sum(group.masked_whiten(r, jnp.ones((3, 5), bool), eps=0.0)))(flat)
  assert np.all(np.isfinite(np.asarray(g3)))


# ---------------------------------------------------------------------------------------
# 7. REINFORCE++ parity with a literal transcription of verl
# ---------------------------------------------------------------------------------------


def _verl_masked_whiten(values, mask):
  """verl/utils/torch_functional.py masked_whiten(shift_mean=True), unbiased var."""

  def masked_mean(v, m):
    return (v * m).sum() / (m.sum() + 1e-8)

  mean = masked_mean(values, mask)
  centered = values - mean
  variance = masked_mean(centered ** 2, mask)
  mask_sum = mask.sum()
  if mask_sum == 0 or mask_sum == 1:
    raise ValueError("verl raises for fewer than two masked tokens")
  variance = variance * (mask_sum / (mask_sum - 1))
  return (values - mean) * (1.0 / np.sqrt(variance + 1e-8))


def _verl_reinforce_plus_plus(token_level_rewards, response_mask, gamma):
  """verl compute_reinforce_plus_plus_outcome_advantage (returns do not cross padding)."""
  returns = np.zeros_like(token_level_rewards)
  running_return = np.zeros(token_level_rewards.shape[0])
  for t in reversed(range(token_level_rewards.shape[1])):
    running_return = token_level_rewards[:, t] + gamma * running_return
    returns[:, t] = running_return
    running_return = running_return * response_mask[:, t]  # reset after EOS
  advantages = _verl_masked_whiten(returns, response_mask)
  return advantages * response_mask


def _verl_reinforce_plus_plus_baseline(scores, response_mask, index):
  """verl compute_reinforce_plus_plus_baseline_outcome_advantage (loop over uids)."""
  scores = scores.copy()
  id2score = {}
  for i in range(len(scores)):
    id2score.setdefault(index[i], []).append(scores[i])
  id2mean = {k: (0.0 if len(v) == 1 else np.mean(v)) for k, v in id2score.items()}
  for i in range(len(scores)):
    scores[i] = scores[i] - id2mean[index[i]]
  tiled = scores[:, None] * response_mask
  return _verl_masked_whiten(tiled, response_mask) * response_mask


@pytest.mark.parametrize("gamma", [1.0, 0.95, 0.5])
def test_reinforce_pp_matches_verl(gamma, rng):
  b, length = 6, 10
  mask = _contiguous_mask(rng, 1, b, length)[0].astype(np.float64)  # right-padded
  outcome = rng.integers(0, 2, b).astype(np.float64)
  kl = 0.05 * rng.random((b, length))
  rewards = -kl  # KL-in-reward on every token, outcome on the last response token
  last = mask.sum(1).astype(int) - 1
  rewards[np.arange(b)[last >= 0], last[last >= 0]] += outcome[last >= 0]
  rewards_padded = rewards + 3.0 * (1 - mask)  # rewards on padding must not leak back
  want = _verl_reinforce_plus_plus(rewards_padded, mask, gamma)
  got = jax.jit(functools.partial(jg.reinforce_pp_advantages, gamma=gamma))(
      rewards_padded.astype(np.float32), mask.astype(bool))
  assert_close(got, want, rtol=1e-4, atol=2e-5)


def test_reinforce_pp_baseline_matches_verl_with_raw_singletons(rng):
  index = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3])
  scores = rng.normal(size=10)
  mask = _contiguous_mask(rng, 1, 10, 7)[0].astype(np.float64)
  want = _verl_reinforce_plus_plus_baseline(scores, mask, index)
  got = jg.reinforce_pp_baseline_advantages(scores.astype(np.float32), mask.astype(bool),
                                               index.astype(np.int32), 4, singleton="raw")
  assert_close(got, want, rtol=1e-4, atol=2e-5)
