"""Credit assignment for process rewards (PURE) and token-level utilities.

A response is split into K steps; a process reward model scores each step. Step
quantities are `[B, K]` with a bool `step_mask`; token quantities are `[B, L]` with a
response mask. K = 0 steps (or L = 0 tokens) give empty results of the right shape
(for `steps_to_tokens`, [B, L] zeros). The PURE pipeline is

    step rewards --min_form--> r* --steps_to_tokens--> token rewards
                 --(+ verifiable reward on the last token, − β·KL)--> token_returns
                 --rloo/whitening, separators set to 0--> advantages

See "Stop Summation: Min-Form Credit Assignment Is All Process Reward Model Needs for
Reasoning", Cheng et al. 2025 (https://arxiv.org/abs/2504.15275).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import _checks
from rlcore._groups import Groups, safe_div
from rlcore.group import masked_whiten
from rlcore.returns import linear_recurrence

Array = jax.Array


def _steps(fn, step_rewards, step_mask):
  _checks.check_rank(fn, "step_rewards", step_rewards, range(1, 8), "[..., K] (steps last)")
  _checks.check_shape(fn, "step_mask", step_mask, jnp.shape(step_rewards),
                      "(same as `step_rewards`)")
  r = _checks.as_float(step_rewards)
  ok = _checks.as_bool(step_mask) & jnp.isfinite(r)
  return jnp.where(ok, r, 0.0), ok


def min_form(step_rewards: Array, step_mask: Array, *, temperature=0.1) -> Array:
  """Min-form credit assignment for process rewards (PURE).

  Reweights step rewards so that their return-to-go approaches the minimum of the
  remaining step rewards:

      r*_k = softmax_k(−r / T) · r_k     over the valid steps of the response.

  As T → 0 the weights concentrate on the worst step w, so the return-to-go of step
  k is r_w for k ≤ w and 0 after: the paper's definition (see `strict_min_form`).
  The softmax is over the whole response (as the official code), so with finite T
  steps after the worst one still get a little credit. Σ_k r*_k ≈ min_k r_k.

  See "Stop Summation: Min-Form Credit Assignment Is All Process Reward Model
  Needs for Reasoning", Cheng et al. 2025 (https://arxiv.org/abs/2504.15275).

  Args:
    step_rewards: [B, K] (or [..., K]) process reward of each step, e.g.
      p(+) − p(−) in [−1, 1]. NaN marks an unscorable step (treated as masked).
    step_mask: [B, K] True for real steps; rows may be all False.
    temperature: scalar T > 0 (0.1 in the paper; may be traced).

  Returns:
    [B, K] float32 reweighted step rewards; 0 where masked and on empty rows
    ([B, 0] when K = 0).

  Example:
    >>> rlcore.min_form(jnp.array([[.9, .8, -.3, .7]]), jnp.ones((1, 4), bool))
    ≈ [[0, 0, -0.3, 0]]
  """
  fn = "min_form"
  _checks.check_range(fn, "temperature", temperature, 0.0, low_inclusive=False)
  r, ok = _steps(fn, step_rewards, step_mask)
  logits = jnp.where(ok, -r / _checks.as_float(temperature), -jnp.inf)
  top = jnp.max(logits, axis=-1, keepdims=True, initial=-jnp.inf)  # K = 0: -inf
  top = jnp.where(jnp.isfinite(top), top, 0.0)  # empty rows
  e = jnp.where(ok, jnp.exp(logits - jax.lax.stop_gradient(top)), 0.0)
  w = safe_div(e, jnp.sum(e, axis=-1, keepdims=True))
  return w * r


def strict_min_form(step_rewards: Array, step_mask: Array) -> Array:
  """The paper's exact min-form, as step rewards (the T → 0 limit of `min_form`).

      r*_k = r_w · 1[k = w],     w = first argmin over valid steps of r_k

  so that the return-to-go of step k is min(r_k, …, r_n) = r_w for k ≤ w and 0 for
  k > w. This is computed at step level; verl's token-level "strict min-form"
  (a running min over raw token scores that are 0 off step ends) is a different
  quantity and is not reproduced.

  See Cheng et al. 2025 (https://arxiv.org/abs/2504.15275), the definition of
  min-form credit assignment.

  Args:
    step_rewards: [B, K] process reward of each step (NaN = masked).
    step_mask: [B, K] True for real steps; rows may be all False.

  Returns:
    [B, K] float32, one non-zero entry per non-empty row ([B, 0] when K = 0).
  """
  r, ok = _steps("strict_min_form", step_rewards, step_mask)
  if r.shape[-1] == 0:  # no steps: argmin of an empty axis is undefined
    return r
  w = jnp.argmin(jnp.where(ok, r, jnp.inf), axis=-1)
  onehot = jax.nn.one_hot(w, r.shape[-1], dtype=r.dtype) * ok
  return onehot * r


def sum_form(step_rewards: Array, step_mask: Array) -> Array:
  """Sum-form credit (the baseline PURE shows collapsing): r*_k = r_k on valid steps.

  The return-to-go is then Σ_{j ≥ k} r_j, which a policy can inflate by adding
  steps the PRM rates highly (reward hacking).

  See Cheng et al. 2025 (https://arxiv.org/abs/2504.15275).

  Args:
    step_rewards: [B, K] (NaN = masked).
    step_mask: [B, K] bool.

  Returns:
    [B, K] float32, 0 where masked.
  """
  r, _ = _steps("sum_form", step_rewards, step_mask)
  return r


def steps_to_tokens(step_values: Array, step_end_index: Array, step_mask: Array,
                    num_tokens: int) -> Array:
  """Places each step's value on its step's last token; 0 on every other token.

      out[b, step_end_index[b, k]] += step_values[b, k]    for valid (b, k)

  As PURE does with credit-assigned step rewards (Cheng et al. 2025,
  https://arxiv.org/abs/2504.15275).

  Args:
    step_values: [B, K] values (e.g. `min_form` output).
    step_end_index: [B, K] int token index of the last token of each step, in
      [0, num_tokens).
    step_mask: [B, K] bool; masked steps are dropped.
    num_tokens: static int L.

  Returns:
    [B, L] float32 token values.
  """
  fn = "steps_to_tokens"
  _checks.check_rank(fn, "step_values", step_values, 2, "[B, K]")
  _checks.check_positive_int(fn, "num_tokens", num_tokens)
  shape = jnp.shape(step_values)
  _checks.check_shape(fn, "step_end_index", step_end_index, shape, "(same as `step_values`)")
  _checks.check_shape(fn, "step_mask", step_mask, shape, "(same as `step_values`)")
  mask = _checks.as_bool(step_mask)
  idx = jnp.asarray(step_end_index)
  if not jnp.issubdtype(idx.dtype, jnp.integer):
    raise ValueError(f"{fn}: `step_end_index` must be integers, got dtype {idx.dtype}.")
  concrete = _checks.concrete_or_none(idx)
  concrete_mask = _checks.concrete_or_none(mask)
  if concrete is not None and concrete_mask is not None:
    bad = concrete_mask & ((concrete < 0) | (concrete >= num_tokens))
    if np.any(bad):
      raise ValueError(f"{fn}: `step_end_index` of valid steps must lie in "
                       f"[0, {num_tokens}), got {concrete[bad][:5]}.")
  v = jnp.where(mask, _checks.as_float(step_values), 0.0)
  idx = jnp.where(mask, idx, num_tokens)  # out of range: dropped
  rows = jnp.arange(shape[0])[:, None]
  out = jnp.zeros((shape[0], num_tokens), v.dtype)
  return out.at[rows, idx].add(v, mode="drop")


def step_ends_from_separators(separator_mask: Array, response_mask: Array,
                              max_steps: int):
  """Finds step boundaries: every separator token ends a step, and so does the
  last response token (EOS) when it is not a separator, as PURE splits responses
  at "\\n\\n" (Cheng et al. 2025, https://arxiv.org/abs/2504.15275).

  Args:
    separator_mask: [B, L] bool, True on step-separator tokens (e.g. tokens whose
      text ends with "\\n\\n"); only response tokens count.
    response_mask: [B, L] bool, True on response tokens (contiguous).
    max_steps: static int K, the step capacity; steps beyond it are dropped.

  Returns:
    (step_end_index [B, K] int32, step_mask [B, K] bool,
     step_num_tokens [B, K] float32 tokens in each step). With L = 0 tokens every
    step is masked.
  """
  fn = "step_ends_from_separators"
  _checks.check_rank(fn, "separator_mask", separator_mask, 2, "[B, L]")
  _checks.check_shape(fn, "response_mask", response_mask, jnp.shape(separator_mask),
                      "(same as `separator_mask`)")
  _checks.check_positive_int(fn, "max_steps", max_steps)
  resp = _checks.as_bool(response_mask)
  sep = _checks.as_bool(separator_mask) & resp
  b, l = resp.shape
  pos = jnp.arange(l)[None, :]  # [1, L]: no implicit rank promotion
  last = jnp.max(jnp.where(resp, pos, -1), axis=-1, keepdims=True, initial=-1)
  is_end = sep | ((pos == last) & resp)
  rank = jnp.cumsum(is_end, axis=-1) - 1
  slot = jnp.where(is_end, rank, max_steps)  # non-ends are dropped
  rows = jnp.arange(b)[:, None]
  ends = jnp.full((b, max_steps), -1, jnp.int32).at[rows, slot].set(
      jnp.broadcast_to(pos, (b, l)).astype(jnp.int32), mode="drop")
  mask = ends >= 0
  first = jnp.min(jnp.where(resp, pos, l), axis=-1, keepdims=True, initial=l)
  prev_end = jnp.concatenate([first - 1, ends[:, :-1]], axis=-1)
  ntok = jnp.where(mask, ends - prev_end, 0).astype(jnp.float32)
  return jnp.where(mask, ends, 0), mask, ntok


def token_returns(token_rewards: Array, mask: Array, *, gamma=1.0) -> Array:
  """Masked reverse (discounted) cumulative sum over tokens.

      G_t = m_t r_t + γ_t G_{t+1},   γ_t = γ on response tokens, 1 on masked ones;
      output m_t G_t

  Masked tokens neither add reward nor discount and get 0: with a contiguous
  response mask this is the plain return-to-go Σ_{t' ≥ t} γ^{t'−t} r_{t'} of
  PURE (γ = 1; https://arxiv.org/abs/2504.15275) and REINFORCE++
  (https://arxiv.org/abs/2501.03262).

  Args:
    token_rewards: [B, L] per-token rewards.
    mask: [B, L] bool response mask.
    gamma: discount in [0, 1], scalar (may be traced).

  Returns:
    [B, L] float32 returns-to-go, 0 outside the mask.
  """
  fn = "token_returns"
  _checks.check_rank(fn, "token_rewards", token_rewards, 2, "[B, L]")
  _checks.check_shape(fn, "mask", mask, jnp.shape(token_rewards), "(same as `token_rewards`)")
  _checks.check_range(fn, "gamma", gamma, 0.0, 1.0)
  m = _checks.as_bool(mask)
  r = jnp.where(m, _checks.as_float(token_rewards), 0.0)
  g = _checks.concrete_or_none(gamma)
  if g is not None and g.size == 1 and float(g) == 1.0:
    out = jnp.flip(jnp.cumsum(jnp.flip(r, -1), axis=-1), -1)
  else:
    c = jnp.where(m, _checks.as_float(gamma), 1.0)
    out = linear_recurrence(r.T, c.T).T
  return jnp.where(m, out, 0.0)


def broadcast_to_tokens(advantages: Array, response_mask: Array) -> Array:
  """Broadcasts one value per sequence to its response tokens: A_{i,t} = A_i · m_{i,t}.

  Args:
    advantages: [...] per-sequence values ([B] or [P, G]).
    response_mask: [..., L] bool.

  Returns:
    [..., L] float32.
  """
  fn = "broadcast_to_tokens"
  mask_shape, adv_shape = tuple(jnp.shape(response_mask)), tuple(jnp.shape(advantages))
  if len(mask_shape) != len(adv_shape) + 1 or mask_shape[:-1] != adv_shape:
    raise ValueError(f"{fn}: `response_mask` must have shape {adv_shape} + (L,) (leading dims "
                     f"same as `advantages`), got {mask_shape}.")
  return jnp.where(_checks.as_bool(response_mask),
                   _checks.as_float(advantages)[..., None], 0.0)


def rloo_token_baseline(step_rewards: Array, step_num_tokens: Array, step_mask: Array,
                        group_ids: Optional[Array] = None, num_groups: Optional[int] = None,
                        *, response_lengths: Optional[Array] = None,
                        valid: Optional[Array] = None) -> Array:
  """PURE's leave-one-out *token* baseline for process rewards.

      avg_i = Σ_{j ≠ i} OR_j / Σ_{j ≠ i} len_j,     OR_j = Σ_k r*_{jk}
      out_{ik} = r*_{ik} − avg_i · ntok_{ik}

  Each step pays the other samples' average reward per token times its own token
  count, so a response cannot gain by having fewer, longer steps (the bias of the
  per-step baseline). Groups with one valid sample, or whose other samples have no
  tokens, get a zero baseline.

  See Cheng et al. 2025 (https://arxiv.org/abs/2504.15275), official code
  `reward_baseline="token"`.

  Args:
    step_rewards: [P, G, K] dense or [N, K] with `group_ids`: credit-assigned step
      rewards r* (e.g. `min_form` output).
    step_num_tokens: tokens in each step, same shape.
    step_mask: bool, same shape.
    group_ids: optional [N] int.
    num_groups: static int, required with `group_ids`.
    response_lengths: optional [P, G] / [N] response lengths; default Σ_k ntok.
    valid: optional [P, G] / [N] bool; invalid samples are not in any group and get 0,
      as do samples whose traced group id is outside [0, num_groups) under `jit`.

  Returns:
    float32 baseline-subtracted step rewards like `step_rewards`, 0 where masked.
  """
  fn = "rloo_token_baseline"
  r, ok = _steps(fn, step_rewards, step_mask)
  _checks.check_shape(fn, "step_num_tokens", step_num_tokens, r.shape, "(same as `step_rewards`)")
  ntok = jnp.where(ok, _checks.as_float(step_num_tokens), 0.0)
  outcome = jnp.sum(r, axis=-1)
  groups = Groups(fn, "step_rewards (without its step axis)", outcome, group_ids, num_groups)
  if response_lengths is None:
    lengths = jnp.sum(ntok, axis=-1)
  else:
    groups.check_same("response_lengths", response_lengths)
    lengths = _checks.as_float(response_lengths)
  seq_ok = jnp.ones(outcome.shape, bool) if valid is None else _checks.as_bool(valid)
  if valid is not None:
    groups.check_same("valid", valid)
  seq_ok = groups.member(seq_ok)  # out-of-range traced group ids: as invalid
  outcome = jnp.where(seq_ok, outcome, 0.0)
  lengths = jnp.where(seq_ok, lengths, 0.0)
  count = groups.sum(seq_ok.astype(jnp.float32))
  others_reward = groups.sum(outcome) - outcome
  others_len = groups.sum(lengths) - lengths
  avg = jnp.where(count > 1, safe_div(others_reward, others_len), 0.0)
  out = r - avg[..., None] * ntok
  return jnp.where(ok & seq_ok[..., None], out, 0.0)


def pure_advantages(token_rewards: Array, response_mask: Array,
                    separator_mask: Optional[Array] = None, *, kl: Optional[Array] = None,
                    kl_coef=0.0, whiten: bool = True, gamma=1.0, ddof: int = 1,
                    eps=1e-8) -> Array:
  """PURE token advantages: return-to-go of rewards minus KL, separators at 0.

      ρ_t = r_t − β · KL_t,   A_t = Σ_{t' ≥ t} ρ_{t'} (response tokens),
      A_t = 0 on separator tokens,   then optional whitening over the batch's
      response tokens that are not separators.

  `token_rewards` already holds the credit-assigned process rewards on step-end
  tokens (`steps_to_tokens(rloo_token_baseline(min_form(...)))`) and the verifiable
  reward term on the last token.

  See Cheng et al. 2025 (https://arxiv.org/abs/2504.15275); the official code
  identifies separators by "advantage == 0" when whitening, which also drops
  genuine zeros; here they are given explicitly.

  Args:
    token_rewards: [B, L] per-token rewards.
    response_mask: [B, L] bool.
    separator_mask: optional [B, L] bool, True on step-separator tokens.
    kl: optional [B, L] per-token KL estimate (policy vs reference).
    kl_coef: β >= 0.
    whiten: whiten the advantages (as the official code by default).
    gamma: token discount (1 in PURE).
    ddof, eps: whitening settings (see `masked_whiten`).

  Returns:
    [B, L] float32 advantages, 0 outside the response and on separators.
  """
  fn = "pure_advantages"
  _checks.check_rank(fn, "token_rewards", token_rewards, 2, "[B, L]")
  shape = jnp.shape(token_rewards)
  _checks.check_shape(fn, "response_mask", response_mask, shape, "(same as `token_rewards`)")
  _checks.check_range(fn, "kl_coef", kl_coef, 0.0)
  rho = _checks.as_float(token_rewards)
  if kl is not None:
    _checks.check_shape(fn, "kl", kl, shape, "(same as `token_rewards`)")
    rho = rho - _checks.as_float(kl_coef) * _checks.as_float(kl)
  m = _checks.as_bool(response_mask)
  adv = token_returns(rho, m, gamma=gamma)
  keep = m
  if separator_mask is not None:
    _checks.check_shape(fn, "separator_mask", separator_mask, shape, "(same as `token_rewards`)")
    keep = m & ~_checks.as_bool(separator_mask)
  adv = jnp.where(keep, adv, 0.0)
  if whiten:
    adv = masked_whiten(adv, keep, ddof=ddof, eps=eps)
  return adv
