"""The length rewards that LASER's unified framework R̂ = C + λ·S covers.

Each function maps per-sample scores (and correctness, lengths) to shaped scores.
They are pure, accept `[B]` or `[P, G]` arrays (group-based ones also `[N]` with
`group_ids`), and keep all coefficients traceable. Group-based ones raise on concrete
`group_ids` outside [0, num_groups); under `jit` such a sample is treated as
`valid=False` (score unchanged, left out of its group's statistics). The table of the framework is in
"Learn to Reason Efficiently with Adaptive Length-based Reward Shaping", Liu et al.
2025 (https://arxiv.org/abs/2505.15612), Table 2; each function cites its own paper.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from rlcore import _checks
from rlcore._groups import Groups, safe_div

Array = jax.Array


def _arrays(fn, first_name, first, **others):
  _checks.check_rank(fn, first_name, first, range(1, 3), "([B] or [P, G])")
  shape = jnp.shape(first)
  out = [_checks.as_float(first)]
  for name, x in others.items():
    _checks.check_shape(fn, name, x, shape, f"(same as `{first_name}`)")
    out.append(_checks.as_bool(x) if name in ("correct", "valid") else _checks.as_float(x))
  return out


def _group_arrays(fn, scores, correct, lengths, group_ids, num_groups, valid):
  """Checked arrays of a group-based length reward, and its valid (finite) mask."""
  groups = Groups(fn, "scores", scores, group_ids, num_groups)
  s, correct, lengths = _arrays(fn, "scores", scores, correct=correct, lengths=lengths)
  if valid is not None:
    groups.check_same("valid", valid)
  ok = jnp.isfinite(s) if valid is None else _checks.as_bool(valid) & jnp.isfinite(s)
  # Under jit, samples with an out-of-range group id are in no group: as invalid.
  return groups, s, correct, lengths, groups.member(ok)


def truncation_reward(scores: Array, lengths: Array, max_length, *, rho=0.0) -> Array:
  """Vanilla truncation: responses over the context budget get a fixed reward.

      r_i = s_i if len_i ≤ L_T else ρ          (C = 0, λ = 1 in LASER's Table 2)

  ThinkPrune is this rule with L_T lowered in stages (4096 → 3072 → 2048).

  See Liu et al. 2025 (https://arxiv.org/abs/2505.15612), Table 2; "ThinkPrune",
  Hou et al. 2025 (https://arxiv.org/abs/2504.01296).

  Args:
    scores: [B] or [P, G] verifier scores.
    lengths: response lengths, same shape.
    max_length: L_T, scalar or broadcastable.
    rho: reward of over-long responses (0).

  Returns:
    float32 shaped scores.
  """
  fn = "truncation_reward"
  s, lengths = _arrays(fn, "scores", scores, lengths=lengths)
  _checks.check_broadcastable(fn, "max_length", max_length, s.shape)
  lmax = jnp.broadcast_to(_checks.as_float(max_length), s.shape)  # no rank promotion
  return jnp.where(lengths <= lmax, s, _checks.as_float(rho))


def l1_exact_reward(scores: Array, lengths: Array, target_lengths, *, alpha=3e-4) -> Array:
  """L1-Exact (LCPO): penalise any distance to the requested length.

      r_i = s_i − α · |len_i − L_i|            (C = R, λ = 1, S = −α|L − L_T|)

  With s = 1[correct] this is the official `math_reward_fn` with
  `linear_reward=True`. The target is per prompt (sampled in [100, 4000] in the
  paper) and written into the prompt.

  See "L1: Controlling How Long A Reasoning Model Thinks With Reinforcement
  Learning", Aggarwal & Welleck 2025 (https://arxiv.org/abs/2503.04697).

  Args:
    scores: [B] or [P, G] scores (1[correct] in the paper).
    lengths: response lengths, same shape.
    target_lengths: L_i, scalar or broadcastable.
    alpha: α (3e-4 in the paper's script).

  Returns:
    float32 shaped scores (unbounded below).
  """
  fn = "l1_exact_reward"
  s, lengths = _arrays(fn, "scores", scores, lengths=lengths)
  _checks.check_broadcastable(fn, "target_lengths", target_lengths, s.shape)
  target = jnp.broadcast_to(_checks.as_float(target_lengths), s.shape)  # no rank promotion
  return s - _checks.as_float(alpha) * jnp.abs(lengths - target)


def l1_max_reward(correct: Array, lengths: Array, target_lengths, *, alpha=3e-4,
                  delta=0.5) -> Array:
  """L1-Max (LCPO-Max): a soft budget, only correct answers earn reward.

      r_i = 1[correct_i] · clip(α · (L_i − len_i) + δ, 0, 1)    (C = 0, λ = I(R))

  [unverified] The paper text was not available when this was written; the form
  and δ = 0.5 follow its published summary. The official code's linear variant
  computes clip((α/2)(L − len) + 0.5, 0, 1), i.e. half the slope for the same α, and
  its run script does not pin the flags; pass `alpha` accordingly.

  See Aggarwal & Welleck 2025 (https://arxiv.org/abs/2503.04697).

  Args:
    correct: [B] or [P, G] bool.
    lengths: response lengths, same shape.
    target_lengths: budget L_i, scalar or broadcastable.
    alpha: slope α.
    delta: offset δ (reward at exactly the budget).

  Returns:
    float32 rewards in [0, 1].
  """
  fn = "l1_max_reward"
  lengths, correct = _arrays(fn, "lengths", lengths, correct=correct)
  _checks.check_broadcastable(fn, "target_lengths", target_lengths, lengths.shape)
  target = jnp.broadcast_to(_checks.as_float(target_lengths), lengths.shape)
  inner = _checks.as_float(alpha) * (target - lengths)
  return jnp.where(correct, jnp.clip(inner + _checks.as_float(delta), 0.0, 1.0), 0.0)


def kimi_length_reward(scores: Array, correct: Array, lengths: Array,
                       group_ids: Optional[Array] = None, num_groups: Optional[int] = None,
                       *, coef=1.0, valid: Optional[Array] = None) -> Array:
  """Kimi k1.5 length reward, relative to the other samples of the prompt.

      λ_i = 0.5 − (len_i − min_g len) / (max_g len − min_g len)
      r_i = s_i + coef · (λ_i if correct_i else min(0, λ_i))

  and λ = 0 when all lengths in the group are equal (including singleton groups).
  Short correct answers gain up to +0.5·coef, long ones lose up to 0.5·coef; wrong
  answers are only ever penalised. LASER's port uses coef 0.4 and leaves format
  failures unchanged while still counting their lengths in min/max; `valid=False`
  here leaves a sample unchanged *and* out of min/max.

  See "Kimi k1.5: Scaling Reinforcement Learning with LLMs", Kimi Team 2025
  (https://arxiv.org/abs/2501.12599), §2.3.3.

  Args:
    scores: [P, G] dense, or [N] with `group_ids`.
    correct: bool, same shape.
    lengths: same shape.
    group_ids: optional [N] int.
    num_groups: static int, required with `group_ids`.
    coef: weight of the length reward.
    valid: optional bool mask; invalid samples are left out of min/max and unchanged.

  Returns:
    float32 shaped scores.
  """
  fn = "kimi_length_reward"
  groups, s, correct, lengths, ok = _group_arrays(fn, scores, correct, lengths, group_ids,
                                                  num_groups, valid)
  lo = groups.masked_min(lengths, ok)
  hi = groups.masked_max(lengths, ok)
  spread = jnp.where(ok, hi - lo, 0.0)
  lam = jnp.where(spread > 0, 0.5 - safe_div(lengths - lo, spread), 0.0)
  bonus = jnp.where(correct, lam, jnp.minimum(lam, 0.0))
  return jnp.where(ok, s + _checks.as_float(coef) * bonus, s)


def group_length_penalty(scores: Array, correct: Array, lengths: Array,
                         group_ids: Optional[Array] = None, num_groups: Optional[int] = None,
                         *, alpha=0.2, ddof: int = 0, eps=1e-7,
                         valid: Optional[Array] = None) -> Array:
  """Group-based length penalty ("Efficient Reasoning"): z-scored length of correct answers.

      z_i = (len_i − mean_g) / (std_g + ε)   (stats over the correct answers of the group)
      r_i = s_i · (1 − α · sigmoid(z_i))      for correct answers; s_i otherwise

  Defaults follow the original code (population std, ε = 1e-7); LASER's port uses
  ddof = 1, ε = 1e-6 and α = 0.4. A group with one correct answer has std 0 and z 0.
  This is the method LASER reports as trading accuracy for length: its signal rises
  as the policy shortens answers even when accuracy falls.

  See "Training Language Models to Reason Efficiently", Arora & Zanette 2025
  (https://arxiv.org/abs/2502.04463); LASER's Table 2 (α = 0.2 in its Table 3).

  Args:
    scores: [P, G] dense, or [N] with `group_ids`.
    correct: bool, same shape.
    lengths: same shape.
    group_ids: optional [N] int.
    num_groups: static int, required with `group_ids`.
    alpha: penalty strength α in [0, 1] (checked when concrete).
    ddof: static int for the std.
    eps: added to the std.
    valid: optional bool mask.

  Returns:
    float32 shaped scores.
  """
  fn = "group_length_penalty"
  groups, s, correct, lengths, ok = _group_arrays(fn, scores, correct, lengths, group_ids,
                                                  num_groups, valid)
  _checks.check_range(fn, "alpha", alpha, 0.0, 1.0)
  good = correct & ok
  _, mean, std = groups.moments(lengths, good, ddof)
  z = (lengths - mean) / (std + _checks.as_float(eps))
  factor = 1.0 - _checks.as_float(alpha) * jax.nn.sigmoid(z)
  return jnp.where(good, s * factor, s)


def dapo_overlong_penalty(scores: Array, lengths: Array, max_length, buffer_length, *,
                          penalty_factor=1.0) -> Array:
  """DAPO's soft overlong punishment, added to the score.

      R_len = 0                                  if len ≤ L_max − L_buf
            = ((L_max − L_buf) − len) / L_buf    if L_max − L_buf < len ≤ L_max
            = −1                                 if len > L_max
      r_i = s_i + f · R_len

  (verl's `DAPORewardManager`; the clamp at −1 matters only for len > L_max.)

  See "DAPO: An Open-Source LLM Reinforcement Learning System at Scale", Yu et al.
  2025 (https://arxiv.org/abs/2503.14476), Eq. 13.

  Args:
    scores: [B] or [P, G] scores.
    lengths: response lengths, same shape.
    max_length: L_max, the maximum response length.
    buffer_length: L_buf > 0, the soft buffer (4096 in the paper).
    penalty_factor: f (1.0).

  Returns:
    float32 shaped scores.
  """
  fn = "dapo_overlong_penalty"
  s, lengths = _arrays(fn, "scores", scores, lengths=lengths)
  _checks.check_range(fn, "buffer_length", buffer_length, 0.0, low_inclusive=False)
  lmax = _checks.as_float(max_length)
  lbuf = _checks.as_float(buffer_length)
  r_len = jnp.clip(((lmax - lbuf) - lengths) / lbuf, -1.0, 0.0)
  return s + _checks.as_float(penalty_factor) * r_len


def cosine_length_reward(correct: Array, lengths: Array, max_length, *, r0_correct=2.0,
                         rl_correct=1.0, r0_wrong=-10.0, rl_wrong=0.0, r_exceed=-10.0,
                         margin=16) -> Array:
  """Cosine length-scaled reward: short correct answers earn most, short wrong ones lose most.

      r_i = r_L + ½ (r_0 − r_L)(1 + cos(π · len_i / L_max))
      (r_0, r_L) = (r0_correct, rl_correct) if correct else (r0_wrong, rl_wrong)
      r_i = r_exceed if len_i + margin ≥ L_max

  Defaults are the paper's script (r_0^c = 2, r_L^c = 1, r_0^w = −10, r_L^w = 0,
  exceed −10, margin 16 tokens): correct answers prefer brevity, wrong answers are
  pushed to think longer.

  See "Demystifying Long Chain-of-Thought Reasoning in LLMs", Yeo et al. 2025
  (https://arxiv.org/abs/2502.03373), §4.2.

  Args:
    correct: [B] or [P, G] bool.
    lengths: generated lengths, same shape.
    max_length: L_max, the generation budget.
    r0_correct, rl_correct, r0_wrong, rl_wrong, r_exceed: reward endpoints.
    margin: tokens before L_max that already count as exceeding.

  Returns:
    float32 rewards.
  """
  fn = "cosine_length_reward"
  lengths, correct = _arrays(fn, "lengths", lengths, correct=correct)
  _checks.check_range(fn, "max_length", max_length, 0.0, low_inclusive=False)
  lmax = _checks.as_float(max_length)
  f = _checks.as_float
  r0 = jnp.where(correct, f(r0_correct), f(r0_wrong))
  rl = jnp.where(correct, f(rl_correct), f(rl_wrong))
  r = rl + 0.5 * (r0 - rl) * (1.0 + jnp.cos(jnp.pi * lengths / lmax))
  return jnp.where(lengths + f(margin) >= lmax, f(r_exceed), r)
