"""LASER, LASER-D and LASER-DE: length-based step reward shaping.

All three add a step bonus α to correct responses no longer than a target length,
before any group normalisation (an all-correct group whose lengths straddle the
target is then no longer zero-variance: that is where LASER's signal on easy
prompts comes from). LASER-D picks the target per difficulty bucket from a monitor
pass; LASER-DE also rewards long, non-repetitive wrong answers (exploration).

Bucket convention (one, used everywhere here): with c correct out of n samples of a
prompt, the prompt is *easy* if 3c ≥ 2n, *medium* if 3c ≥ n, else *hard*. Integer
comparisons, so K = 3, 6, 9, … land exactly (4/6 is easy). The official code uses
these edges when shaping but `acc > 2/3`, `acc > 1/3` in its monitor pass; the two
disagree exactly when K is a multiple of 3.

See "Learn to Reason Efficiently with Adaptive Length-based Reward Shaping",
Liu et al. 2025 (https://arxiv.org/abs/2505.15612), and the official code
(hkust-nlp/Laser, `verl/utils/reward_score/length_penalty.py`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import _checks
from rlcore._groups import Groups
from rlcore.shaping.base import ShapingTransform
from rlcore.types import SequenceContext

Array = jax.Array

MODES = ("reward", "penalty", "hybrid")
ROUND_METHODS = ("floor", "ceil")
HARD, MEDIUM, EASY = 0, 1, 2
BUCKETS = ("hard", "medium", "easy")
FALLBACK = -1  # target length meaning "the longest response of the current batch"


def _sample_arrays(fn, scores, correct, lengths, valid):
  _checks.check_rank(fn, "scores", scores, range(1, 3), "([B] or [P, G])")
  shape = jnp.shape(scores)
  _checks.check_shape(fn, "correct", correct, shape, "(same as `scores`)")
  _checks.check_shape(fn, "lengths", lengths, shape, "(same as `scores`)")
  _checks.check_range(fn, "lengths", lengths, 0)
  ok = jnp.ones(shape, bool)
  if valid is not None:
    _checks.check_shape(fn, "valid", valid, shape, "(same as `scores`)")
    ok = _checks.as_bool(valid)
  s = _checks.as_float(scores)
  ok = ok & jnp.isfinite(s)
  return s, _checks.as_bool(correct) & ok, _checks.as_float(lengths), ok


def laser(scores: Array, correct: Array, lengths: Array, target_length, *, alpha=0.5,
          mode: str = "reward", valid: Optional[Array] = None) -> Array:
  """LASER: a step length bonus for correct responses.

      reward : r_i = s_i + α · 1[correct_i] · 1[len_i ≤ L_T]
      penalty: r_i = s_i − α · 1[correct_i] · 1[len_i > L_T]
      hybrid : r_i = s_i + α · 1[correct_i] · (1[len_i ≤ L_T] − 1[len_i > L_T])

  Wrong answers keep their score. In the unified framework R̂ = C + λ·S of the paper
  this is C = R, λ = I(R), S = α·1[L ≤ L_T]. The official code tests `score == 1`
  (answer and format) for "correct"; pass that as `correct`.

  See Liu et al. 2025 (https://arxiv.org/abs/2505.15612), Table 2 and Eq. 2.

  Args:
    scores: [B] or [P, G] base verifier scores (e.g. 1 / −0.5 / −1).
    correct: bool, same shape.
    lengths: response lengths in tokens (incl. EOS), same shape.
    target_length: L_T >= 0 (not NaN), scalar or broadcastable (may be traced;
      checked when concrete).
    alpha: bonus size α >= 0 (0.5 in the paper; may be traced; checked when concrete).
    mode: "reward", "penalty" or "hybrid".
    valid: optional bool mask; invalid (and NaN) scores are returned unchanged.

  Returns:
    float32 shaped scores, same shape as `scores`.
  """
  fn = "laser"
  _checks.check_choice(fn, "mode", mode, MODES)
  s, correct, lengths, _ = _sample_arrays(fn, scores, correct, lengths, valid)
  _checks.check_broadcastable(fn, "target_length", target_length, s.shape)
  _checks.check_range(fn, "target_length", target_length, 0)
  _checks.check_range(fn, "alpha", alpha, 0)
  target = jnp.broadcast_to(_checks.as_float(target_length), s.shape)  # no rank promotion
  return s + _bonus(correct, lengths, target, _checks.as_float(alpha), mode)


def _bonus(correct, lengths, target, alpha, mode):
  short = lengths <= target
  up = jnp.where(short, 1.0, 0.0) if mode in ("reward", "hybrid") else 0.0
  down = jnp.where(short, 0.0, 1.0) if mode in ("penalty", "hybrid") else 0.0
  return jnp.where(correct, alpha * (up - down), 0.0)


def laser_difficulty(correct: Array, group_ids: Optional[Array] = None,
                     num_groups: Optional[int] = None, *,
                     valid: Optional[Array] = None) -> Array:
  """Difficulty bucket of each sample's prompt from its group's accuracy.

      easy (2) if 3c ≥ 2n,   medium (1) if 3c ≥ n,   hard (0) otherwise

  with c correct among the n valid samples of the prompt (module docstring). A
  group without valid samples (n = 0), and under `jit` a sample whose traced group id
  is outside [0, num_groups) (it is in no group, n = c = 0), is easy.
  See Liu et al. 2025 (https://arxiv.org/abs/2505.15612), §5.1.

  Args:
    correct: [P, G] or [N] bool.
    group_ids: optional [N] int.
    num_groups: static int, required with `group_ids`.
    valid: optional bool mask like `correct`.

  Returns:
    int32 bucket per sample, same shape as `correct`.
  """
  groups = Groups("laser_difficulty", "correct", correct, group_ids, num_groups)
  ok = jnp.ones(groups.shape, bool) if valid is None else _checks.as_bool(valid)
  if valid is not None:
    groups.check_same("valid", valid)
  n = groups.sum(ok.astype(jnp.int32))
  c = groups.sum((_checks.as_bool(correct) & ok).astype(jnp.int32))
  return jnp.where(3 * c >= 2 * n, EASY, jnp.where(3 * c >= n, MEDIUM, HARD)).astype(jnp.int32)


def laser_d_thresholds(lower: int, upper: int, interval: int) -> np.ndarray:
  """Candidate target lengths searched by LASER-D (host side, static).

  `[lower, lower + I, …, upper]`, or `[lower, I, 2I, …, upper]` when lower < I
  (the official `get_length_threshold`). Defaults in the paper: I = 1024,
  upper = 16384. See Liu et al. 2025 (https://arxiv.org/abs/2505.15612), §5.2.

  Args:
    lower: smallest candidate (LASER-D's L_T), a positive int.
    upper: largest candidate (the maximum response length).
    interval: spacing I.

  Returns:
    [NL] int32 numpy array of sorted, distinct candidate lengths.
  """
  fn = "laser_d_thresholds"
  for name, v in (("lower", lower), ("upper", upper), ("interval", interval)):
    _checks.check_positive_int(fn, name, v)
  if upper < lower:
    raise ValueError(f"{fn}: `upper` ({upper}) must be >= `lower` ({lower}).")
  if lower < interval:
    values = [lower] + list(range(interval, upper + 1, interval))
  else:
    values = list(range(lower, upper + 1, interval))
  return np.asarray(sorted(set(values)), np.int32)


@dataclasses.dataclass(frozen=True)
class LaserMonitorStats:
  """Length coverage of a monitor pass, per difficulty bucket (hard, medium, easy).

  A pytree whose `rollouts` is static metadata, so it can cross `jit`.
  """
  covered: Array          # [3, NL] float32 responses with length <= threshold l
  total: Array            # [3] float32 responses in the bucket
  rollouts: int           # K, samples per monitor prompt (static)


jax.tree_util.register_dataclass(LaserMonitorStats, data_fields=["covered", "total"],
                                 meta_fields=["rollouts"])


def laser_monitor_statistics(lengths: Array, correct: Array, thresholds, *,
                             valid: Optional[Array] = None) -> LaserMonitorStats:
  """Coverage P_{l,d} of a LASER-D monitor pass (K rollouts of M prompts).

      P_{l,d} = #{responses of bucket-d prompts with length ≤ l} / #{responses of bucket d}

  over *all* responses, correct or not. Correctness here is answer correctness
  (the official monitor ignores the format); pass what your verifier reports.
  See Liu et al. 2025 (https://arxiv.org/abs/2505.15612), §5.2.

  Args:
    lengths: [M, K] response lengths of the monitor rollouts.
    correct: [M, K] bool.
    thresholds: [NL] candidate lengths (`laser_d_thresholds`).
    valid: optional [M, K] bool mask.

  Returns:
    `LaserMonitorStats` (counts; P = covered / total).
  """
  fn = "laser_monitor_statistics"
  _checks.check_rank(fn, "lengths", lengths, 2, "[M, K] (monitor prompts x rollouts)")
  _checks.check_shape(fn, "correct", correct, jnp.shape(lengths), "(same as `lengths`)")
  _checks.check_rank(fn, "thresholds", thresholds, 1, "[NL]")
  ok = jnp.ones(jnp.shape(lengths), bool) if valid is None else _checks.as_bool(valid)
  if valid is not None:
    _checks.check_shape(fn, "valid", valid, jnp.shape(lengths), "(same as `lengths`)")
  bucket = laser_difficulty(correct, valid=ok)                          # [M, K]
  onehot = jax.nn.one_hot(bucket, 3, dtype=jnp.float32) * ok[..., None]  # [M, K, 3]
  th = _checks.as_float(thresholds)[None, None, :]                      # [1, 1, NL]
  le = (_checks.as_float(lengths)[..., None] <= th).astype(jnp.float32)  # [M, K, NL]
  covered = jnp.einsum("mkd,mkl->dl", onehot, le)
  total = jnp.sum(onehot, axis=(0, 1))
  return LaserMonitorStats(covered=covered, total=total, rollouts=int(jnp.shape(lengths)[1]))


def laser_target_lengths(stats: LaserMonitorStats, thresholds, *, round_method: str = "floor",
                         expected_n_correct=1) -> Array:
  """LASER-D's adaptive target length per bucket (the ECR rule).

      ECR_{l,d} = P_{l,d} · |C_d|,     L_A(d) = min{ l : ECR_{l,d} ≥ K_exp }

  |C_d| is the least number of correct samples a bucket-d prompt has out of K:
  floor (official code default): (1, ⌊K/3⌋, ⌊2K/3⌋) for (hard, medium, easy), with
  the test ⌊ECR⌋ ≥ K_exp; ceil (the paper's 6, 3, 1 at K = 8): (1, ⌈K/3⌉, ⌈2K/3⌉)
  with ECR ≥ K_exp. Where no threshold qualifies, or the bucket had no monitor
  prompt, the target is `FALLBACK` (-1): the longest response of the current
  training batch, as the official code. Comparisons are exact (integer counts).

  See Liu et al. 2025 (https://arxiv.org/abs/2505.15612), §5.2 Eq. 3.

  Args:
    stats: `LaserMonitorStats`.
    thresholds: [NL] candidate lengths, as given to `laser_monitor_statistics`.
    round_method: "floor" or "ceil".
    expected_n_correct: K_exp > 0 (1 in the paper; checked when concrete).

  Returns:
    [3] int32 target lengths for (hard, medium, easy); -1 = fallback.
  """
  fn = "laser_target_lengths"
  _checks.check_choice(fn, "round_method", round_method, ROUND_METHODS)
  _checks.check_range(fn, "expected_n_correct", expected_n_correct, 0.0, low_inclusive=False)
  thresholds = jnp.asarray(thresholds)
  _checks.check_shape(fn, "stats.covered", stats.covered, (3, thresholds.shape[0]),
                      "(3 buckets x the number of thresholds)")
  k = stats.rollouts
  rnd = math.floor if round_method == "floor" else math.ceil
  least = jnp.asarray([1.0, rnd(k / 3), rnd(2 * k / 3)], jnp.float32)
  need = _checks.as_float(expected_n_correct)
  if round_method == "floor":  # int(x) >= need  <=>  x >= ceil(need)
    need = jnp.ceil(need)
  ok = (stats.covered * least[:, None] >= need * stats.total[:, None]) & (stats.total[:, None] > 0)
  big = jnp.iinfo(jnp.int32).max
  best = jnp.min(jnp.where(ok, thresholds.astype(jnp.int32), big), axis=-1)
  return jnp.where(jnp.any(ok, axis=-1), best, FALLBACK).astype(jnp.int32)


class LaserDState(NamedTuple):
  """State of LASER-D / LASER-DE."""
  target_lengths: Array  # [3] int32 L_A for (hard, medium, easy); -1 = batch max length
  num_updates: Array     # [] int32 monitor passes applied so far


def _effective_targets(state, ctx: SequenceContext, lengths, ok):
  """Per-sample target: its bucket's L_A, or the batch's longest valid response."""
  bucket = laser_difficulty(ctx.correct, ctx.group_ids, ctx.num_groups, valid=ok)
  batch_max = jnp.max(jnp.where(ok, lengths, 0.0), initial=0.0)  # empty batch: 0
  targets = jnp.where(state.target_lengths < 0, batch_max,
                      state.target_lengths.astype(jnp.float32))
  return targets[bucket]


def _laser_d_family(fn, thresholds, alpha, mode, round_method, expected_n_correct,
                    initial_target_length, explore: bool) -> ShapingTransform:
  _checks.check_choice(fn, "round_method", round_method, ROUND_METHODS)
  _checks.check_choice(fn, "mode", mode, MODES)
  thresholds = np.asarray(thresholds)
  if thresholds.ndim != 1 or thresholds.size == 0:
    raise ValueError(f"{fn}: `thresholds` must be a non-empty 1-D list of lengths, got shape "
                     f"{thresholds.shape}.")
  init_len = FALLBACK if initial_target_length is None else initial_target_length
  _checks.check_range(fn, "initial_target_length", init_len, FALLBACK)
  _checks.check_range(fn, "expected_n_correct", expected_n_correct, 0.0, low_inclusive=False)
  _checks.check_range(fn, "alpha", alpha, 0)

  def init():
    return LaserDState(target_lengths=jnp.full((3,), init_len, jnp.int32),
                       num_updates=jnp.zeros((), jnp.int32))

  def update(state, stats: LaserMonitorStats):
    if not isinstance(stats, LaserMonitorStats):
      raise TypeError(f"{fn}.update: `stats` must be LaserMonitorStats (from "
                      f"laser_monitor_statistics), got {type(stats).__name__}.")
    targets = laser_target_lengths(stats, thresholds, round_method=round_method,
                                   expected_n_correct=expected_n_correct)
    return LaserDState(target_lengths=targets, num_updates=state.num_updates + 1)

  def apply(scores, state, ctx: SequenceContext):
    if not isinstance(ctx, SequenceContext):
      raise TypeError(f"{fn}.apply: `context` must be a SequenceContext, got "
                      f"{type(ctx).__name__}.")
    s, correct, lengths, ok = _sample_arrays(fn, scores, ctx.correct, ctx.lengths, ctx.valid)
    # Samples whose traced group id is out of range are in no group: left unchanged.
    ok = Groups(fn, "correct", ctx.correct, ctx.group_ids, ctx.num_groups).member(ok)
    correct = correct & ok
    target = _effective_targets(state, ctx, lengths, ok)
    a = _checks.as_float(alpha)
    if not explore:
      return s + _bonus(correct, lengths, target, a, mode), state
    well_formed = ok if ctx.well_formed is None else _checks.as_bool(ctx.well_formed) & ok
    repetitive = (jnp.zeros(s.shape, bool) if ctx.repetitive is None
                  else _checks.as_bool(ctx.repetitive))
    long = lengths > target
    bonus = jnp.where(correct & ~long, a, 0.0)
    bonus += jnp.where(~correct & well_formed & ~repetitive & long, a, 0.0)
    return s + bonus, state

  return ShapingTransform(init=init, apply=apply, update=update)


def laser_d(thresholds: Sequence[int], *, alpha=0.5, mode: str = "reward",
            round_method: str = "floor", expected_n_correct=1,
            initial_target_length: Optional[int] = None) -> ShapingTransform:
  """LASER-D: LASER with a target length per difficulty bucket, adapted online.

      r_i = s_i + α · 1[correct_i] · 1[len_i ≤ L_A(d(x_i))]

  d(x) is the bucket of the prompt from its *training* group's accuracy (module
  docstring). L_A comes from `laser_target_lengths` on the latest monitor pass.

  Schedule: `init()` → target lengths `initial_target_length` (default: fallback,
  i.e. every correct answer up to the batch's longest gets the bonus, as the code
  without monitor metrics would with target = max length); every N training steps
  (N = 20 and at step 0 in the paper) roll out a monitor set with K samples,
  `stats = laser_monitor_statistics(...)`, `state = t.update(state, stats)`; at
  every step `scores, state = t.apply(scores, state, SequenceContext(...))`.

  See Liu et al. 2025 (https://arxiv.org/abs/2505.15612), §5.2.

  Args:
    thresholds: candidate lengths (`laser_d_thresholds(lower, 16384, 1024)`).
    alpha: bonus α >= 0 (0.5).
    mode: "reward", "penalty" or "hybrid" (as `laser`).
    round_method: "floor" (official code) or "ceil" (paper text).
    expected_n_correct: K_exp > 0 (1).
    initial_target_length: target before the first monitor pass, or None.

  Returns:
    `ShapingTransform`; state `LaserDState`; apply reads `SequenceContext`
    (correct, lengths, group_ids/num_groups, valid).
  """
  return _laser_d_family("laser_d", thresholds, alpha, mode, round_method,
                         expected_n_correct, initial_target_length, explore=False)


def laser_de(thresholds: Sequence[int], *, alpha=0.5, round_method: str = "floor",
             expected_n_correct=1,
             initial_target_length: Optional[int] = None) -> ShapingTransform:
  """LASER-DE: LASER-D plus an exploration bonus for long wrong answers.

      correct:                          r_i = s_i + α · 1[len_i ≤ L_A(d)]
      wrong, well formed, not repetitive: r_i = s_i + α · 1[len_i > L_A(d)]
      otherwise (format failure, truncated, repetitive): r_i = s_i

  This follows the official code; the paper's Table 2 gives the bonus to every
  incorrect response longer than L_A. The repetition flag is computed on the host
  (the official n-gram detector) and passed as `SequenceContext.repetitive`;
  `well_formed` (score −0.5 rather than −1 in the code) as `well_formed`.

  See Liu et al. 2025 (https://arxiv.org/abs/2505.15612), Table 2 and §5.3.

  Args:
    thresholds, alpha, round_method, expected_n_correct, initial_target_length:
      as `laser_d`.

  Returns:
    `ShapingTransform` with `LaserDState`, as `laser_d`.
  """
  return _laser_d_family("laser_de", thresholds, alpha, "reward", round_method,
                         expected_n_correct, initial_target_length, explore=True)
