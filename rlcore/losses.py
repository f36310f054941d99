"""Token-level policy losses for LLM policies: clipped surrogate, KL estimators, aggregation.

All functions take `[B, L]` token arrays (or array-likes) with a float or bool `mask`
(1 on response tokens) and return a scalar loss plus, where useful, per-token terms.
Shaping math is float32 whatever the inputs' dtype.

Masked positions (mask 0) are selected away, not multiplied by 0: NaN or ±inf there
(e.g. the log-prob of a padding token) changes neither the loss nor its gradient, and
the gradient at those positions is exactly 0.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from rlcore import _checks

Array = jax.Array

AGGREGATIONS = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "constant")
KL_KINDS = ("k1", "k2", "k3")


def aggregate_tokens(values: Array, mask: Array, mode: str = "token-mean", *,
                     normaliser=None) -> Array:
  """Reduces per-token losses [B, L] to a scalar, as verl's `loss_agg_mode`.

      token-mean:           Σ_{b,t} m·x / Σ_{b,t} m
      seq-mean-token-sum:   (1/B) Σ_b Σ_t m·x
      seq-mean-token-mean:  (1/B) Σ_b (Σ_t m·x / Σ_t m)      (GRPO paper; rows without
                            tokens contribute 0 to the sum and still count in B)
      constant:             Σ_{b,t} m·x / (B · C)            (Dr. GRPO, C = `normaliser`,
                            default L: no length bias from the normaliser)

  m·x is taken as 0 where m = 0, also when x is NaN or ±inf there (a `where`, not a
  product), so masked positions never reach the loss or its gradient.

  token-mean weights long responses more per sequence than seq-mean-token-mean, which
  biases GRPO toward long wrong answers (Dr. GRPO); `constant` removes both biases.
  See "Understanding R1-Zero-Like Training: A Critical Perspective", Liu et al. 2025
  (https://arxiv.org/abs/2503.20783) and DAPO (https://arxiv.org/abs/2503.14476).

  Args:
    values: [B, L] per-token losses.
    mask: [B, L] response mask (bool or float).
    mode: one of `AGGREGATIONS`.
    normaliser: constant C for mode "constant" (scalar; default L).

  Returns:
    Scalar float32.
  """
  _checks.check_choice("aggregate_tokens", "mode", mode, AGGREGATIONS)
  values = jnp.asarray(values)
  _checks.check_rank("aggregate_tokens", "values", values, 2, "[B, L]")
  _checks.check_shape("aggregate_tokens", "mask", mask, values.shape, "(same as `values`)")
  x = _checks.as_float(values)
  m = jnp.asarray(mask, x.dtype)
  xm = _masked(x, m)
  if mode == "token-mean":
    return jnp.sum(xm) / jnp.maximum(jnp.sum(m), 1.0)
  if mode == "seq-mean-token-sum":
    return jnp.mean(jnp.sum(xm, -1))
  if mode == "seq-mean-token-mean":
    return jnp.mean(jnp.sum(xm, -1) / jnp.maximum(jnp.sum(m, -1), 1.0))
  c = values.shape[-1] if normaliser is None else normaliser
  return jnp.sum(xm) / (values.shape[0] * jnp.asarray(c, x.dtype))


def _masked(x, m):
  """m·x with masked entries selected away (NaN · 0 would be NaN, also in the gradient)."""
  return jnp.where(m != 0, x, 0.0) * m


def _token_advantages(fn, advantages, shape):
  """[B, L] float32 advantages from [B, L] or per-sequence [B] ones."""
  adv = _checks.as_float(advantages)
  if adv.shape not in (tuple(shape), tuple(shape[:1])):
    raise ValueError(f"{fn}: `advantages` must have shape {tuple(shape)} (per token, as "
                     f"`logprobs`) or {tuple(shape[:1])} (per sequence), got {adv.shape}.")
  if adv.ndim == 1:
    adv = jnp.broadcast_to(adv[:, None], shape)
  return adv


def kl_estimate(logprobs: Array, ref_logprobs: Array, kind: str = "k3") -> Array:
  """Per-token estimate of KL(π ‖ π_ref) from samples of π (Schulman's estimators).

      k1 = log π − log π_ref                         (unbiased, high variance, can be < 0)
      k2 = ½ (log π − log π_ref)²                    (biased, low variance)
      k3 = exp(log π_ref − log π) − (log π_ref − log π) − 1   (unbiased, ≥ 0; verl's
           "low_var_kl", which additionally clamps to [−10, 10]; we clamp the log-ratio
           to [−20, 20] only to keep exp finite)

  See J. Schulman, "Approximating KL Divergence" (2020,
  http://joschu.net/blog/kl-approx.html) and GRPO, Shao et al. 2024
  (https://arxiv.org/abs/2402.03300), which uses k3.

  Args:
    logprobs: [...] log π(token) under the current policy.
    ref_logprobs: [...] log π_ref(token) under the frozen reference.
    kind: "k1", "k2" or "k3".

  Returns:
    [...] float32 per-token estimates (mask and aggregate them yourself).
  """
  _checks.check_choice("kl_estimate", "kind", kind, KL_KINDS)
  _checks.check_shape("kl_estimate", "ref_logprobs", ref_logprobs, jnp.shape(logprobs))
  diff = _checks.as_float(logprobs) - _checks.as_float(ref_logprobs)
  if kind == "k1":
    return diff
  if kind == "k2":
    return 0.5 * diff * diff
  neg = jnp.clip(-diff, -20.0, 20.0)
  return jnp.exp(neg) - neg - 1.0


def ppo_clip_loss(logprobs: Array, old_logprobs: Array, advantages: Array, mask: Array, *,
                  clip_low=0.2, clip_high=0.2, aggregation: str = "token-mean",
                  normaliser=None) -> tuple[Array, dict]:
  """Token-level clipped surrogate with separate lower and upper clip (DAPO clip-higher).

      ρ_t = exp(log π_θ(y_t) − log π_old(y_t))
      ℓ_t = max(−A_t ρ_t, −A_t clip(ρ_t, 1 − ε_low, 1 + ε_high))
      L   = aggregate(ℓ, mask)

  ε_low = ε_high gives PPO's symmetric clip; DAPO raises ε_high (0.28) so unlikely
  tokens with positive advantage can grow.

  See "Proximal Policy Optimization Algorithms", Schulman et al. 2017
  (https://arxiv.org/abs/1707.06347), and DAPO, Yu et al. 2025
  (https://arxiv.org/abs/2503.14476).

  Args:
    logprobs: [B, L] log-probs of the sampled tokens under the current parameters.
    old_logprobs: [B, L] log-probs under the parameters that sampled them (stored).
    advantages: [B, L] token advantages (or [B], broadcast over L).
    mask: [B, L] response mask. NaN or ±inf at masked positions of `logprobs`,
      `old_logprobs` or `advantages` affect neither the loss, nor the stats, nor the
      gradient (which is 0 there).
    clip_low: ε_low in [0, 1] (may be traced; checked when concrete).
    clip_high: ε_high ≥ 0 (may be traced; checked when concrete).
    aggregation: see `aggregate_tokens`.
    normaliser: see `aggregate_tokens`.

  Returns:
    (scalar loss, dict with clip_fraction and approx_kl (k3 of old vs new, token-mean)).
  """
  fn = "ppo_clip_loss"
  logprobs = jnp.asarray(logprobs)
  _checks.check_rank(fn, "logprobs", logprobs, 2, "[B, L]")
  shape = logprobs.shape
  _checks.check_shape(fn, "old_logprobs", old_logprobs, shape, "(same as `logprobs`)")
  _checks.check_shape(fn, "mask", mask, shape, "(same as `logprobs`)")
  _checks.check_range(fn, "clip_low", clip_low, 0.0, 1.0)
  _checks.check_range(fn, "clip_high", clip_high, 0.0)
  _checks.check_choice(fn, "aggregation", aggregation, AGGREGATIONS)
  live = jnp.asarray(mask) != 0
  # Masked entries are replaced before any arithmetic, so NaN / inf there reach
  # neither the loss nor the backward pass (0 · NaN would, in both).
  adv = jnp.where(live, _token_advantages(fn, advantages, shape), 0.0)
  lp = jnp.where(live, _checks.as_float(logprobs), 0.0)
  old = jnp.where(live, _checks.as_float(old_logprobs), 0.0)
  ratio = jnp.exp(jnp.clip(lp - old, -20.0, 20.0))
  clipped = jnp.clip(ratio, 1.0 - clip_low, 1.0 + clip_high)
  per_token = jnp.maximum(-adv * ratio, -adv * clipped)
  loss = aggregate_tokens(per_token, mask, aggregation, normaliser=normaliser)
  m = jnp.asarray(mask, jnp.float32)
  n = jnp.maximum(jnp.sum(m), 1.0)
  was_clipped = (-adv * clipped > -adv * ratio).astype(jnp.float32)
  stats = dict(clip_fraction=jnp.sum(_masked(was_clipped, m)) / n,
               approx_kl=jnp.sum(_masked(jax.lax.stop_gradient(kl_estimate(lp, old, "k3")),
                                         m)) / n)
  return loss, stats


def policy_gradient_loss(logprobs: Array, advantages: Array, mask: Array, *,
                         aggregation: str = "token-mean", normaliser=None) -> Array:
  """Vanilla policy-gradient loss −A_t log π(y_t), aggregated over response tokens.

      L = aggregate(−A ⊙ log π, mask)

  See "Simple statistical gradient-following algorithms for connectionist
  reinforcement learning", Williams 1992
  (https://link.springer.com/article/10.1007/BF00992696).

  Args:
    logprobs: [B, L] log-probs of the sampled tokens.
    advantages: [B, L] or [B] advantages (treated as constants).
    mask: [B, L] response mask. NaN or ±inf at masked positions affect neither the
      loss nor the gradient (0 there).
    aggregation: see `aggregate_tokens`.
    normaliser: see `aggregate_tokens`.

  Returns:
    Scalar float32.
  """
  fn = "policy_gradient_loss"
  logprobs = jnp.asarray(logprobs)
  _checks.check_rank(fn, "logprobs", logprobs, 2, "[B, L]")
  _checks.check_shape(fn, "mask", mask, logprobs.shape, "(same as `logprobs`)")
  _checks.check_choice(fn, "aggregation", aggregation, AGGREGATIONS)
  live = jnp.asarray(mask) != 0
  adv = jax.lax.stop_gradient(_token_advantages(fn, advantages, logprobs.shape))
  adv = jnp.where(live, adv, 0.0)
  lp = jnp.where(live, _checks.as_float(logprobs), 0.0)
  return aggregate_tokens(-adv * lp, mask, aggregation, normaliser=normaliser)


def masked_mean(values: Array, mask: Array, axis: Optional[int] = None) -> Array:
  """Σ m·x / max(Σ m, 1) over `axis` (all axes when None).

  Args:
    values: [...] values.
    mask: same shape, bool or float.
    axis: reduction axis or None.

  Returns:
    The masked mean (0 where the mask is empty); NaN or ±inf at masked entries are
    ignored (also by the gradient).
  """
  x = _checks.as_float(values)
  m = jnp.asarray(mask, x.dtype)
  return jnp.sum(_masked(x, m), axis) / jnp.maximum(jnp.sum(m, axis), 1.0)
