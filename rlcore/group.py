"""Group-relative advantages for LLM-style batches (GRPO and relatives).

Layouts: a dense `[P, G]` batch (P prompts x G samples each; the default) or a
ragged `[N]` batch with `group_ids` in [0, num_groups) and a static `num_groups`.

Shared conventions, documented once here:

* **Unscorable rewards.** A NaN or inf reward, or `valid=False`, marks a sample that
  could not be scored (or is padding). It is left out of every group and batch
  statistic and gets advantage 0. No output is ever NaN.
* **Zero-variance groups** (all rewards equal, e.g. all-correct) get advantage 0.
* **Singleton groups** (one valid sample) get 0: with no other sample there is no
  baseline. `singleton="raw"` reproduces verl, which sets mean 0 and std 1 for them
  so that the raw reward leaks through as the advantage.
* Statistics use float32 whatever the input dtype. std uses `ddof` (default 1, as
  `torch.std` in verl, TRL and the Pref-GRPO code) and `eps` is added to it.
* **Group ids out of range.** Concrete `group_ids` outside [0, num_groups) raise a
  ValueError. Traced ones (under `jit`) cannot be checked; such a sample is treated
  as `valid=False`: it is in no group or batch statistic and gets advantage 0 (not
  the huge value a missing group's zero std would give).
* **Empty batches.** G = 0, P = 0 or N = 0 samples give an empty result of the same
  shape (float32).

Shaping (LASER, PURE, ...) must run *before* these functions: normalisation after
shaping is the method, shaping after normalisation is a different one.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import _checks
from rlcore._groups import Groups, finite_rewards, safe_div, safe_sqrt

Array = jax.Array

SCALES = ("group", "batch", "none")
SINGLETONS = ("zero", "raw")


def _centre(fn, rewards, group_ids, num_groups, valid, ddof, singleton):
  """Shared part: (groups, r, valid, count, mean, std) with singleton handling."""
  groups = Groups(fn, "rewards", rewards, group_ids, num_groups)
  _checks.check_choice(fn, "singleton", singleton, SINGLETONS)
  if not isinstance(ddof, int) or ddof < 0:
    raise ValueError(f"{fn}: `ddof` must be a non-negative Python int, got {ddof!r}.")
  r, ok = finite_rewards(fn, rewards, valid)
  ok = groups.member(ok)  # out-of-range traced group ids: not in any group
  # A zero-variance group gets mean = its common value and std = 0 exactly (see
  # `Groups.moments`), so rounding (seven rewards of 0.1) is not blown up into ±O(1).
  count, mean, std = groups.moments(r, ok, ddof)
  if singleton == "raw":  # verl: a lone sample is centred on 0 and scaled by 1
    lone = count == 1
    mean = jnp.where(lone, 0.0, mean)
    std = jnp.where(lone, 1.0, std)
  return groups, r, ok, count, mean, std


def grpo_advantages(rewards: Array, group_ids: Optional[Array] = None,
                    num_groups: Optional[int] = None, *, scale: str = "group",
                    ddof: int = 1, eps=1e-6, valid: Optional[Array] = None,
                    singleton: str = "zero") -> Array:
  """GRPO group-relative advantages, with group, batch or no std scaling.

      A_i = (r_i − mean_g(r)) / (std + ε)

  where std is the std of the sample's group (`scale="group"`, GRPO), of all valid
  rewards in the batch (`scale="batch"`), or 1 with ε = 0 (`scale="none"`:
  Dr. GRPO, mean-centring only).

  See "DeepSeekMath", Shao et al. 2024 (https://arxiv.org/abs/2402.03300) for GRPO
  and "Understanding R1-Zero-Like Training: A Critical Perspective", Liu et al. 2025
  (https://arxiv.org/abs/2503.20783) for Dr. GRPO. Module docstring: NaN rewards,
  singleton and zero-variance groups.

  Args:
    rewards: [P, G] dense, or [N] with `group_ids`. Scalar reward per sample.
    group_ids: optional [N] int group of each sample.
    num_groups: static int, required with `group_ids`.
    scale: "group", "batch" or "none".
    ddof: static int, delta degrees of freedom of the std (1 = unbiased).
    eps: added to the std (scalar, may be traced).
    valid: optional bool mask, same shape as `rewards`; False = padding.
    singleton: "zero" or "raw" (verl's behaviour; with `scale="batch"` a lone
      sample gets r / (batch std + ε)).

  Returns:
    float32 advantages, same shape as `rewards`.

  Example:
    >>> adv = rlcore.grpo_advantages(jnp.array([[1., 0., 1., 0.]]))
  """
  fn = "grpo_advantages"
  _checks.check_choice(fn, "scale", scale, SCALES)
  _checks.check_range(fn, "eps", eps, 0.0)
  groups, r, ok, count, mean, std = _centre(fn, rewards, group_ids, num_groups, valid, ddof,
                                            singleton)
  centred = jnp.where(ok, r - mean, 0.0)
  if scale == "none":
    return centred
  if scale == "batch":
    n = jnp.sum(ok)
    bmean = jnp.sum(r * ok) / jnp.maximum(n, 1)
    bvar = jnp.sum(jnp.where(ok, r - bmean, 0.0) ** 2) / jnp.maximum(n - ddof, 1)
    std = safe_sqrt(bvar, n > ddof)
  return safe_div(centred, std + eps)


def rloo_advantages(rewards: Array, group_ids: Optional[Array] = None,
                    num_groups: Optional[int] = None, *, valid: Optional[Array] = None,
                    singleton: str = "zero") -> Array:
  """REINFORCE leave-one-out advantages.

      A_i = r_i − (1 / (n − 1)) Σ_{j ≠ i} r_j  =  n / (n − 1) · (r_i − mean_g(r))

  with n the number of valid samples in the group. Singleton groups: see the module
  docstring ("raw" gives A = r as verl's loop implementation).

  See "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from
  Human Feedback in LLMs", Ahmadian et al. 2024 (https://arxiv.org/abs/2402.14740).

  Args:
    rewards: [P, G] dense, or [N] with `group_ids`.
    group_ids: optional [N] int.
    num_groups: static int, required with `group_ids`.
    valid: optional bool mask like `rewards`.
    singleton: "zero" or "raw".

  Returns:
    float32 advantages like `rewards`.
  """
  fn = "rloo_advantages"
  groups, r, ok, count, _, _ = _centre(fn, rewards, group_ids, num_groups, valid, 0, "zero")
  _checks.check_choice(fn, "singleton", singleton, SINGLETONS)
  total = groups.sum(r)
  loo = safe_div(total - r, count - 1.0)
  adv = jnp.where(count > 1, r - loo, r if singleton == "raw" else 0.0)
  return jnp.where(ok, adv, 0.0)


def pass_at_k(n: Array, c: Array, k) -> Array:
  """Unbiased pass@k estimate from n samples of which c are correct.

      pass@k = 1 − C(n − c, k) / C(n, k),     C(a, b) = 0 for a < b

  computed as the product 1 − Π_{i=n−c+1}^{n} (1 − k/i) (float32 relative error
  about c · 1e-7). Where n < k the estimate is undefined and 0 is returned.

  See "Evaluating Large Language Models Trained on Code", Chen et al. 2021
  (https://arxiv.org/abs/2107.03374).

  Args:
    n: [...] number of samples (int or float).
    c: [...] number of correct samples, 0 <= c <= n.
    k: scalar or [...] k >= 1 (may be traced).

  Returns:
    [...] float32 pass@k.
  """
  n = _checks.as_float(n)
  c = _checks.as_float(c)
  k = _checks.as_float(k)
  _checks.check_range("pass_at_k", "k", k, 1.0)
  return jnp.where(n >= k, 1.0 - _binom_ratio(n - c, n, k), 0.0)


def _binom_ratio(a, n, k):
  """C(a, k) / C(n, k) = Π_{i=a+1}^{n} (1 − k / i) for a <= n and k <= n (0 if a < k).

  An exact product of at most n − a factors (a loop as long as the largest group),
  instead of gammaln differences, which lose ~1e-3 relative accuracy in float32.
  """
  a, n, k = jnp.broadcast_arrays(a, n, k)
  terms = n - a

  def body(j, prod):
    factor = 1.0 - k / jnp.maximum(n - j, 1.0)
    return prod * jnp.where(j < terms, jnp.clip(factor, 0.0, 1.0), 1.0)

  steps = jnp.max(terms, initial=0).astype(jnp.int32)
  return jax.lax.fori_loop(0, steps, body, jnp.ones(a.shape, jnp.float32))


def passk_advantages(correct: Array, k, group_ids: Optional[Array] = None,
                     num_groups: Optional[int] = None, *, eps=1e-6,
                     valid: Optional[Array] = None) -> Array:
  """Pass@k training advantages for binary rewards (analytic form).

  For a group of n samples with c correct:

      ρ = 1 − C(n − c, k) / C(n, k),     σ = sqrt(ρ (1 − ρ))
      A_correct = (1 − ρ) / (σ + ε)
      A_wrong   = (1 − ρ − C(n − c − 1, k − 1) / C(n − 1, k − 1)) / (σ + ε)

  Σ_group A = 0 for every c; groups where every k-subset already holds a correct
  sample (c > n − k) and all-wrong groups give 0; k = 1 is GRPO with the population
  std. Groups with fewer than k valid samples give 0. A dense batch with G = 0 gives
  an empty result (k is not compared with G then).

  See "Pass@k Training for Adaptively Balancing Exploration and Exploitation of
  Large Reasoning Models", Chen et al. 2025 (https://arxiv.org/abs/2508.10751).

  Args:
    correct: [P, G] or [N] correctness: bool, or numbers where > 0 means correct
      (0/1 or ±1 rewards); NaN = unscorable.
    k: scalar k >= 1 (may be traced).
    group_ids: optional [N] int.
    num_groups: static int, required with `group_ids`.
    eps: added to σ.
    valid: optional bool mask like `correct`.

  Returns:
    float32 advantages like `correct`.
  """
  fn = "passk_advantages"
  groups = Groups(fn, "correct", correct, group_ids, num_groups)
  _checks.check_range(fn, "k", k, 1.0)
  _checks.check_range(fn, "eps", eps, 0.0)
  x, ok = finite_rewards(fn, jnp.asarray(correct).astype(jnp.float32), valid, "correct")
  ok = groups.member(ok)
  k_value = _checks.concrete_or_none(k)
  g = groups.shape[-1]
  if groups.dense and g > 0 and k_value is not None and np.any(k_value > g):
    raise ValueError(f"{fn}: `k` must be <= the group size G = {groups.shape[-1]}, got {k}.")
  hit = (x > 0) & ok
  n = groups.sum(ok.astype(jnp.float32))
  c = groups.sum(hit.astype(jnp.float32))
  k = _checks.as_float(k)
  rho = pass_at_k(n, c, k)
  sigma = safe_sqrt(rho * (1.0 - rho))
  neg_term = _binom_ratio(n - c - 1.0, n - 1.0, k - 1.0)
  # σ = 0 (c = 0 or ρ = 1): the numerators are 0 too, so 0 rather than NaN when eps = 0.
  a_pos = safe_div(1.0 - rho, sigma + eps)
  a_neg = safe_div(1.0 - rho - neg_term, sigma + eps)
  adv = jnp.where(hit, a_pos, a_neg)
  return jnp.where(ok & (n >= k), adv, 0.0)


def opo_advantages(rewards: Array, lengths: Array, group_ids: Optional[Array] = None,
                   num_groups: Optional[int] = None, *, valid: Optional[Array] = None,
                   singleton: str = "zero") -> Array:
  """OPO advantages: rewards minus the length-weighted group baseline.

      b_g = Σ_i |y_i| r_i / Σ_i |y_i|,     A_i = r_i − b_g

  the variance-optimal baseline when the gradient norm of a sequence grows with its
  length. A group whose lengths sum to 0 falls back to the plain mean.

  See "On-Policy RL with Optimal Reward Baseline", Hao et al. 2025
  (https://arxiv.org/abs/2505.23585).

  Args:
    rewards: [P, G] dense, or [N] with `group_ids`.
    lengths: response lengths |y_i| (tokens), same shape as `rewards`, >= 0.
    group_ids: optional [N] int.
    num_groups: static int, required with `group_ids`.
    valid: optional bool mask like `rewards`.
    singleton: "zero" or "raw" (verl: b = 0 so A = r).

  Returns:
    float32 advantages like `rewards`.
  """
  fn = "opo_advantages"
  groups, r, ok, count, mean, _ = _centre(fn, rewards, group_ids, num_groups, valid, 0,
                                          singleton)
  groups.check_same("lengths", lengths)
  _checks.check_range(fn, "lengths", lengths, 0)
  w = jnp.where(ok, _checks.as_float(lengths), 0.0)
  wsum = groups.sum(w)
  baseline = jnp.where(wsum > 0, safe_div(groups.sum(w * r), wsum), mean)
  if singleton == "raw":
    baseline = jnp.where(count == 1, 0.0, baseline)
  return jnp.where(ok, r - baseline, 0.0)


def gpg_advantages(rewards: Array, group_ids: Optional[Array] = None,
                   num_groups: Optional[int] = None, *, alpha_mode: str = "paper",
                   normalize_std: bool = False, ddof: int = 1, eps=1e-6,
                   valid: Optional[Array] = None) -> Array:
  """GPG advantages: group-centred rewards rescaled by the share of useful samples.

      A_i = α · (r_i − mean_g(r)) / F_norm,     α = B / (B − M)

  B = number of valid samples, M = samples in zero-variance groups (their centred
  reward is 0, so they would dilute the batch-mean gradient). F_norm = 1, or the
  group std + ε with `normalize_std=True`. `alpha_mode="verl"` uses verl's rule
  α = B / #(raw rewards ≠ 0) instead. α = 1 when every group has zero variance.

  See "GPG: A Simple and Strong Reinforcement Learning Baseline for Model
  Reasoning", Chu et al. 2025 (https://arxiv.org/abs/2504.02546).

  Args:
    rewards: [P, G] dense, or [N] with `group_ids`.
    group_ids: optional [N] int.
    num_groups: static int, required with `group_ids`.
    alpha_mode: "paper" or "verl".
    normalize_std: divide by the group std + ε.
    ddof: std degrees of freedom.
    eps: added to the std.
    valid: optional bool mask like `rewards`.

  Returns:
    float32 advantages like `rewards`.
  """
  fn = "gpg_advantages"
  _checks.check_choice(fn, "alpha_mode", alpha_mode, ("paper", "verl"))
  _checks.check_range(fn, "eps", eps, 0.0)
  groups, r, ok, count, mean, std = _centre(fn, rewards, group_ids, num_groups, valid, ddof,
                                            "zero")
  b = jnp.sum(ok).astype(jnp.float32)
  if alpha_mode == "paper":
    # Zero-variance groups (singletons included) have std exactly 0: `Groups.moments`.
    useful = b - jnp.sum(ok & (std == 0))
  else:
    useful = jnp.sum(ok & (r != 0)).astype(jnp.float32)
  alpha = jnp.where(useful > 0, b / jnp.maximum(useful, 1.0), 1.0)
  centred = jnp.where(ok, r - mean, 0.0)
  if normalize_std:
    centred = safe_div(centred, std + eps)
  return alpha * centred


def masked_whiten(x: Array, mask: Array, *, ddof: int = 1, eps=1e-8) -> Array:
  """Whitens x over the masked entries of the whole batch; 0 outside the mask.

      μ = Σ m x / Σ m,   σ² = Σ m (x − μ)² / (Σ m − ddof),   out = m (x − μ) / sqrt(σ² + ε)

  verl's `masked_whiten` with `unbiased=True` is ddof=1, ε = 1e-8. With fewer than
  ddof + 1 masked entries the output is 0 (verl raises instead).

  Args:
    x: [...] values.
    mask: [...] bool or 0/1, same shape.
    ddof: static int.
    eps: added to the variance.

  Returns:
    [...] float32.
  """
  fn = "masked_whiten"
  _checks.check_shape(fn, "mask", mask, jnp.shape(x), "(same as `x`)")
  if not isinstance(ddof, int) or ddof < 0:
    raise ValueError(f"{fn}: `ddof` must be a non-negative Python int, got {ddof!r}.")
  _checks.check_range(fn, "eps", eps, 0.0)
  x = _checks.as_float(x)
  m = _checks.as_bool(mask)
  n = jnp.sum(m).astype(x.dtype)
  # Shift by one masked value (as `Groups.moments`): constant x then has deviations
  # and variance exactly 0 and whitens to 0, also with eps = 0 (no 0 · inf).
  shift = jnp.max(jnp.where(m, x, -jnp.inf), initial=-jnp.inf)  # size 0: -inf
  xs = jnp.where(m, x - jnp.where(jnp.isfinite(shift), shift, 0.0), 0.0)
  dev = jnp.where(m, xs - jnp.sum(xs) / jnp.maximum(n, 1.0), 0.0)
  var = jnp.sum(dev * dev) / jnp.maximum(n - ddof, 1.0)
  live = var > 0
  out = jnp.where(live, dev * jax.lax.rsqrt(jnp.where(live, var + eps, 1.0)), 0.0)
  return jnp.where(m & (n > ddof), out, 0.0)


def reinforce_pp_advantages(token_rewards: Array, response_mask: Array, *, gamma=1.0,
                            ddof: int = 1, eps=1e-8) -> Array:
  """REINFORCE++ advantages: token returns whitened over the whole batch.

      G_t = Σ_{t' ≥ t} γ^{t'−t} r_{t'}  (response tokens only),   A = whiten_batch(G)

  KL-in-reward goes into `token_rewards` (r_t = score·[t = last] − β·KL_t). No
  group baseline: the batch statistics are the baseline.

  See "REINFORCE++: A Simple and Efficient Approach for Aligning Large Language
  Models", Hu 2025 (https://arxiv.org/abs/2501.03262).

  Args:
    token_rewards: [B, L] per-token rewards (outcome reward on the last token).
    response_mask: [B, L] bool, True on response tokens.
    gamma: token-level discount in [0, 1].
    ddof, eps: whitening settings (see `masked_whiten`).

  Returns:
    [B, L] float32 advantages, 0 outside the mask.
  """
  from rlcore.credit import token_returns  # same layer; avoids an import cycle
  fn = "reinforce_pp_advantages"
  _checks.check_range(fn, "gamma", gamma, 0.0, 1.0)
  _checks.check_rank(fn, "token_rewards", token_rewards, 2, "[B, L]")
  _checks.check_shape(fn, "response_mask", response_mask, jnp.shape(token_rewards),
                      "(same as `token_rewards`)")
  returns = token_returns(token_rewards, response_mask, gamma=gamma)
  return masked_whiten(returns, response_mask, ddof=ddof, eps=eps)


def reinforce_pp_baseline_advantages(rewards: Array, response_mask: Array,
                                     group_ids: Optional[Array] = None,
                                     num_groups: Optional[int] = None, *, ddof: int = 1,
                                     eps=1e-8, valid: Optional[Array] = None,
                                     singleton: str = "zero") -> Array:
  """REINFORCE++-baseline: subtract the group mean, then whiten over the batch.

      a_i = r_i − mean_g(r),     A_{i,t} = whiten_batch(a_i broadcast to tokens)_t

  Whitening is token-weighted over all response tokens of the batch (as verl).

  See "REINFORCE++", Hu 2025 (https://arxiv.org/abs/2501.03262).

  Args:
    rewards: [P, G] dense, or [N] with `group_ids`. Sequence rewards.
    response_mask: [P, G, L] or [N, L] bool, True on response tokens.
    group_ids: optional [N] int.
    num_groups: static int, required with `group_ids`.
    ddof, eps: whitening settings (see `masked_whiten`).
    valid: optional bool mask like `rewards`.
    singleton: "zero" or "raw" (verl: the raw reward).

  Returns:
    float32 token advantages like `response_mask`, 0 outside the mask and on
    invalid samples.
  """
  fn = "reinforce_pp_baseline_advantages"
  groups, r, ok, _, mean, _ = _centre(fn, rewards, group_ids, num_groups, valid, 0, singleton)
  _checks.check_rank(fn, "response_mask", response_mask, len(groups.shape) + 1,
                     "(the layout of `rewards` plus a token axis)")
  _checks.check_shape(fn, "response_mask", response_mask,
                      groups.shape + tuple(jnp.shape(response_mask)[-1:]),
                      "(the shape of `rewards` plus a token axis)")
  a = jnp.where(ok, r - mean, 0.0)
  mask = _checks.as_bool(response_mask) & ok[..., None]
  tokens = jnp.broadcast_to(a[..., None], mask.shape)
  return masked_whiten(tokens, mask, ddof=ddof, eps=eps)


def remax_advantages(rewards: Array, greedy_rewards: Array, *,
                     valid: Optional[Array] = None) -> Array:
  """ReMax advantages: reward minus the reward of the greedy response.

      A_i = r(x, y_i) − r(x, ȳ),     ȳ = greedy decode of the same prompt

  See "ReMax: A Simple, Effective, and Efficient Reinforcement Learning Method for
  Aligning Large Language Models", Li et al. 2023 (https://arxiv.org/abs/2310.10505).

  Args:
    rewards: [...] rewards of sampled responses.
    greedy_rewards: [...] reward of the greedy response of each sample's prompt,
      same shape (or broadcastable, e.g. [P, 1] against [P, G]).
    valid: optional bool mask like `rewards`.

  Returns:
    float32 advantages like `rewards`; 0 where either reward is NaN or invalid.
  """
  fn = "remax_advantages"
  _checks.check_broadcastable(fn, "greedy_rewards", greedy_rewards, jnp.shape(rewards))
  r, ok = finite_rewards(fn, rewards, valid)
  g = jnp.broadcast_to(_checks.as_float(greedy_rewards), r.shape)
  ok = ok & jnp.isfinite(g)
  return jnp.where(ok, r - jnp.where(ok, g, 0.0), 0.0)


def score_preferences(scores: Array, *, margin=0.0, temperature=None) -> Array:
  """Pairwise outcomes from pointwise scores, with a tie margin (or soft).

      hard: o_ij = 1[s_i − s_j > m] + ½ · 1[|s_i − s_j| ≤ m]
      soft: o_ij = sigmoid((s_i − s_j) / τ)

  A library extension of Pref-GRPO: it turns a pointwise reward model into the
  pairwise judgements that `win_rate_rewards` averages. With m = 0 and distinct
  scores the win rates are pure ranks. Pairs involving a non-finite score (NaN, inf)
  are ties (½), as Pref-GRPO treats an unparsable judgement.

  See "Pref-GRPO", Wang et al. 2025 (https://arxiv.org/abs/2508.20751).

  Args:
    scores: [..., G] scores of a group.
    margin: scalar >= 0; differences within it are ties (hard mode).
    temperature: optional scalar > 0 for soft outcomes (then `margin` is unused).

  Returns:
    [..., G, G] float32 outcomes, o_ij = P(i beats j).
  """
  fn = "score_preferences"
  _checks.check_rank(fn, "scores", scores, range(1, 8), "[..., G]")
  _checks.check_range(fn, "margin", margin, 0.0)
  s = _checks.as_float(scores)
  diff = s[..., :, None] - s[..., None, :]
  if temperature is None:
    m = _checks.as_float(margin)
    out = jnp.where(diff > m, 1.0, 0.0) + jnp.where(jnp.abs(diff) <= m, 0.5, 0.0)
  else:
    _checks.check_range(fn, "temperature", temperature, 0.0, low_inclusive=False)
    out = jax.nn.sigmoid(diff / _checks.as_float(temperature))
  return jnp.where(jnp.isfinite(diff), out, 0.5)


def win_rate_rewards(preferences: Array, *, valid: Optional[Array] = None,
                     judged: str = "both") -> Array:
  """Pref-GRPO rewards: each sample's win rate against the rest of its group.

      w_i = (1 / (n − 1)) Σ_{j ≠ i, valid} ō_ij,     ō_ij = (o_ij + 1 − o_ji) / 2

  Judgements are symmetrised, so a judge's position bias averages out when both
  orders were judged (`judged="both"`). With `judged="upper"` only o_ij for i < j is
  read and o_ji = 1 − o_ij (each pair judged once with i shown first, as the
  official code does). NaN judgements count as ties (½). Σ_i w_i = n/2, so the
  group mean is ½ and GRPO on win rates only sees the ordering; all ties give all ½
  and hence zero advantage. Samples with no valid opponent, and invalid samples,
  get ½.

  See "Pref-GRPO: Pairwise Preference Reward-based GRPO for Stable Text-to-Image
  Reinforcement Learning", Wang et al. 2025 (https://arxiv.org/abs/2508.20751).

  Args:
    preferences: [..., G, G] o_ij = P(sample i beats sample j) in [0, 1].
    valid: optional [..., G] bool; False samples are not in the group.
    judged: "both" or "upper".

  Returns:
    [..., G] float32 win rates in [0, 1].

  Example:
    >>> w = rlcore.win_rate_rewards(rlcore.score_preferences(s, margin=0.01))
    >>> adv = rlcore.grpo_advantages(w)
  """
  fn = "win_rate_rewards"
  _checks.check_choice(fn, "judged", judged, ("both", "upper"))
  _checks.check_rank(fn, "preferences", preferences, range(2, 8), "[..., G, G]")
  g = jnp.shape(preferences)[-1]
  if jnp.shape(preferences)[-2] != g:
    raise ValueError(f"{fn}: `preferences` must be [..., G, G], got shape "
                     f"{jnp.shape(preferences)}.")
  o = _checks.as_float(preferences)
  o = jnp.where(jnp.isfinite(o), o, 0.5)
  if judged == "upper":
    upper = jnp.broadcast_to(jnp.triu(jnp.ones((g, g), bool), 1), o.shape)
    o = jnp.where(upper, o, 1.0 - jnp.swapaxes(o, -1, -2))
  sym = 0.5 * (o + 1.0 - jnp.swapaxes(o, -1, -2))
  if valid is None:
    ok = jnp.ones(jnp.shape(preferences)[:-1], bool)
  else:
    _checks.check_shape(fn, "valid", valid, jnp.shape(preferences)[:-1], "[..., G]")
    ok = _checks.as_bool(valid)
  eye = jnp.broadcast_to(jnp.eye(g, dtype=bool), o.shape)  # no implicit rank promotion
  pair = ok[..., :, None] & ok[..., None, :] & ~eye
  n_opp = jnp.sum(pair, axis=-1)
  wins = jnp.sum(jnp.where(pair, sym, 0.0), axis=-1)
  return jnp.where(n_opp > 0, wins / jnp.maximum(n_opp, 1), 0.5)
