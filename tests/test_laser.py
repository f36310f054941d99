"""Tests for rlcore.shaping.laser: LASER, LASER-D and LASER-DE.

Hand-computed cases follow the official code (hkust-nlp/Laser,
`verl/utils/reward_score/length_penalty.py`) as summarised in the spec (section 2)
and the semantics notes (section B); the numpy references (`tests/references.py`) are
written with explicit loops.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlcore
from rlcore.shaping.laser import EASY, FALLBACK, HARD, MEDIUM
from tests.helpers import assert_close, assert_no_retrace, check_jit_and_vmap
from tests.references import (ref_difficulty, ref_laser, ref_laser_d_apply, ref_monitor,
                               ref_target_lengths, ref_thresholds)

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _sample_inputs(rng, shape):
  correct = rng.random(shape) < 0.5
  scores = np.where(correct, 1.0, np.where(rng.random(shape) < 0.7, -0.5, -1.0))
  lengths = rng.integers(1, 400, shape).astype(np.float32)
  return scores.astype(np.float32), correct, lengths


def _ctx_fields(ctx):
  return ctx.correct, ctx.lengths


# ---------------------------------------------------------------------------------------
# laser
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reward", "penalty", "hybrid"])
def test_laser_hand_cases(mode):
  scores = np.array([1.0, 1.0, 1.0, -0.5, -0.5, -1.0, -1.0], np.float32)
  correct = scores == 1.0
  lengths = np.array([100, 200, 300, 100, 300, 100, 300], np.float32)  # 200 == L_T
  out = np.asarray(rlcore.laser(scores, correct, lengths, 200, mode=mode))
  expected = {"reward": [1.5, 1.5, 1.0], "penalty": [1.0, 1.0, 0.5],
              "hybrid": [1.5, 1.5, 0.5]}[mode]
  np.testing.assert_allclose(out, expected + [-0.5, -0.5, -1.0, -1.0])
  # alpha scales the step bonus.
  out = np.asarray(rlcore.laser(scores, correct, lengths, 200, mode=mode, alpha=0.2))
  expected = {"reward": [1.2, 1.2, 1.0], "penalty": [1.0, 1.0, 0.8],
              "hybrid": [1.2, 1.2, 0.8]}[mode]
  np.testing.assert_allclose(out, expected + [-0.5, -0.5, -1.0, -1.0], rtol=1e-6)


def test_laser_valid_and_nan_unchanged():
  scores = np.array([[1.0, 1.0, np.nan, -0.5]], np.float32)
  correct = np.array([[True, True, True, False]])
  lengths = np.array([[10, 10, 10, 10]], np.float32)
  valid = np.array([[True, False, True, True]])
  out = np.asarray(rlcore.laser(scores, correct, lengths, 50, valid=valid))
  np.testing.assert_array_equal(out[0, :2], [1.5, 1.0])
  assert np.isnan(out[0, 2])
  assert out[0, 3] == -0.5


@pytest.mark.parametrize("mode", ["reward", "penalty", "hybrid"])
@pytest.mark.parametrize("shape", [(7,), (3, 4)])
def test_laser_matches_reference(rng, mode, shape):
  v = 3
  s, c, l = _sample_inputs(rng, (v,) + shape)
  target = rng.integers(50, 350, (v,)).astype(np.float32)
  check_jit_and_vmap(rlcore.laser, ref_laser, (s, c, l, target),
                     static_kwargs={"mode": mode, "alpha": 0.5})
  # Per-sample target lengths (broadcast with the scores' shape).
  target = rng.integers(50, 350, (v,) + shape).astype(np.float32)
  check_jit_and_vmap(rlcore.laser, ref_laser, (s, c, l, target),
                     static_kwargs={"mode": mode, "alpha": 0.3})


def test_laser_lower_rank_target_broadcasts(rng):
  s, c, l = _sample_inputs(rng, (3, 5))
  for t in (rng.integers(50, 350, (5,)), rng.integers(50, 350, (3, 1))):
    t = t.astype(np.float32)
    for mode in ("reward", "hybrid"):
      assert_close(rlcore.laser(s, c, l, t, mode=mode), ref_laser(s, c, l, t, mode=mode))


def test_laser_vmap_over_alpha_and_target(rng):
  s, c, l = _sample_inputs(rng, (4, 6))
  alphas = np.array([0.0, 0.25, 0.5, 1.0], np.float32)
  targets = np.array([50, 150, 250, 1000], np.float32)
  out = jax.jit(jax.vmap(lambda a, t: rlcore.laser(s, c, l, t, alpha=a, mode="hybrid")))(
      alphas, targets)
  for i in range(4):
    assert_close(out[i], ref_laser(s, c, l, targets[i], alphas[i], "hybrid"))
  # grad wrt alpha = number of short correct minus long correct (hybrid).
  g = jax.grad(lambda a: jnp.sum(rlcore.laser(s, c, l, 150.0, alpha=a, mode="hybrid")))(0.5)
  assert float(g) == np.sum(c & (l <= 150)) - np.sum(c & (l > 150))


# ---------------------------------------------------------------------------------------
# laser_difficulty
# ---------------------------------------------------------------------------------------


def _rows_with_counts(counts, k_):
  return np.array([[i < c for i in range(k_)] for c in counts])


def test_laser_difficulty_boundaries_k6():
  counts = [6, 5, 4, 3, 2, 1, 0]
  out = np.asarray(rlcore.laser_difficulty(_rows_with_counts(counts, 6)))
  expected = [EASY, EASY, EASY, MEDIUM, MEDIUM, HARD, HARD]  # 4/6 easy, 2/6 medium, 1/6 hard
  np.testing.assert_array_equal(out, np.repeat(np.array(expected)[:, None], 6, axis=1))
  assert out.dtype == np.int32


def test_laser_difficulty_boundaries_k8():
  counts = list(range(8, -1, -1))
  out = np.asarray(rlcore.laser_difficulty(_rows_with_counts(counts, 8)))
  expected = [EASY] * 3 + [MEDIUM] * 3 + [HARD] * 3  # 6/8 easy, 5..3 medium, <=2 hard
  np.testing.assert_array_equal(out[:, 0], expected)
  np.testing.assert_array_equal(out, np.repeat(out[:, :1], 8, axis=1))


def test_laser_difficulty_ragged_and_valid():
  # Groups of sizes 3, 6, 1, 2 (K = 3 lands exactly: 2/3 easy, 1/3 medium).
  gids = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 3, 3], np.int32)
  correct = np.array([1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0], bool)
  out = np.asarray(rlcore.laser_difficulty(correct, gids, 4))
  np.testing.assert_array_equal(out, [EASY] * 3 + [MEDIUM] * 6 + [HARD] + [MEDIUM] * 2)
  # Invalid samples are left out of the count: group 1 has 2 correct of 3 valid.
  valid = np.ones(12, bool)
  valid[[6, 7, 8]] = False
  out = np.asarray(rlcore.laser_difficulty(correct, gids, 4, valid=valid))
  np.testing.assert_array_equal(out[3:9], [EASY] * 6)


@pytest.mark.parametrize("shape", [(3, 6), (5, 8), (2, 3)])
def test_laser_difficulty_dense_matches_reference(rng, shape):
  v = 3
  correct = rng.random((v,) + shape) < rng.random((v,) + shape[:1] + (1,))
  valid = rng.random((v,) + shape) < 0.8
  valid[..., 0] = True
  check_jit_and_vmap(rlcore.laser_difficulty, ref_difficulty, (correct,))
  f = lambda c, ok: rlcore.laser_difficulty(c, valid=ok)
  ref = lambda c, ok: ref_difficulty(c, valid=ok)
  check_jit_and_vmap(f, ref, (correct, valid))


@pytest.mark.parametrize("n_,num_groups", [(12, 3), (9, 5)])
def test_laser_difficulty_ragged_matches_reference(rng, n_, num_groups):
  v = 3
  correct = rng.random((v, n_)) < 0.5
  gids = rng.integers(0, num_groups, (v, n_)).astype(np.int32)
  check_jit_and_vmap(rlcore.laser_difficulty, ref_difficulty, (correct, gids),
                     static_kwargs={"num_groups": num_groups})


def test_laser_difficulty_dense_equals_ragged(rng):
  correct = rng.random((4, 6)) < 0.5
  dense = np.asarray(rlcore.laser_difficulty(correct))
  perm = rng.permutation(24)
  gids = np.repeat(np.arange(4), 6).astype(np.int32)[perm]
  ragged = np.asarray(rlcore.laser_difficulty(correct.reshape(-1)[perm], gids, 4))
  np.testing.assert_array_equal(ragged, dense.reshape(-1)[perm])


# ---------------------------------------------------------------------------------------
# laser_d_thresholds
# ---------------------------------------------------------------------------------------


def test_laser_d_thresholds():
  np.testing.assert_array_equal(rlcore.laser_d_thresholds(512, 4096, 1024),
                                [512, 1024, 2048, 3072, 4096])
  np.testing.assert_array_equal(rlcore.laser_d_thresholds(1024, 4096, 1024),
                                [1024, 2048, 3072, 4096])
  paper = rlcore.laser_d_thresholds(2048, 16384, 1024)
  np.testing.assert_array_equal(paper, np.arange(2048, 16385, 1024))
  assert paper.dtype == np.int32 and len(paper) == 15
  np.testing.assert_array_equal(rlcore.laser_d_thresholds(300, 300, 1024), [300])
  for args in [(512, 4096, 1024), (1000, 5000, 1024), (2048, 16384, 1024), (100, 1000, 300),
               (700, 2000, 250), (1, 10, 3)]:
    np.testing.assert_array_equal(rlcore.laser_d_thresholds(*args), ref_thresholds(*args),
                                  err_msg=str(args))


# ---------------------------------------------------------------------------------------
# laser_monitor_statistics / laser_target_lengths
# ---------------------------------------------------------------------------------------

THRESHOLDS = np.array([100, 200, 300, 400, 500, 600, 700, 800], np.int32)


def _monitor_batch(hard_max=900):
  """K = 8 monitor batch where floor and ceil targets differ in every bucket but hard.

  easy: 3 prompts (24 responses), 4 of length <= 100, 5 <= 200:
    ceil needs coverage >= 1/6 (4/24) -> 100; floor needs >= 1/5 (5/24) -> 200.
  medium: 1 prompt, coverage 1/8, 3/8, 4/8 at 200, 300, 400:
    ceil needs >= 1/3 -> 300; floor needs >= 1/2 -> 400.
  hard: 1 prompt, needs coverage 1 -> its longest response (or fallback if > 800).
  """
  easy_lengths = np.array([50, 60, 70, 80, 150, 250, 260, 270] + [350] * 8 + [750] * 8)
  lengths = np.concatenate([
      easy_lengths.reshape(3, 8),
      np.array([[150, 250, 300, 400, 500, 600, 700, 800]]),
      np.array([[100, 100, 200, 300, 400, 500, 600, hard_max]]),
  ]).astype(np.float32)
  correct = np.zeros((5, 8), bool)
  correct[0, :6] = True   # 6/8 easy
  correct[1, :7] = True   # 7/8 easy
  correct[2, :] = True    # 8/8 easy
  correct[3, 4:] = True   # 4/8 medium
  correct[4, 7] = True    # 1/8 hard
  return lengths, correct


def test_monitor_statistics_hand_case():
  lengths, correct = _monitor_batch()
  stats = rlcore.laser_monitor_statistics(lengths, correct, THRESHOLDS)
  assert isinstance(stats, rlcore.LaserMonitorStats) and stats.rollouts == 8
  np.testing.assert_array_equal(stats.total, [8, 8, 24])
  np.testing.assert_array_equal(stats.covered[EASY], [4, 5, 8, 16, 16, 16, 16, 24])
  np.testing.assert_array_equal(stats.covered[MEDIUM], [0, 1, 3, 4, 5, 6, 7, 8])
  np.testing.assert_array_equal(stats.covered[HARD], [2, 3, 4, 5, 6, 7, 7, 7])


@pytest.mark.parametrize("hard_max,hard_target", [(900, FALLBACK), (700, 700)])
def test_target_lengths_floor_vs_ceil(hard_max, hard_target):
  lengths, correct = _monitor_batch(hard_max)
  stats = rlcore.laser_monitor_statistics(lengths, correct, THRESHOLDS)
  floor = rlcore.laser_target_lengths(stats, THRESHOLDS, round_method="floor")
  ceil = rlcore.laser_target_lengths(stats, THRESHOLDS, round_method="ceil")
  # (hard, medium, easy): floor uses |C| = (1, 2, 5), ceil (1, 3, 6) at K = 8.
  np.testing.assert_array_equal(floor, [hard_target, 400, 200])
  np.testing.assert_array_equal(ceil, [hard_target, 300, 100])
  assert floor.dtype == np.int32
  for method, got in (("floor", floor), ("ceil", ceil)):
    np.testing.assert_array_equal(
        got, ref_target_lengths(np.asarray(stats.covered), np.asarray(stats.total), 8,
                                THRESHOLDS, method))


def test_target_lengths_empty_bucket_and_exact_boundary():
  # easy: 40 responses, coverage exactly 1/5 at 300 (8/40), 7/40 at 200.
  covered = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 7, 8, 40]], np.float32)
  total = np.array([0, 0, 40], np.float32)  # hard and medium buckets empty
  stats = rlcore.LaserMonitorStats(covered=jnp.asarray(covered), total=jnp.asarray(total),
                                   rollouts=8)
  th = np.array([100, 200, 300, 400], np.int32)
  np.testing.assert_array_equal(rlcore.laser_target_lengths(stats, th), [-1, -1, 300])
  # ceil: >= 1/6 -> 7/40 = 0.175 qualifies at 200.
  np.testing.assert_array_equal(rlcore.laser_target_lengths(stats, th, round_method="ceil"),
                                [-1, -1, 200])
  # No threshold qualifies (coverage below 1/5 everywhere) -> fallback.
  covered[EASY] = [0, 1, 2, 7]
  stats = rlcore.LaserMonitorStats(covered=jnp.asarray(covered), total=jnp.asarray(total),
                                   rollouts=8)
  np.testing.assert_array_equal(rlcore.laser_target_lengths(stats, th), [-1, -1, -1])
  # K = 6: floor and ceil agree (|C| = 1, 2, 4); 1/4 coverage is the easy edge.
  covered = np.array([[5, 6, 6, 6], [2, 2, 5, 6], [5, 6, 12, 24]], np.float32)
  stats = rlcore.LaserMonitorStats(covered=jnp.asarray(covered),
                                   total=jnp.asarray(np.array([6, 6, 24], np.float32)),
                                   rollouts=6)
  for method in ("floor", "ceil"):
    np.testing.assert_array_equal(rlcore.laser_target_lengths(stats, th, round_method=method),
                                  [200, 300, 200])


def test_target_lengths_expected_n_correct():
  covered = np.array([[8, 8, 8], [2, 4, 8], [8, 16, 24]], np.float32)
  total = np.array([8, 8, 24], np.float32)
  stats = rlcore.LaserMonitorStats(covered=jnp.asarray(covered), total=jnp.asarray(total),
                                   rollouts=8)
  th = np.array([100, 200, 300], np.int32)
  for k_exp in (1, 2, 1.5):
    for method in ("floor", "ceil"):
      got = rlcore.laser_target_lengths(stats, th, round_method=method, expected_n_correct=k_exp)
      np.testing.assert_array_equal(got, ref_target_lengths(covered, total, 8, th, method, k_exp),
                                    err_msg=f"{method} {k_exp}")


def _stats_as_one(lengths, correct, valid, thresholds):
  st = rlcore.laser_monitor_statistics(lengths, correct, thresholds, valid=valid)
  return jnp.concatenate([st.covered, st.total[:, None]], axis=1)


def _ref_stats_as_one(lengths, correct, valid, thresholds):
  cov, tot = ref_monitor(lengths, correct, thresholds, valid)
  return np.concatenate([cov, tot[:, None]], axis=1)


@pytest.mark.parametrize("m_,k_", [(6, 8), (9, 6), (4, 3)])
def test_monitor_statistics_matches_reference(rng, m_, k_):
  v = 3
  correct = rng.random((v, m_, k_)) < rng.random((v, m_, 1))
  lengths = rng.integers(1, 1000, (v, m_, k_)).astype(np.float32)
  valid = rng.random((v, m_, k_)) < 0.85
  valid[..., 0] = True
  th = np.tile(np.array([100, 250, 500, 750, 900], np.float32), (v, 1))
  check_jit_and_vmap(_stats_as_one, _ref_stats_as_one, (lengths, correct, valid, th))


@pytest.mark.parametrize("k_,method", [(8, "floor"), (8, "ceil"), (6, "floor"), (9, "ceil")])
def test_target_lengths_matches_reference(rng, k_, method):
  v, m_ = 4, 12
  th = np.array([100, 200, 300, 400, 500, 600], np.int32)
  cov, tot = [], []
  for _ in range(v):
    correct = rng.random((m_, k_)) < rng.random((m_, 1))
    lengths = rng.integers(1, 700, (m_, k_))
    c, t = ref_monitor(lengths, correct, th)
    cov.append(c)
    tot.append(t)
  cov, tot = np.array(cov, np.float32), np.array(tot, np.float32)
  tot[0, MEDIUM] = 0.0  # an empty bucket
  cov[0, MEDIUM] = 0.0

  def f(covered, total):
    stats = rlcore.LaserMonitorStats(covered=covered, total=total, rollouts=k_)
    return rlcore.laser_target_lengths(stats, th, round_method=method)

  def ref(covered, total):
    return ref_target_lengths(covered, total, k_, th, method)

  check_jit_and_vmap(f, ref, (cov, tot))


# ---------------------------------------------------------------------------------------
# laser_d / laser_de
# ---------------------------------------------------------------------------------------

TARGETS = np.array([700, 400, 200], np.int32)  # hard, medium, easy


def _state(targets=TARGETS):
  return rlcore.LaserDState(target_lengths=jnp.asarray(targets, jnp.int32),
                            num_updates=jnp.ones((), jnp.int32))


def _training_batch():
  """[P=3, G=6]: an easy (4/6), a medium (2/6) and a hard (1/6) prompt."""
  correct = np.zeros((3, 6), bool)
  correct[0, :4] = True
  correct[1, :2] = True
  correct[2, :1] = True
  lengths = np.array([[150, 300, 500, 800, 100, 100],
                      [300, 500, 100, 100, 100, 100],
                      [500, 100, 100, 100, 100, 100]], np.float32)
  scores = np.where(correct, 1.0, -0.5).astype(np.float32)
  return scores, correct, lengths


def test_laser_d_end_to_end_per_bucket_targets():
  t = rlcore.laser_d(THRESHOLDS, alpha=0.5)
  state = t.init()
  np.testing.assert_array_equal(state.target_lengths, [FALLBACK] * 3)
  assert int(state.num_updates) == 0
  lengths_m, correct_m = _monitor_batch(hard_max=700)
  stats = rlcore.laser_monitor_statistics(lengths_m, correct_m, THRESHOLDS)
  state = t.update(state, stats)
  np.testing.assert_array_equal(state.target_lengths, [700, 400, 200])
  assert int(state.num_updates) == 1
  scores, correct, lengths = _training_batch()
  out, state2 = t.apply(scores, state, rlcore.SequenceContext(correct=correct, lengths=lengths))
  out = np.asarray(out)
  # easy prompt, target 200: 150 gets the bonus; 300, 500, 800 do not.
  np.testing.assert_allclose(out[0], [1.5, 1.0, 1.0, 1.0, -0.5, -0.5])
  # medium prompt, target 400: 300 yes, 500 no.
  np.testing.assert_allclose(out[1], [1.5, 1.0, -0.5, -0.5, -0.5, -0.5])
  # hard prompt, target 700: 500 yes.
  np.testing.assert_allclose(out[2], [1.5, -0.5, -0.5, -0.5, -0.5, -0.5])
  np.testing.assert_array_equal(state2.target_lengths, state.target_lengths)
  assert_close(out, ref_laser_d_apply(scores, TARGETS, correct, lengths))
  # Next monitor pass: the hard bucket's longest response exceeds every threshold, so
  # its target falls back to the longest response of the training batch (800 here).
  lengths_m, correct_m = _monitor_batch(hard_max=900)
  state = t.update(state, rlcore.laser_monitor_statistics(lengths_m, correct_m, THRESHOLDS))
  np.testing.assert_array_equal(state.target_lengths, [FALLBACK, 400, 200])
  assert int(state.num_updates) == 2
  lengths[2, 0] = 800.0  # the hard prompt's correct answer, as long as the batch max
  out, _ = t.apply(scores, state, rlcore.SequenceContext(correct=correct, lengths=lengths))
  np.testing.assert_allclose(np.asarray(out)[2, 0], 1.5)
  np.testing.assert_allclose(np.asarray(out)[:2], [[1.5, 1.0, 1.0, 1.0, -0.5, -0.5],
                                                   [1.5, 1.0, -0.5, -0.5, -0.5, -0.5]])


def test_laser_d_ragged_layout_matches_dense():
  scores, correct, lengths = _training_batch()
  t = rlcore.laser_d(THRESHOLDS)
  dense, _ = t.apply(scores, _state(), rlcore.SequenceContext(correct, lengths))
  perm = np.random.default_rng(1).permutation(18)
  gids = np.repeat(np.arange(3), 6).astype(np.int32)[perm]
  ctx = rlcore.SequenceContext(correct=correct.reshape(-1)[perm],
                               lengths=lengths.reshape(-1)[perm], group_ids=gids, num_groups=3)
  ragged, _ = t.apply(scores.reshape(-1)[perm], _state(), ctx)
  assert_close(ragged, np.asarray(dense).reshape(-1)[perm])


def test_laser_d_fallback_uses_batch_max_length():
  scores, correct, lengths = _training_batch()
  lengths[2, 0] = 5000.0  # the longest response of the batch, in the hard group
  t = rlcore.laser_d(THRESHOLDS, mode="hybrid")
  targets = np.array([FALLBACK, 400, FALLBACK], np.int32)
  out, _ = t.apply(scores, _state(targets), rlcore.SequenceContext(correct, lengths))
  out = np.asarray(out)
  # Fallback buckets: every correct answer up to the batch max (incl. it) gets +alpha.
  np.testing.assert_allclose(out[0, :4], [1.5] * 4)
  np.testing.assert_allclose(out[2, 0], 1.5)
  np.testing.assert_allclose(out[1, :2], [1.5, 0.5])  # medium still uses 400
  assert_close(out, ref_laser_d_apply(scores, targets, correct, lengths, mode="hybrid"))
  # A longer but invalid sample does not change the batch max.
  valid = np.ones((3, 6), bool)
  valid[1, 5] = False
  lengths[1, 5] = 1e6
  out2, _ = t.apply(scores, _state(targets),
                    rlcore.SequenceContext(correct, lengths, valid=valid))
  assert_close(out2, ref_laser_d_apply(scores, targets, correct, lengths, valid=valid,
                                       mode="hybrid"))
  np.testing.assert_allclose(np.asarray(out2)[2, 0], 1.5)


def test_laser_d_initial_target_length():
  scores, correct, lengths = _training_batch()
  t = rlcore.laser_d(THRESHOLDS, initial_target_length=200)
  state = t.init()
  np.testing.assert_array_equal(state.target_lengths, [200, 200, 200])
  out, _ = t.apply(scores, state, rlcore.SequenceContext(correct, lengths))
  assert_close(out, ref_laser(scores, correct, lengths, 200))


@pytest.mark.parametrize("mode", ["reward", "penalty", "hybrid"])
@pytest.mark.parametrize("shape", [(4, 6), (3, 8)])
def test_laser_d_apply_matches_reference(rng, mode, shape):
  v = 3
  s, c, l = _sample_inputs(rng, (v,) + shape)
  c = rng.random((v,) + shape) < rng.random((v, shape[0], 1))
  s = np.where(c, 1.0, s).astype(np.float32)
  targets = np.stack([rng.permutation([FALLBACK, 150, 300]) for _ in range(v)]).astype(np.int32)
  t = rlcore.laser_d(THRESHOLDS, alpha=0.5, mode=mode)

  def f(scores, correct, lengths, targets):
    state = rlcore.LaserDState(targets, jnp.zeros((), jnp.int32))
    return t.apply(scores, state, rlcore.SequenceContext(correct, lengths))[0]

  def ref(scores, correct, lengths, targets):
    return ref_laser_d_apply(scores, targets, correct, lengths, mode=mode)

  check_jit_and_vmap(f, ref, (s, c, l, targets))


@pytest.mark.parametrize("n_,num_groups", [(16, 4), (11, 5)])
def test_laser_de_ragged_matches_reference(rng, n_, num_groups):
  v = 3
  s, c, l = _sample_inputs(rng, (v, n_))
  wf = s > -1.0
  c = c & wf
  rep = rng.random((v, n_)) < 0.3
  valid = rng.random((v, n_)) < 0.9
  gids = rng.integers(0, num_groups, (v, n_)).astype(np.int32)
  targets = np.stack([rng.permutation([FALLBACK, 150, 300]) for _ in range(v)]).astype(np.int32)
  t = rlcore.laser_de(THRESHOLDS, alpha=0.5)

  def f(scores, correct, lengths, wf, rep, valid, gids, targets, num_groups):
    state = rlcore.LaserDState(targets, jnp.zeros((), jnp.int32))
    ctx = rlcore.SequenceContext(correct, lengths, well_formed=wf, repetitive=rep,
                                 group_ids=gids, valid=valid, num_groups=num_groups)
    return t.apply(scores, state, ctx)[0]

  def ref(scores, correct, lengths, wf, rep, valid, gids, targets, num_groups):
    del num_groups
    return ref_laser_d_apply(scores, targets, correct, lengths, group_ids=gids, valid=valid,
                             well_formed=wf, repetitive=rep, explore=True)

  check_jit_and_vmap(f, ref, (s, c, l, wf, rep, valid, gids, targets),
                     static_kwargs={"num_groups": num_groups})


def test_laser_de_hand_case():
  # One medium prompt (2 correct of 6 -> 1/3 exactly), target 400.
  scores = np.array([[1.0, 1.0, -0.5, -0.5, -1.0, -0.5]], np.float32)
  correct = np.array([[True, True, False, False, False, False]])
  lengths = np.array([[300, 500, 500, 500, 500, 300]], np.float32)
  well_formed = np.array([[True, True, True, True, False, True]])
  repetitive = np.array([[False, False, False, True, False, False]])
  ctx = rlcore.SequenceContext(correct=correct, lengths=lengths, well_formed=well_formed,
                               repetitive=repetitive)
  t = rlcore.laser_de(THRESHOLDS, alpha=0.5)
  out, _ = t.apply(scores, _state(), ctx)
  np.testing.assert_allclose(out, [[
      1.5,   # correct, short: +alpha
      1.0,   # correct, long: unchanged
      0.0,   # wrong, well formed, not repetitive, long: -0.5 + 0.5
      -0.5,  # wrong, repetitive, long: unchanged
      -1.0,  # format failure: unchanged
      -0.5,  # wrong, short: unchanged
  ]])
  # Without flags every wrong long answer is treated as well formed and non-repetitive.
  out, _ = t.apply(scores, _state(), rlcore.SequenceContext(correct=correct, lengths=lengths))
  np.testing.assert_allclose(out, [[1.5, 1.0, 0.0, 0.0, -0.5, -0.5]])
  # Fallback target: no wrong answer is longer than the batch max, so no exploration bonus.
  out, _ = t.apply(scores, _state([FALLBACK] * 3), ctx)
  np.testing.assert_allclose(out, [[1.5, 1.5, -0.5, -0.5, -1.0, -0.5]])


def test_laser_d_state_structure_and_dtype_across_update():
  for t in (rlcore.laser_d(THRESHOLDS), rlcore.laser_de(THRESHOLDS, round_method="ceil")):
    s0 = t.init()
    lengths, correct = _monitor_batch()
    s1 = t.update(s0, rlcore.laser_monitor_statistics(lengths, correct, THRESHOLDS))
    s2 = jax.jit(t.update)(s1, rlcore.laser_monitor_statistics(lengths, correct, THRESHOLDS))
    for s in (s1, s2):
      chex.assert_trees_all_equal_shapes_and_dtypes(s, s0)  # and structures
    assert int(s2.num_updates) == 2
    scores, correct, lengths = _training_batch()
    _, s3 = t.apply(scores, s2, rlcore.SequenceContext(correct, lengths))
    chex.assert_trees_all_equal_structs(s3, s0)


def test_laser_d_jit_and_no_retrace():
  t = rlcore.laser_d(THRESHOLDS)
  lengths, correct = _monitor_batch(hard_max=700)
  stats = rlcore.laser_monitor_statistics(lengths, correct, THRESHOLDS)
  state = jax.jit(t.update)(t.init(), stats)
  np.testing.assert_array_equal(state.target_lengths, [700, 400, 200])
  scores, correct_t, lengths_t = _training_batch()
  ctx = rlcore.SequenceContext(correct=correct_t, lengths=lengths_t)
  out, _ = jax.jit(t.apply)(scores, state, ctx)
  assert_close(out, ref_laser_d_apply(scores, TARGETS, correct_t, lengths_t))
  stats2 = rlcore.laser_monitor_statistics(lengths + 50, ~correct, THRESHOLDS)
  assert_no_retrace(t.update, state, stats, second_args=(state, stats2))
  ctx2 = rlcore.SequenceContext(correct=~correct_t, lengths=lengths_t * 2)
  assert_no_retrace(t.apply, scores, state, ctx, second_args=(scores - 1, _state(), ctx2))
  de = rlcore.laser_de(THRESHOLDS)
  ctx3 = rlcore.SequenceContext(correct=correct_t, lengths=lengths_t,
                                well_formed=np.ones((3, 6), bool),
                                repetitive=np.zeros((3, 6), bool))
  ctx4 = rlcore.SequenceContext(correct=correct_t, lengths=lengths_t + 3,
                                well_formed=np.zeros((3, 6), bool),
                                repetitive=np.ones((3, 6), bool))
  assert_no_retrace(de.apply, scores, state, ctx3, second_args=(scores, state, ctx4))


def test_chain_with_stateless_laser_and_laser_d():
  d = rlcore.laser_d(THRESHOLDS)
  plain = rlcore.stateless(lambda r, ctx: rlcore.laser(r, ctx.correct, ctx.lengths, 100))
  ch = rlcore.chain(plain, d)
  state = ch.init()
  assert isinstance(state, tuple) and len(state) == 2
  assert state[0] == rlcore.EmptyState()
  lengths_m, correct_m = _monitor_batch(hard_max=700)
  stats = rlcore.laser_monitor_statistics(lengths_m, correct_m, THRESHOLDS)
  state = ch.update(state, stats)
  assert state[0] == rlcore.EmptyState()
  np.testing.assert_array_equal(state[1].target_lengths, [700, 400, 200])
  assert int(state[1].num_updates) == 1
  scores, correct, lengths = _training_batch()
  ctx = rlcore.SequenceContext(correct=correct, lengths=lengths)
  out, new_state = jax.jit(ch.apply)(scores, state, ctx)
  step1 = ref_laser(scores, correct, lengths, 100)
  expected = ref_laser_d_apply(step1, TARGETS, correct, lengths)
  assert_close(out, expected)
  # The easy 150-token answer gets only the laser_d bonus; 100-token ones would get both.
  np.testing.assert_allclose(np.asarray(out)[0, 0], 1.5)
  lengths2 = lengths.copy()
  lengths2[0, 0] = 90
  out2, _ = ch.apply(scores, state, rlcore.SequenceContext(correct, lengths2))
  np.testing.assert_allclose(np.asarray(out2)[0, 0], 2.0)
  assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)
  # Order matters with a non-additive member: scale-then-bonus vs bonus-then-scale.
  double = lambda r, ctx: 2.0 * r
  a, _ = rlcore.chain(double, d).apply(scores, (rlcore.EmptyState(), state[1]), ctx)
  b, _ = rlcore.chain(d, double).apply(scores, (state[1], rlcore.EmptyState()), ctx)
  assert_close(a, ref_laser_d_apply(2.0 * scores, TARGETS, correct, lengths))
  assert_close(b, 2.0 * ref_laser_d_apply(scores, TARGETS, correct, lengths))


# ---------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------


def _raises(name, fn, *args, **kwargs):
  with pytest.raises(ValueError, match=f"`{name}[` ]"):
    fn(*args, **kwargs)


def test_bad_inputs_laser():
  s, c, l = np.ones(4), np.ones(4, bool), np.ones(4)
  _raises("mode", rlcore.laser, s, c, l, 10, mode="bonus")
  _raises("scores", rlcore.laser, np.ones((2, 2, 2)), c, l, 10)
  _raises("scores", rlcore.laser, np.float32(1.0), True, 1.0, 10)
  _raises("correct", rlcore.laser, s, np.ones(5, bool), l, 10)
  _raises("lengths", rlcore.laser, s, c, np.ones((4, 1)), 10)
  _raises("lengths", rlcore.laser, s, c, -l, 10)
  _raises("target_length", rlcore.laser, s, c, l, np.ones(3))
  _raises("valid", rlcore.laser, s, c, l, 10, valid=np.ones(3, bool))
  _raises("correct", rlcore.laser_difficulty, c)  # [B] without group_ids
  _raises("group_ids", rlcore.laser_difficulty, c, np.array([0, 1, 2, 3]), 3)
  _raises("group_ids", rlcore.laser_difficulty, c, np.array([0, 1]), 3)
  _raises("num_groups", rlcore.laser_difficulty, c, np.array([0, 1, 1, 0]))
  _raises("valid", rlcore.laser_difficulty, np.ones((2, 3), bool), valid=np.ones((3, 2), bool))


def test_bad_inputs_laser_d_family():
  _raises("lower", rlcore.laser_d_thresholds, 0, 100, 10)
  _raises("upper", rlcore.laser_d_thresholds, 200, 100, 10)
  _raises("interval", rlcore.laser_d_thresholds, 100, 200, 0)
  _raises("interval", rlcore.laser_d_thresholds, 100, 200, 10.0)
  _raises("lengths", rlcore.laser_monitor_statistics, np.ones(8), np.ones(8, bool), THRESHOLDS)
  _raises("correct", rlcore.laser_monitor_statistics, np.ones((2, 8)), np.ones((2, 7), bool),
          THRESHOLDS)
  _raises("thresholds", rlcore.laser_monitor_statistics, np.ones((2, 8)), np.ones((2, 8), bool),
          np.ones((2, 2)))
  _raises("valid", rlcore.laser_monitor_statistics, np.ones((2, 8)), np.ones((2, 8), bool),
          THRESHOLDS, valid=np.ones(8, bool))
  stats = rlcore.laser_monitor_statistics(np.ones((2, 8)), np.ones((2, 8), bool), THRESHOLDS)
  _raises("round_method", rlcore.laser_target_lengths, stats, THRESHOLDS, round_method="round")
  _raises("stats.covered", rlcore.laser_target_lengths, stats, THRESHOLDS[:3])
  _raises("thresholds", rlcore.laser_d, [])
  _raises("thresholds", rlcore.laser_de, np.ones((2, 2)))
  _raises("mode", rlcore.laser_d, THRESHOLDS, mode="bonus")
  _raises("round_method", rlcore.laser_d, THRESHOLDS, round_method="nearest")
  _raises("round_method", rlcore.laser_de, THRESHOLDS, round_method="nearest")
  _raises("initial_target_length", rlcore.laser_d, THRESHOLDS, initial_target_length=-5)
  t = rlcore.laser_d(THRESHOLDS)
  with pytest.raises(TypeError, match="stats"):
    t.update(t.init(), {"covered": 1})
  with pytest.raises(TypeError, match="context"):
    t.apply(np.ones((2, 3)), t.init(), None)
  ctx = rlcore.SequenceContext(correct=np.ones((2, 3), bool), lengths=np.ones((2, 4)))
  _raises("lengths", t.apply, np.ones((2, 3)), t.init(), ctx)
  ctx = rlcore.SequenceContext(correct=np.ones(6, bool), lengths=np.ones(6))
  _raises("correct", t.apply, np.ones(6), t.init(), ctx)  # [B] needs group_ids


@pytest.mark.parametrize("make", [rlcore.laser_d, rlcore.laser_de])
def test_stateful_apply_and_update_under_jit_vmap_match_per_example(make):
  rng = np.random.default_rng(7)
  thresholds = rlcore.laser_d_thresholds(8, 64, 8)
  t = make(thresholds, alpha=0.5)
  v, p, g = 3, 4, 6
  mon_len = rng.integers(1, 70, size=(v, 5, g))
  mon_cor = rng.random((v, 5, g)) < 0.5
  stats = [rlcore.laser_monitor_statistics(mon_len[i], mon_cor[i], thresholds) for i in range(v)]
  states = [t.update(t.init(), s) for s in stats]
  scores = np.where(rng.random((v, p, g)) < 0.5, 1.0, -0.5).astype(np.float32)
  ctx = rlcore.SequenceContext(correct=scores == 1.0, lengths=rng.integers(1, 70, (v, p, g)),
                               repetitive=rng.random((v, p, g)) < 0.3)
  expected = [jax.jit(t.apply)(scores[i], states[i], jax.tree_util.tree_map(
      lambda x, i=i: x[i], ctx))[0] for i in range(v)]
  stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *states)
  out, _ = jax.jit(jax.vmap(t.apply))(scores, stacked, ctx)
  assert_close(out, np.stack(expected))
  # update, vmapped over monitor passes, gives the same states as one by one.
  vstats = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *stats)
  batched = jax.jit(jax.vmap(t.update))(jax.tree_util.tree_map(
      lambda x: jnp.stack([x] * v), t.init()), vstats)
  np.testing.assert_array_equal(batched.target_lengths,
                                np.stack([s.target_lengths for s in states]))


@pytest.mark.parametrize("value", [float("nan"), np.float32(np.nan), -1.0,
                                   np.array([100.0, np.nan, 100.0, 100.0])])
def test_laser_rejects_nan_or_negative_target_length(value):
  s, c, l = np.ones(4), np.ones(4, bool), np.ones(4)
  with pytest.raises(ValueError, match=r"laser: `target_length` must lie in \[0, inf\]"):
    rlcore.laser(s, c, l, value)
  # traced targets are not checked (vmap sweeps)
  out = jax.jit(lambda t: rlcore.laser(s, c, l, t))(150.0)
  assert_close(out, ref_laser(s, c, l, 150.0))


def test_laser_family_rejects_bad_alpha_and_expected_n_correct():
  s, c, l = np.ones(4), np.ones(4, bool), np.ones(4)
  for alpha in (-0.5, float("nan")):
    _raises("alpha", rlcore.laser, s, c, l, 10, alpha=alpha)
    _raises("alpha", rlcore.laser_d, THRESHOLDS, alpha=alpha)
    _raises("alpha", rlcore.laser_de, THRESHOLDS, alpha=alpha)
  stats = rlcore.laser_monitor_statistics(np.ones((2, 8)), np.ones((2, 8), bool), THRESHOLDS)
  for k_exp in (0, -1, 0.0, float("nan")):
    with pytest.raises(ValueError, match=r"`expected_n_correct` must lie in \(0.0, inf\]"):
      rlcore.laser_target_lengths(stats, THRESHOLDS, expected_n_correct=k_exp)
    _raises("expected_n_correct", rlcore.laser_d, THRESHOLDS, expected_n_correct=k_exp)
    _raises("expected_n_correct", rlcore.laser_de, THRESHOLDS, expected_n_correct=k_exp)
  _raises("initial_target_length", rlcore.laser_d, THRESHOLDS,
          initial_target_length=float("nan"))


def test_laser_empty_batches_give_empty_results():
  z = np.zeros((3, 0), np.float32)
  assert rlcore.laser(z, z > 0, z, 10).shape == (3, 0)
  for shape, ids, n in [((3, 0), None, None), ((0, 4), None, None),
                        ((0,), np.zeros(0, np.int32), 2)]:
    c = np.zeros(shape, bool)
    b = rlcore.laser_difficulty(c, ids, n)
    assert b.shape == shape and b.dtype == jnp.int32
    for make in (rlcore.laser_d, rlcore.laser_de):
      t = make(THRESHOLDS)
      ctx = rlcore.SequenceContext(correct=c, lengths=np.zeros(shape), group_ids=ids,
                                   num_groups=n)
      out, _ = t.apply(np.zeros(shape, np.float32), t.init(), ctx)
      assert out.shape == shape and out.dtype == jnp.float32


@pytest.mark.parametrize("make", [rlcore.laser_d, rlcore.laser_de])
def test_laser_d_traced_out_of_range_group_ids_leave_scores_unchanged(make):
  # Documented: under jit such samples are in no group and are treated as invalid.
  scores, correct, lengths = _training_batch()
  ids = np.repeat(np.arange(3), 6).astype(np.int32)
  bad = np.zeros(18, bool)
  bad[[0, 7, 12]] = True
  wild = np.where(bad, np.array([5, -1, 3] * 6)[:18], ids).astype(np.int32)
  t = make(THRESHOLDS)
  apply = jax.jit(t.apply)
  flat = lambda x: x.reshape(-1)
  ctx = lambda i, v: rlcore.SequenceContext(correct=flat(correct), lengths=flat(lengths),
                                            group_ids=i, valid=v, num_groups=3)
  want, _ = apply(flat(scores), _state(), ctx(np.where(bad, 0, ids).astype(np.int32), ~bad))
  got, _ = apply(flat(scores), _state(), ctx(wild, np.ones(18, bool)))
  np.testing.assert_array_equal(np.asarray(got)[bad], flat(scores)[bad])
  assert_close(got, want)
  with pytest.raises(ValueError, match="`group_ids` must lie in .*num_groups"):
    t.apply(flat(scores), _state(), ctx(wild, None))
