"""Occupancy-measure regularisation (ORPO) as pure JAX functions.

ORPO (Laidlaw, Singhal & Dragan, "Correlated Proxies: A New Definition and Improved
Mitigation for Reward Hacking", ICLR 2025, https://arxiv.org/abs/2403.03185) keeps a
policy π optimising a proxy reward R̃ close to a reference policy π_ref in occupancy
measure rather than in action distribution:

    max_π  J(π, R̃) − λ · sqrt(χ²(μ_π ‖ μ_ref)),      χ²(μ‖ν) = E_ν[(μ/ν − 1)²]

A discriminator d(s, a) trained with the logistic loss (π's samples labelled 1,
π_ref's 0) converges to d* = log μ_π/μ_ref, and each step's reward is augmented by a
per-step penalty derived from d (`occupancy_penalty`, `augment_rewards`):

    kl:        d                                 (E_μπ[d*] = KL(μ_π ‖ μ_ref))
    chi2:      e^d − 1                           (E_μπ[e^d* − 1] = χ²(μ_π ‖ μ_ref))
    sqrt_chi2: (e^d − 1) / sqrt(χ̂²)              (χ̂²: trimmed batch mean of e^d − 1)
    tv:        sign(d)

The action-distribution baseline penalises divergences between π(·|s) and π_ref(·|s)
(`categorical_kl`, `categorical_chi2`, `gaussian_kl`, `gaussian_chi2`). The paper's
definition of an r-correlated proxy and its coefficient are `proxy_true_correlation`
and `coefficient_from_correlation`.

For an LLM (a contextual bandit: the state is the prompt x, the action the whole
response y) the state occupancy is the prompt distribution, shared by π and π_ref, so
μ_π/μ_ref = π(y|x)/π_ref(y|x) and the occupancy χ² is the prompt average of the χ²
between per-prompt response distributions. The log ratio is then exact, no
discriminator needed: `sequence_log_ratio` sums the token log-ratios of a response and
its output goes into `occupancy_penalty` in place of the discriminator logits (the GRPO
agent's `occupancy.*` keys).

The tomato gridworld with exact occupancy measures is `rlcore.envs.tomato`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import _checks
from rlcore.losses import masked_mean

Array = jax.Array

PENALTIES = ("kl", "chi2", "sqrt_chi2", "tv")
COEFFICIENT_CONVENTIONS = ("paper", "bound")


def _masked(fn: str, name: str, x, valid, valid_name: str) -> tuple[Array, Array]:
  x = _checks.as_float(x)
  if valid is None:
    return x, jnp.ones(x.shape, bool)
  _checks.check_shape(fn, valid_name, valid, np.shape(x), f"(the shape of `{name}`)")
  return x, _checks.as_bool(valid)


def discriminator_loss(policy_logits: Array, reference_logits: Array,
                       policy_valid: Array | None = None,
                       reference_valid: Array | None = None) -> Array:
  """Logistic loss of an occupancy discriminator: π's samples labelled 1, π_ref's 0.

      L(d) = mean_{(s,a) ~ π} softplus(−d(s,a)) + mean_{(s,a) ~ π_ref} softplus(d(s,a))

  Its minimiser over all functions is d* = log μ_π(s,a)/μ_ref(s,a) (for the empirical
  visitation of the two batches: each sample counts equally, undiscounted, as in the
  official code). See https://arxiv.org/abs/2403.03185.

  Args:
    policy_logits: [...] discriminator outputs d(s, a) on the current policy's samples.
    reference_logits: [...] outputs on the reference policy's samples (any shape).
    policy_valid: optional bool mask shaped like `policy_logits` (padding: False).
    reference_valid: optional bool mask shaped like `reference_logits`.

  Returns:
    [] float32 loss (a batch with no valid sample contributes 0).
  """
  fn = "discriminator_loss"
  d_pi, m_pi = _masked(fn, "policy_logits", policy_logits, policy_valid, "policy_valid")
  d_ref, m_ref = _masked(fn, "reference_logits", reference_logits, reference_valid,
                         "reference_valid")
  return (masked_mean(jax.nn.softplus(-d_pi), m_pi)
          + masked_mean(jax.nn.softplus(d_ref), m_ref))


def trimmed_mean(x: Array, valid: Array | None = None, trim_frac=0.01) -> Array:
  """Mean of the valid entries of `x` after dropping floor(trim_frac · n) from each end.

  n counts the valid entries. When floor(trim_frac · n) is 0 (n < 1/trim_frac) nothing
  is dropped: the plain mean. (The official ORPO code slices `[k:-k]`, which is empty
  for k = 0, so its estimate is NaN below 100 samples and its √χ² regulariser silently
  turns off; https://arxiv.org/abs/2403.03185.)

  Args:
    x: [...] values.
    valid: optional bool mask shaped like `x`.
    trim_frac: fraction in [0, 0.5) dropped at each end (static or traced).

  Returns:
    [] float32 trimmed mean; 0 when no entry is valid; NaN when a valid entry is NaN.
  """
  fn = "trimmed_mean"
  x, m = _masked(fn, "x", x, valid, "valid")
  _checks.check_rank(fn, "trim_frac", trim_frac, 0, "(a scalar)")
  _checks.check_range(fn, "trim_frac", trim_frac, 0.0, 0.5, high_inclusive=False)
  flat, keep = x.reshape(-1), m.reshape(-1)
  n = jnp.sum(keep)
  # Invalid entries sort to the end (+inf), so the valid ones are positions [0, n).
  ordered = jnp.sort(jnp.where(keep, flat, jnp.inf))
  k = jnp.floor(trim_frac * n).astype(jnp.int32)
  i = jnp.arange(flat.shape[0])
  kept = (i >= k) & (i < n - k)
  mean = masked_mean(ordered, kept)     # the +inf padding is never kept
  # A NaN sorts after the +inf padding, so it would drop out: the mean is NaN instead.
  return jnp.where(jnp.any(keep & jnp.isnan(flat)), jnp.nan, mean)


def occupancy_penalty(logits: Array, valid: Array | None = None, kind: str = "sqrt_chi2",
                      *, trim_frac=0.01, max_logit=50.0) -> tuple[Array, dict]:
  """Per-step occupancy "distance" from discriminator logits d ≈ log μ_π/μ_ref.

      kl:        d
      chi2:      e^d − 1
      sqrt_chi2: (e^d − 1) / sqrt(χ̂²) if χ̂² > 0, else e^d − 1
      tv:        sign(d)

  χ̂² = `trimmed_mean`(e^d − 1) over the valid entries (the batch must come from the
  current policy π), under `stop_gradient`. It uses every sample when the batch is
  too small to trim, so a small batch still regularises (the official code's estimate
  is empty below 100 samples and its penalty silently becomes 0). d is capped at
  `max_logit` before the exponential, so the distances are finite for finite d; a
  NaN d stays NaN (never zeroed), and with sqrt_chi2 it makes χ̂² and so every
  distance of the batch NaN. See https://arxiv.org/abs/2403.03185
  (`ORPO._*_discriminator_rewards` in the official code).

  Args:
    logits: [T, B] (any shape) discriminator outputs on the current policy's steps.
    valid: optional bool mask shaped like `logits` (padding: False; its distance is 0).
    kind: "kl", "chi2", "sqrt_chi2" or "tv" (static).
    trim_frac: the trimmed mean's fraction dropped at each end (default 1%, as the code).
    max_logit: cap on d before exp (static or traced; e^50 ≈ 5e21 fits float32).

  Returns:
    (distance shaped like `logits`, stats {"kl": E[d], "chi2": E[e^d − 1],
     "chi2_trimmed": χ̂²}; means over the valid entries).
  """
  fn = "occupancy_penalty"
  _checks.check_choice(fn, "kind", kind, PENALTIES)
  d, m = _masked(fn, "logits", logits, valid, "valid")
  _checks.check_rank(fn, "max_logit", max_logit, 0, "(a scalar)")
  ratio_minus_one = jnp.expm1(jnp.minimum(d, max_logit))
  chi2_trimmed = jax.lax.stop_gradient(trimmed_mean(ratio_minus_one, m, trim_frac))
  stats = {"kl": masked_mean(d, m), "chi2": masked_mean(ratio_minus_one, m),
           "chi2_trimmed": chi2_trimmed}
  if kind == "kl":
    distance = d
  elif kind == "chi2":
    distance = ratio_minus_one
  elif kind == "tv":
    distance = jnp.sign(d)
  else:
    scale = jnp.where(chi2_trimmed > 0, jax.lax.rsqrt(jnp.maximum(chi2_trimmed, 1e-30)), 1.0)
    # A NaN estimate makes every distance NaN (loud), not the unscaled chi2 distance.
    distance = ratio_minus_one * jnp.where(jnp.isnan(chi2_trimmed), jnp.nan, scale)
  return jnp.where(m, distance, 0.0), stats


def augment_rewards(proxy_rewards: Array, distance: Array, coeff, clip=jnp.inf) -> Array:
  """r' = r̃ + clip(−λ · distance, −clip, clip): the regularised per-step reward.

  λ = `coeff` may be an array broadcasting against the rewards (a sweep under vmap);
  a negative λ regularises *away* from the reference. With λ > 0, ±inf distances
  become ∓clip (or stay infinite when clip = inf); NaN stays NaN, and so does λ = 0
  times an infinite distance: nothing is silently zeroed. (`occupancy_penalty`'s
  distances are finite for finite logits.)
  See https://arxiv.org/abs/2403.03185.

  Args:
    proxy_rewards: [T, B] proxy rewards r̃.
    distance: [T, B] per-step distance from `occupancy_penalty`.
    coeff: λ, a scalar or an array broadcasting to [T, B].
    clip: bound on |λ · distance| (> 0; default no clip).

  Returns:
    [T, B] float32 augmented rewards.
  """
  fn = "augment_rewards"
  r = _checks.as_float(proxy_rewards)
  _checks.check_shape(fn, "distance", distance, r.shape, "(the shape of `proxy_rewards`)")
  _checks.check_broadcastable(fn, "coeff", coeff, r.shape)
  _checks.check_range(fn, "clip", clip, 0.0, None, low_inclusive=False)
  penalty = -_checks.as_float(coeff) * _checks.as_float(distance)
  return r + jnp.clip(penalty, -clip, clip)


def sequence_log_ratio(policy_logprobs: Array, reference_logprobs: Array,
                       mask: Array) -> Array:
  """The exact log occupancy ratio of a response under a contextual bandit.

      d(x, y) = log π(y|x) − log π_ref(y|x)
              = Σ_t m_t (log π(y_t | x, y_<t) − log π_ref(y_t | x, y_<t))

  With prompts x drawn from the same distribution under both policies,
  μ_π(x, y)/μ_ref(x, y) = π(y|x)/π_ref(y|x), so d is what ORPO's discriminator would
  converge to (https://arxiv.org/abs/2403.03185, the LLM case): pass it to
  `occupancy_penalty` as its `logits`. The log-probs must be those of the policy that
  sampled y (E_π[e^d − 1] = χ²(π(·|x) ‖ π_ref(·|x)) holds for samples of π only).

  Args:
    policy_logprobs: [B, N] log π of each response token (any value where masked).
    reference_logprobs: [B, N] log π_ref of the same tokens.
    mask: [B, N] response-token mask (bool or 0/1; padding 0).

  Returns:
    [B] float32 sequence log-ratios (0 for an empty response).
  """
  fn = "sequence_log_ratio"
  _checks.check_rank(fn, "policy_logprobs", policy_logprobs, 2, "([B, N])")
  shape = np.shape(policy_logprobs)
  _checks.check_shape(fn, "reference_logprobs", reference_logprobs, shape,
                      "(the shape of `policy_logprobs`)")
  _checks.check_shape(fn, "mask", mask, shape, "(the shape of `policy_logprobs`)")
  diff = _checks.as_float(policy_logprobs) - _checks.as_float(reference_logprobs)
  # `where`, not a product: padding may hold -inf or NaN log-probs.
  return jnp.sum(jnp.where(_checks.as_bool(mask), diff, 0.0), -1)


def categorical_kl(p_logits: Array, q_logits: Array) -> Array:
  """KL(p ‖ q) = Σ_a p_a (log p_a − log q_a) between categoricals given by logits.

  For the action-distribution baseline of https://arxiv.org/abs/2403.03185.

  Args:
    p_logits: [..., A] logits of p (the current policy).
    q_logits: [..., A] logits of q (the reference policy).

  Returns:
    [...] float32 divergences.
  """
  _checks.check_shape("categorical_kl", "q_logits", q_logits, np.shape(p_logits),
                      "(the shape of `p_logits`)")
  log_p = jax.nn.log_softmax(_checks.as_float(p_logits), -1)
  log_q = jax.nn.log_softmax(_checks.as_float(q_logits), -1)
  return jnp.sum(jnp.exp(log_p) * (log_p - log_q), -1)


def categorical_chi2(p_logits: Array, q_logits: Array) -> Array:
  """χ²(p ‖ q) = Σ_a p_a² / q_a − 1 between categoricals given by logits.

  Computed as Σ_a exp(2 log p_a − log q_a) − 1 in log space. For the action-distribution
  baseline of https://arxiv.org/abs/2403.03185.

  Args:
    p_logits: [..., A] logits of p.
    q_logits: [..., A] logits of q.

  Returns:
    [...] float32 divergences (≥ 0; inf where q_a underflows and p_a does not).
  """
  _checks.check_shape("categorical_chi2", "q_logits", q_logits, np.shape(p_logits),
                      "(the shape of `p_logits`)")
  log_p = jax.nn.log_softmax(_checks.as_float(p_logits), -1)
  log_q = jax.nn.log_softmax(_checks.as_float(q_logits), -1)
  return jnp.maximum(jnp.sum(jnp.exp(2.0 * log_p - log_q), -1) - 1.0, 0.0)


def _gaussian_args(fn, mu1, std1, mu2, std2):
  shape = np.shape(mu1)
  for name, x in (("std1", std1), ("mu2", mu2), ("std2", std2)):
    _checks.check_shape(fn, name, x, shape, "(the shape of `mu1`)")
  return tuple(_checks.as_float(x) for x in (mu1, std1, mu2, std2))


def gaussian_kl(mu1: Array, std1: Array, mu2: Array, std2: Array) -> Array:
  """KL(N(μ1, σ1²) ‖ N(μ2, σ2²)) of diagonal Gaussians, summed over the last axis.

      Σ_i log(σ2/σ1) + (σ1² + (μ1 − μ2)²) / (2σ2²) − 1/2

  For the action-distribution baseline of https://arxiv.org/abs/2403.03185.

  Args:
    mu1, std1: [..., D] mean and standard deviation of p (std > 0).
    mu2, std2: [..., D] of q.

  Returns:
    [...] float32 divergences.
  """
  mu1, std1, mu2, std2 = _gaussian_args("gaussian_kl", mu1, std1, mu2, std2)
  per_dim = (jnp.log(std2 / std1) + (std1 ** 2 + (mu1 - mu2) ** 2) / (2.0 * std2 ** 2)
             - 0.5)
  return jnp.sum(per_dim, -1)


def gaussian_chi2(mu1: Array, std1: Array, mu2: Array, std2: Array) -> Array:
  """χ²(N(μ1, σ1²) ‖ N(μ2, σ2²)) of diagonal Gaussians (a product over dimensions).

      1 + χ²_i = σ2² / (σ1 sqrt(2σ2² − σ1²)) · exp((μ1 − μ2)² / (2σ2² − σ1²))
      χ² = Π_i (1 + χ²_i) − 1,   finite only where 2σ2² > σ1² in every dimension

  Elsewhere the divergence is infinite and +inf is returned (the official code then
  falls back to KL; here the caller chooses). Computed in log space. For the
  action-distribution baseline of https://arxiv.org/abs/2403.03185.

  Args:
    mu1, std1: [..., D] mean and standard deviation of p (std > 0).
    mu2, std2: [..., D] of q.

  Returns:
    [...] float32 divergences (≥ 0 or +inf).
  """
  mu1, std1, mu2, std2 = _gaussian_args("gaussian_chi2", mu1, std1, mu2, std2)
  gap = 2.0 * std2 ** 2 - std1 ** 2
  ok = gap > 0
  safe = jnp.where(ok, gap, 1.0)
  log_terms = (2.0 * jnp.log(std2) - jnp.log(std1) - 0.5 * jnp.log(safe)
               + (mu1 - mu2) ** 2 / safe)
  finite = jnp.all(ok, -1)
  value = jnp.expm1(jnp.sum(jnp.where(ok, log_terms, 0.0), -1))
  return jnp.where(finite, jnp.maximum(value, 0.0), jnp.inf)


def proxy_true_correlation(proxy: Array, true: Array, weights: Array) -> Array:
  """The correlation r of a proxy reward with the true reward under an occupancy measure.

      r = E_μ[(R̃ − E_μR̃)(R − E_μR)] / (σ_R̃ σ_R)

  with μ the reference policy's occupancy over state-action pairs (the paper's
  definition of an r-correlated proxy; https://arxiv.org/abs/2403.03185).

  Args:
    proxy: [N] proxy reward of each state-action pair (any shape, flattened).
    true: [N] true reward, shaped like `proxy`.
    weights: [N] occupancy μ_ref (non-negative; normalised here).

  Returns:
    [] float32 correlation in [−1, 1] (NaN if either reward is constant under μ).
  """
  fn = "proxy_true_correlation"
  shape = np.shape(proxy)
  _checks.check_shape(fn, "true", true, shape, "(the shape of `proxy`)")
  _checks.check_shape(fn, "weights", weights, shape, "(the shape of `proxy`)")
  _checks.check_range(fn, "weights", weights, 0.0)
  w = _checks.as_float(weights)
  w = w / jnp.sum(w)
  x, y = _checks.as_float(proxy), _checks.as_float(true)
  x, y = x - jnp.sum(w * x), y - jnp.sum(w * y)
  return jnp.sum(w * x * y) / jnp.sqrt(jnp.sum(w * x * x) * jnp.sum(w * y * y))


def coefficient_from_correlation(r, proxy_std, convention: str = "paper") -> Array:
  """The regularisation coefficient λ of √χ² ORPO from the proxy's correlation r.

      "paper": λ = σ_R̃ · sqrt(1 − r²)            (as quoted from the final paper)
      "bound": λ = σ_R̃ · sqrt(1 − r²) / r        (maximises the Cauchy–Schwarz lower
                                                   bound on the true-return gain)

  [unverified] The exact constant of the paper's Theorem 5.1 was not available to us
  (https://arxiv.org/abs/2403.03185); "bound" is derived in the library's design
  document. In practice λ is swept in units of σ_R̃.

  Args:
    r: correlation in (0, 1] (array; "bound" needs r > 0).
    proxy_std: σ_R̃ ≥ 0 under the reference occupancy (array).
    convention: "paper" or "bound" (static).

  Returns:
    λ, broadcast from `r` and `proxy_std` (float32).
  """
  fn = "coefficient_from_correlation"
  _checks.check_choice(fn, "convention", convention, COEFFICIENT_CONVENTIONS)
  _checks.check_range(fn, "r", r, -1.0, 1.0)
  _checks.check_range(fn, "proxy_std", proxy_std, 0.0)
  r, s = _checks.as_float(r), _checks.as_float(proxy_std)
  lam = s * jnp.sqrt(jnp.maximum(1.0 - r * r, 0.0))
  if convention == "bound":
    _checks.check_range(fn, "r", r, 0.0, 1.0, low_inclusive=False)
    lam = lam / r
  return lam
