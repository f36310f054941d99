"""Tests for rlcore.shaping.length: the length rewards of LASER's unified framework.

Hand-computed values follow the semantics notes (sections B-F); the numpy references
(`tests/references.py`) are written with explicit loops from the docstring equations.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlcore
from tests.helpers import assert_close, check_jit_and_vmap
from tests.references import (ref_cosine, ref_dapo, ref_group_length_penalty, ref_kimi,
                               ref_l1_exact, ref_l1_max, ref_truncation)

# ---------------------------------------------------------------------------------------
# random inputs
# ---------------------------------------------------------------------------------------

SHAPES = [(7,), (3, 5)]
GROUP_SHAPES = [(4, 6), (3, 2), (5, 1)]


def _inputs(rng, shape, max_len=1000):
  correct = rng.random(shape) < 0.5
  scores = np.where(correct, 1.0, np.where(rng.random(shape) < 0.7, -0.5, -1.0))
  lengths = rng.integers(0, max_len, shape).astype(np.float32)
  return scores.astype(np.float32), correct, lengths


# ---------------------------------------------------------------------------------------
# stateless per-sample rewards: reference parity under jit and jit(vmap)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_truncation_matches_reference(rng, shape):
  s, _, l = _inputs(rng, (3,) + shape)
  lmax = rng.integers(200, 800, (3,)).astype(np.float32)
  check_jit_and_vmap(rlcore.truncation_reward, ref_truncation, (s, l, lmax),
                     static_kwargs={"rho": -0.25})


@pytest.mark.parametrize("shape", SHAPES)
def test_l1_exact_matches_reference(rng, shape):
  s, _, l = _inputs(rng, (3,) + shape)
  target = rng.integers(100, 900, (3,) + shape).astype(np.float32)  # per prompt
  check_jit_and_vmap(rlcore.l1_exact_reward, ref_l1_exact, (s, l, target),
                     static_kwargs={"alpha": 1e-3})


@pytest.mark.parametrize("shape", SHAPES)
def test_l1_max_matches_reference(rng, shape):
  _, c, l = _inputs(rng, (3,) + shape)
  target = rng.integers(100, 900, (3,) + shape).astype(np.float32)
  check_jit_and_vmap(rlcore.l1_max_reward, ref_l1_max, (c, l, target),
                     static_kwargs={"alpha": 2e-3, "delta": 0.5})


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_dapo_matches_reference(rng, shape, factor):
  s, _, l = _inputs(rng, (3,) + shape, max_len=1200)
  f = lambda s, l, **kw: rlcore.dapo_overlong_penalty(s, l, 1000, 300, **kw)
  ref = lambda s, l, **kw: ref_dapo(s, l, 1000, 300, **kw)
  check_jit_and_vmap(f, ref, (s, l), static_kwargs={"penalty_factor": factor})


@pytest.mark.parametrize("shape", SHAPES)
def test_cosine_matches_reference(rng, shape):
  _, c, l = _inputs(rng, (3,) + shape, max_len=1100)
  check_jit_and_vmap(rlcore.cosine_length_reward, ref_cosine, (c, l),
                     static_kwargs={"max_length": 1000}, atol=5e-5)
  kw = {"max_length": 500, "r0_correct": 1.0, "rl_correct": 0.0, "r0_wrong": -1.0,
        "rl_wrong": 0.0, "r_exceed": 0.0, "margin": 0}
  check_jit_and_vmap(rlcore.cosine_length_reward, ref_cosine, (c, l), static_kwargs=kw,
                     atol=5e-5)


def test_lower_rank_targets_broadcast(rng):
  """Targets of shape [G] (or [P, 1]) broadcast against [P, G] scores (docstrings), also
  with the strict rank promotion of the test configuration."""
  s, c, l = _inputs(rng, (3, 5))
  row = rng.integers(100, 900, (5,)).astype(np.float32)
  col = rng.integers(100, 900, (3, 1)).astype(np.float32)
  for t in (row, col):
    assert_close(rlcore.truncation_reward(s, l, t), ref_truncation(s, l, t))
    assert_close(rlcore.l1_exact_reward(s, l, t, alpha=1e-3), ref_l1_exact(s, l, t, alpha=1e-3))
    assert_close(rlcore.l1_max_reward(c, l, t, alpha=1e-3), ref_l1_max(c, l, t, alpha=1e-3))


# ---------------------------------------------------------------------------------------
# group-based rewards: dense and ragged
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", GROUP_SHAPES)
def test_kimi_dense_matches_reference(rng, shape):
  v = 3
  s, c, l = _inputs(rng, (v,) + shape)
  l[0, 0] = l[0, 0, 0]  # a group with all lengths equal
  valid = rng.random((v,) + shape) < 0.8
  check_jit_and_vmap(rlcore.kimi_length_reward, ref_kimi, (s, c, l),
                     static_kwargs={"coef": 0.4}, atol=2e-5)
  f = lambda s, c, l, ok: rlcore.kimi_length_reward(s, c, l, coef=1.0, valid=ok)
  ref = lambda s, c, l, ok: ref_kimi(s, c, l, coef=1.0, valid=ok)
  check_jit_and_vmap(f, ref, (s, c, l, valid), atol=2e-5)


@pytest.mark.parametrize("n_,num_groups", [(12, 4), (9, 6)])
def test_kimi_ragged_matches_reference(rng, n_, num_groups):
  v = 3
  s, c, l = _inputs(rng, (v, n_))
  s[1, 2] = np.nan
  gids = rng.integers(0, num_groups, (v, n_)).astype(np.int32)
  valid = rng.random((v, n_)) < 0.8
  f = lambda s, c, l, g, ok, num_groups: rlcore.kimi_length_reward(s, c, l, g, num_groups,
                                                                   coef=0.4, valid=ok)
  ref = lambda s, c, l, g, ok, num_groups: ref_kimi(s, c, l, g, coef=0.4, valid=ok)
  out = check_jit_and_vmap(f, ref, (s, c, l, gids, valid), static_kwargs={"num_groups": num_groups},
                           atol=2e-5)
  assert np.isnan(np.asarray(out)[1, 2])


@pytest.mark.parametrize("shape", GROUP_SHAPES)
@pytest.mark.parametrize("ddof,eps", [(0, 1e-7), (1, 1e-6)])
def test_group_length_penalty_dense_matches_reference(rng, shape, ddof, eps):
  v = 3
  s, c, l = _inputs(rng, (v,) + shape)
  valid = rng.random((v,) + shape) < 0.85
  kw = {"alpha": 0.4, "ddof": ddof, "eps": eps}
  check_jit_and_vmap(rlcore.group_length_penalty, ref_group_length_penalty, (s, c, l),
                     static_kwargs=kw)
  f = lambda s, c, l, ok, **k: rlcore.group_length_penalty(s, c, l, valid=ok, **k)
  ref = lambda s, c, l, ok, **k: ref_group_length_penalty(s, c, l, valid=ok, **k)
  check_jit_and_vmap(f, ref, (s, c, l, valid), static_kwargs=kw)


@pytest.mark.parametrize("n_,num_groups", [(12, 3), (10, 7)])
def test_group_length_penalty_ragged_matches_reference(rng, n_, num_groups):
  v = 3
  s, c, l = _inputs(rng, (v, n_))
  gids = rng.integers(0, num_groups, (v, n_)).astype(np.int32)
  f = lambda s, c, l, g, num_groups: rlcore.group_length_penalty(s, c, l, g, num_groups,
                                                                 alpha=0.2, ddof=1)
  ref = lambda s, c, l, g, num_groups: ref_group_length_penalty(s, c, l, g, alpha=0.2, ddof=1)
  check_jit_and_vmap(f, ref, (s, c, l, gids), static_kwargs={"num_groups": num_groups})


@pytest.mark.parametrize("fn", [rlcore.kimi_length_reward, rlcore.group_length_penalty])
def test_group_rewards_dense_equals_ragged(rng, fn):
  s, c, l = _inputs(rng, (4, 5))
  dense = np.asarray(fn(s, c, l))
  perm = rng.permutation(20)
  gids = np.repeat(np.arange(4), 5).astype(np.int32)[perm]
  ragged = fn(s.reshape(-1)[perm], c.reshape(-1)[perm], l.reshape(-1)[perm], gids, 4)
  assert_close(ragged, dense.reshape(-1)[perm])


# ---------------------------------------------------------------------------------------
# hand-computed values
# ---------------------------------------------------------------------------------------


def test_kimi_hand_cases():
  # One group: lengths 100 / 200 / 300 -> lambda = 0.5 / 0 / -0.5.
  scores = np.array([[1.0, -0.5, 1.0, -0.5]], np.float32)
  correct = np.array([[True, False, True, False]])
  lengths = np.array([[100, 200, 300, 100]], np.float32)
  out = rlcore.kimi_length_reward(scores, correct, lengths, coef=1.0)
  # correct short +0.5, wrong mid 0, correct long -0.5, wrong short: min(0, 0.5) = 0.
  np.testing.assert_allclose(out, [[1.5, -0.5, 0.5, -0.5]])
  out = rlcore.kimi_length_reward(scores, correct, lengths, coef=0.4)
  np.testing.assert_allclose(out, [[1.2, -0.5, 0.8, -0.5]], rtol=1e-6)
  # A wrong long answer is penalised.
  out = rlcore.kimi_length_reward(np.array([[1.0, -0.5]]), np.array([[True, False]]),
                                  np.array([[100.0, 300.0]]), coef=1.0)
  np.testing.assert_allclose(out, [[1.5, -1.0]])
  # Equal lengths and singleton groups: lambda = 0.
  out = rlcore.kimi_length_reward(np.array([[1.0, -0.5, 1.0]]), np.array([[True, False, True]]),
                                  np.array([[250.0, 250.0, 250.0]]))
  np.testing.assert_allclose(out, [[1.0, -0.5, 1.0]])
  out = rlcore.kimi_length_reward(np.array([[1.0], [-0.5]]), np.array([[True], [False]]),
                                  np.array([[5000.0], [9000.0]]))
  np.testing.assert_allclose(out, [[1.0], [-0.5]])
  # Invalid samples are left out of min/max and unchanged (LASER's port: format failures).
  out = rlcore.kimi_length_reward(np.array([[1.0, -1.0, 1.0]]), np.array([[True, False, True]]),
                                  np.array([[100.0, 1000.0, 300.0]]),
                                  valid=np.array([[True, False, True]]))
  np.testing.assert_allclose(out, [[1.5, -1.0, 0.5]])


def test_group_length_penalty_hand_cases():
  # Correct lengths 100/200/300 (mean 200); a short wrong answer must not enter the stats.
  scores = np.array([[1.0, 1.0, 1.0, -0.5]], np.float32)
  correct = np.array([[True, True, True, False]])
  lengths = np.array([[100, 200, 300, 10]], np.float32)
  sig = lambda z: 1.0 / (1.0 + math.exp(-z))
  pop_std = math.sqrt((100 ** 2 + 0 + 100 ** 2) / 3)
  out = rlcore.group_length_penalty(scores, correct, lengths, alpha=0.2)
  expected = [1.0 - 0.2 * sig(-100 / (pop_std + 1e-7)), 0.9, 1.0 - 0.2 * sig(100 / pop_std),
              -0.5]
  np.testing.assert_allclose(out, [expected], rtol=1e-6)
  # LASER's port: ddof 1 (std 100 -> z = -1, 0, 1), eps 1e-6, alpha 0.4.
  out = rlcore.group_length_penalty(scores, correct, lengths, alpha=0.4, ddof=1, eps=1e-6)
  expected = [1.0 - 0.4 * sig(-1.0), 0.8, 1.0 - 0.4 * sig(1.0), -0.5]
  np.testing.assert_allclose(out, [expected], rtol=1e-5)
  # The wrong answer's length does not matter.
  lengths2 = lengths.copy()
  lengths2[0, 3] = 5000
  assert_close(rlcore.group_length_penalty(scores, correct, lengths2, alpha=0.4, ddof=1),
               rlcore.group_length_penalty(scores, correct, lengths, alpha=0.4, ddof=1))
  # All correct answers of equal length, or a single one: z = 0, factor 1 - alpha / 2.
  for ddof in (0, 1):
    out = rlcore.group_length_penalty(np.array([[1.0, 1.0], [1.0, -0.5]]),
                                      np.array([[True, True], [True, False]]),
                                      np.array([[300.0, 300.0], [700.0, 100.0]]), ddof=ddof)
    np.testing.assert_allclose(out, [[0.9, 0.9], [0.9, -0.5]], rtol=1e-6)


def test_dapo_hand_cases():
  lengths = np.array([50, 80, 81, 90, 100, 120], np.float32)
  scores = np.ones(6, np.float32)
  out = rlcore.dapo_overlong_penalty(scores, lengths, 100, 20)
  np.testing.assert_allclose(out, [1.0, 1.0, 1.0 - 1 / 20, 0.5, 0.0, 0.0], rtol=1e-6)
  out = rlcore.dapo_overlong_penalty(scores, lengths, 100, 20, penalty_factor=0.5)
  np.testing.assert_allclose(out, [1.0, 1.0, 1.0 - 0.5 / 20, 0.75, 0.5, 0.5], rtol=1e-6)
  # L_buf = L_max: the penalty starts at length 0.
  out = rlcore.dapo_overlong_penalty(np.zeros(3), np.array([0.0, 50.0, 100.0]), 100, 100)
  np.testing.assert_allclose(out, [0.0, -0.5, -1.0])


def test_cosine_hand_cases():
  c = np.array([True, False, True, False, True, True, False])
  l = np.array([0, 0, 500, 500, 983, 984, 2000], np.float32)
  out = np.asarray(rlcore.cosine_length_reward(c, l, 1000))
  near = 0.5 * (1 + math.cos(math.pi * 0.983))
  expected = [2.0, -10.0, 1.5, -5.0, 1.0 + near, -10.0, -10.0]
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
  assert 1.0 < out[4] < 1.001  # just below the margin: almost r_L
  # Larger margin moves the exceed boundary.
  out = np.asarray(rlcore.cosine_length_reward(np.array([True, True]), np.array([899.0, 900.0]),
                                               1000, margin=100, r_exceed=-3.0))
  assert out[1] == -3.0 and out[0] > 1.0


def test_l1_and_truncation_hand_cases():
  out = rlcore.l1_exact_reward(np.array([1.0, 1.0, 0.0]), np.array([1500.0, 500.0, 1000.0]),
                               1000, alpha=3e-4)
  np.testing.assert_allclose(out, [0.85, 0.85, 0.0], rtol=1e-6)
  c = np.array([True, True, True, True, False])
  l = np.array([1000.0, 0.0, 3000.0, 2000.0, 0.0])
  out = rlcore.l1_max_reward(c, l, 1000, alpha=3e-4, delta=0.5)
  np.testing.assert_allclose(out, [0.5, 0.8, 0.0, 0.2, 0.0], rtol=1e-6, atol=1e-7)
  out = rlcore.l1_max_reward(c, l, 1000, alpha=1e-3, delta=0.5)
  np.testing.assert_allclose(out, [0.5, 1.0, 0.0, 0.0, 0.0], atol=1e-7)
  out = rlcore.truncation_reward(np.array([1.0, -0.5, 1.0]), np.array([100.0, 200.0, 201.0]), 200)
  np.testing.assert_allclose(out, [1.0, -0.5, 0.0])
  out = rlcore.truncation_reward(np.array([1.0, 1.0]), np.array([100.0, 300.0]), 200, rho=-1.0)
  np.testing.assert_allclose(out, [1.0, -1.0])


def test_length_rewards_registry():
  reg = rlcore.length_rewards
  assert reg["kimi"] is rlcore.kimi_length_reward and reg["laser"] is rlcore.laser
  assert reg["dapo_overlong"] is rlcore.dapo_overlong_penalty
  assert reg["cosine"] is rlcore.cosine_length_reward


# ---------------------------------------------------------------------------------------
# traced coefficients
# ---------------------------------------------------------------------------------------


def test_traced_coefficients(rng):
  s, c, l = _inputs(rng, (3, 4))
  coefs = np.array([0.0, 0.4, 1.0], np.float32)
  out = jax.jit(jax.vmap(lambda k: rlcore.kimi_length_reward(s, c, l, coef=k)))(coefs)
  for i, k in enumerate(coefs):
    assert_close(out[i], ref_kimi(s, c, l, coef=float(k)), atol=2e-5)
  alphas = np.array([0.1, 0.2, 0.9], np.float32)
  out = jax.jit(jax.vmap(lambda a: rlcore.group_length_penalty(s, c, l, alpha=a)))(alphas)
  for i, a in enumerate(alphas):
    assert_close(out[i], ref_group_length_penalty(s, c, l, alpha=float(a)))
  lmax = np.array([300.0, 600.0, 900.0], np.float32)
  out = jax.jit(jax.vmap(lambda m: rlcore.dapo_overlong_penalty(s, l, m, 200.0)))(lmax)
  for i, m in enumerate(lmax):
    assert_close(out[i], ref_dapo(s, l, float(m), 200.0))
  out = jax.jit(jax.vmap(lambda m: rlcore.cosine_length_reward(c, l, m)))(lmax)
  for i, m in enumerate(lmax):
    assert_close(out[i], ref_cosine(c, l, float(m)), atol=5e-5)
  out = jax.jit(jax.vmap(lambda t: rlcore.l1_max_reward(c, l, t, alpha=1e-3)))(lmax)
  for i, t in enumerate(lmax):
    assert_close(out[i], ref_l1_max(c, l, float(t), alpha=1e-3))
  out = jax.jit(jax.vmap(lambda t: rlcore.truncation_reward(s, l, t)))(lmax)
  for i, t in enumerate(lmax):
    assert_close(out[i], ref_truncation(s, l, float(t)))
  g = jax.grad(lambda a: jnp.sum(rlcore.l1_exact_reward(s, l, 500.0, alpha=a)))(1e-3)
  np.testing.assert_allclose(float(g), -np.sum(np.abs(l - 500.0)), rtol=1e-5)


# ---------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------


def _raises(name, fn, *args, **kwargs):
  with pytest.raises(ValueError, match=f"`{name}[` ]"):
    fn(*args, **kwargs)


def test_bad_inputs():
  s, c, l = np.ones(4), np.ones(4, bool), np.ones(4)
  s3 = np.ones((2, 2, 2))
  _raises("scores", rlcore.truncation_reward, s3, s3, 10)
  _raises("lengths", rlcore.truncation_reward, s, np.ones(5), 10)
  _raises("max_length", rlcore.truncation_reward, s, l, np.ones(3))
  _raises("scores", rlcore.l1_exact_reward, np.float32(1.0), 1.0, 10)
  _raises("target_lengths", rlcore.l1_exact_reward, s, l, np.ones(2))
  _raises("lengths", rlcore.l1_max_reward, c, s3, 10)
  _raises("correct", rlcore.l1_max_reward, np.ones(3, bool), l, 10)
  _raises("target_lengths", rlcore.l1_max_reward, c, l, np.ones((4, 2)))
  _raises("lengths", rlcore.dapo_overlong_penalty, s, np.ones(3), 100, 10)
  _raises("buffer_length", rlcore.dapo_overlong_penalty, s, l, 100, 0)
  _raises("max_length", rlcore.cosine_length_reward, c, l, 0)
  _raises("correct", rlcore.cosine_length_reward, np.ones(2, bool), l, 100)
  d, dc = np.ones((2, 3)), np.ones((2, 3), bool)
  for fn in (rlcore.kimi_length_reward, rlcore.group_length_penalty):
    _raises("scores", fn, s, c, l)  # [B] without group_ids
    _raises("correct", fn, d, dc[:, :2], d)
    _raises("lengths", fn, d, dc, np.ones((3, 2)))
    _raises("valid", fn, d, dc, d, valid=np.ones(6, bool))
    _raises("num_groups", fn, d, dc, d, num_groups=2)
    _raises("group_ids", fn, s, c, l, np.array([0, 1, 2]), 3)
    _raises("group_ids", fn, s, c, l, np.array([0, 1, 2, 3]), 3)
    _raises("num_groups", fn, s, c, l, np.array([0, 1, 2, 0]), 0)


def test_bad_coefficients_name_the_argument_and_range():
  d, dc = np.ones((2, 3)), np.ones((2, 3), bool)
  for alpha in (-0.1, 1.5, float("nan")):
    with pytest.raises(ValueError, match=r"`alpha` must lie in \[0.0, 1.0\]"):
      rlcore.group_length_penalty(d, dc, d, alpha=alpha)
  s, l = np.ones(4), np.ones(4)
  _raises("buffer_length", rlcore.dapo_overlong_penalty, s, l, 100, float("nan"))
  _raises("max_length", rlcore.cosine_length_reward, s > 0, l, float("nan"))


@pytest.mark.parametrize("fn", [rlcore.kimi_length_reward, rlcore.group_length_penalty])
def test_group_length_rewards_empty_batches(fn):
  for shape, ids, n in [((3, 0), None, None), ((0, 4), None, None),
                        ((0,), np.zeros(0, np.int32), 2)]:
    z = np.zeros(shape, np.float32)
    for f in (fn, jax.jit(fn, static_argnames="num_groups")):
      out = f(z, z > 0, z, ids, num_groups=n)
      assert out.shape == shape and out.dtype == jnp.float32


@pytest.mark.parametrize("fn", [rlcore.kimi_length_reward, rlcore.group_length_penalty])
def test_traced_out_of_range_group_ids_leave_scores_unchanged(fn, rng):
  # Documented (module docstring): under jit such a sample counts as valid=False.
  s, c, l = _inputs(rng, (1, 9))
  s, c, l = s[0], c[0], l[0]
  c[:] = [1, 1, 0, 1, 1, 1, 0, 1, 1]
  ids = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2], np.int32)
  bad = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0], bool)
  wild = np.where(bad, np.array([3, 0, 0, 0, -2, 0, 0, 0, 0]), ids).astype(np.int32)
  f = jax.jit(lambda s, c, l, i, v: fn(s, c, l, i, 3, valid=v))
  want = np.asarray(f(s, c, l, np.where(bad, 0, ids).astype(np.int32), ~bad))
  got = np.asarray(f(s, c, l, wild, np.ones(9, bool)))
  np.testing.assert_array_equal(got[bad], s[bad])
  assert_close(got, want)
  assert np.any(got != s)
