"""Numpy references for the tests of `rlcore`'s transforms, shared by the test files.

Each `ref_<name>` is written from the paper's (or the docstring's) equation with explicit
Python loops over samples, groups, steps and tokens, and is independent of `rlcore`'s
code: this module imports numpy and the standard library only, never `rlcore`. Most
convert their inputs to float64 (the returns and potential-shaping ones compute in the
inputs' dtype). The tests compare `rlcore` against these under `jax.jit` and
`jax.jit(jax.vmap(...))` (see `tests/helpers.py`).

Sections follow the `rlcore` module each family mirrors: returns, group, credit,
LASER / length rewards, potential shaping, losses.
"""

import itertools
import math
from fractions import Fraction

import numpy as np


# ---------------------------------------------------------------------------------------
# returns (rlcore/returns.py): forward sums where the definition is a sum
# ---------------------------------------------------------------------------------------


def ref_discounted_returns(r, term, trunc, gamma, next_values=None):
  """G_t = Σ_k γ^k r_{t+k} up to the episode's end, + bootstrap at a cut or the end."""
  t_len = r.shape[0]
  nv = np.zeros_like(r) if next_values is None else next_values
  g = np.broadcast_to(gamma, r.shape)
  out = np.zeros(r.shape)
  for idx in np.ndindex(*r.shape[1:]):
    for t in range(t_len):
      acc, disc = 0.0, 1.0
      for k in range(t, t_len):
        acc += disc * r[(k,) + idx]
        if term[(k,) + idx]:
          break
        if trunc[(k,) + idx] or k == t_len - 1:
          acc += disc * g[(k,) + idx] * nv[(k,) + idx]
          break
        disc *= g[(k,) + idx]
      out[(t,) + idx] = acc
  return out


def ref_n_step_returns(r, nv, term, trunc, gamma, n):
  t_len = r.shape[0]
  g = np.broadcast_to(gamma, r.shape)
  out = np.zeros(r.shape)
  for idx in np.ndindex(*r.shape[1:]):
    for t in range(t_len):
      acc, disc = 0.0, 1.0
      for k in range(t, min(t + n, t_len)):
        acc += disc * r[(k,) + idx]
        if term[(k,) + idx]:
          break
        if trunc[(k,) + idx] or k == min(t + n, t_len) - 1:
          acc += disc * g[(k,) + idx] * nv[(k,) + idx]
          break
        disc *= g[(k,) + idx]
      out[(t,) + idx] = acc
  return out


def ref_gae(r, values, next_values, term, trunc, gamma, lam):
  """A_t = Σ_k (Π_{j<k} γ_j λ_j c_j) δ_{t+k}, summed forward until a cut."""
  t_len = r.shape[0]
  g = np.broadcast_to(gamma, r.shape)
  l = np.broadcast_to(lam, r.shape)
  delta = r + g * (1 - term) * next_values - values
  out = np.zeros(r.shape)
  for idx in np.ndindex(*r.shape[1:]):
    for t in range(t_len):
      acc, w = 0.0, 1.0
      for k in range(t, t_len):
        acc += w * delta[(k,) + idx]
        if term[(k,) + idx] or trunc[(k,) + idx]:
          break
        w *= g[(k,) + idx] * l[(k,) + idx]
      out[(t,) + idx] = acc
  return out


def ref_lambda_returns(r, next_values, term, trunc, gamma, lam):
  t_len = r.shape[0]
  g = np.broadcast_to(gamma, r.shape)
  l = np.broadcast_to(lam, r.shape)
  out = np.zeros(r.shape)
  for idx in np.ndindex(*r.shape[1:]):
    acc = 0.0
    for t in reversed(range(t_len)):
      i = (t,) + idx
      cut = trunc[i] or t == t_len - 1
      cont = next_values[i] if cut else (1 - l[i]) * next_values[i] + l[i] * acc
      acc = r[i] + g[i] * (0.0 if term[i] else cont)
      out[i] = acc
  return out


def ref_linear_recurrence(a, c):
  """y_t = a_t + c_t y_{t+1}, y_T = 0, along the leading (time) axis."""
  a = np.asarray(a, np.float64)
  c = np.asarray(c, np.float64)
  out = np.zeros(a.shape)
  for idx in np.ndindex(*a.shape[1:]):
    y = 0.0
    for t in reversed(range(a.shape[0])):
      y = a[(t,) + idx] + c[(t,) + idx] * y
      out[(t,) + idx] = y
  return out


# ---------------------------------------------------------------------------------------
# group (rlcore/group.py): GRPO and its relatives, loops over groups and pairs
# ---------------------------------------------------------------------------------------


def _group_members(shape, group_ids, num_groups):
  """Flat indices of each group: rows of a dense [P, G] batch, or ids == g."""
  if group_ids is None:
    p, g = shape
    return [list(range(i * g, (i + 1) * g)) for i in range(p)]
  ids = np.asarray(group_ids).ravel()
  return [[i for i in range(len(ids)) if ids[i] == k] for k in range(num_groups)]


def _finite_valid(rewards, valid):
  r = np.asarray(rewards, np.float64).ravel().copy()
  ok = np.isfinite(r)
  if valid is not None:
    ok &= np.asarray(valid).astype(bool).ravel()
  r[~ok] = 0.0
  return r, ok


def _std(xs, ddof):
  n = len(xs)
  if n <= ddof:
    return 0.0
  mean = sum(xs) / n
  return math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - ddof))


def _div(num, den):
  return num / den if den != 0 else 0.0


def ref_grpo(rewards, group_ids=None, num_groups=None, *, scale="group", ddof=1, eps=1e-6,
             valid=None, singleton="zero"):
  r, ok = _finite_valid(rewards, valid)
  out = np.zeros_like(r)
  batch_std = _std([r[i] for i in range(len(r)) if ok[i]], ddof)
  for members in _group_members(np.shape(rewards), group_ids, num_groups):
    members = [i for i in members if ok[i]]
    xs = [r[i] for i in members]
    if not xs:
      continue
    if len(xs) == 1 and singleton == "raw":  # verl: mean 0, std 1
      mean, std = 0.0, 1.0
    elif max(xs) == min(xs):  # zero variance, singletons included: advantage 0
      continue
    else:
      mean, std = sum(xs) / len(xs), _std(xs, ddof)
    den = {"group": std + eps, "batch": batch_std + eps, "none": 1.0}[scale]
    for i in members:
      out[i] = _div(r[i] - mean, den)
  return out.reshape(np.shape(rewards))


def ref_rloo(rewards, group_ids=None, num_groups=None, *, valid=None, singleton="zero"):
  r, ok = _finite_valid(rewards, valid)
  out = np.zeros_like(r)
  for members in _group_members(np.shape(rewards), group_ids, num_groups):
    members = [i for i in members if ok[i]]
    if len(members) == 1:
      out[members[0]] = r[members[0]] if singleton == "raw" else 0.0
      continue
    for i in members:
      others = [r[j] for j in members if j != i]
      out[i] = r[i] - sum(others) / len(others)
  return out.reshape(np.shape(rewards))


def _comb(a, b):
  return math.comb(a, b) if 0 <= b <= a else 0


def ref_pass_at_k(n, c, k):
  n, c, k = np.broadcast_arrays(np.asarray(n), np.asarray(c), np.asarray(k))
  out = np.zeros(n.shape)
  for idx in np.ndindex(n.shape):
    ni, ci, ki = int(n[idx]), int(c[idx]), int(k[idx])
    if ni >= ki:
      out[idx] = 1.0 - _comb(ni - ci, ki) / _comb(ni, ki)
  return out


def ref_pass_at_k_enumerated(n, c, k):
  """pass@k by its definition: the fraction of k-subsets of n answers (c correct) that
  hold a correct one; 0 when n < k."""
  if n < k:
    return 0.0
  items = [1] * c + [0] * (n - c)
  subsets = list(itertools.combinations(range(n), k))
  return sum(any(items[i] for i in s) for s in subsets) / len(subsets)


def ref_passk(correct, k, group_ids=None, num_groups=None, *, eps=1e-6, valid=None):
  """Brute force over k-subsets: the subset reward is max(correct); a response's
  advantage is the mean over the subsets holding it of (R_S − ρ) / (σ + ε), with ρ and
  σ the mean and population std of R_S over all k-subsets of the group."""
  x, ok = _finite_valid(correct, valid)
  out = np.zeros_like(x)
  k = int(k)
  for members in _group_members(np.shape(correct), group_ids, num_groups):
    members = [i for i in members if ok[i]]
    if len(members) < k:
      continue
    subsets = list(itertools.combinations(members, k))
    rs = [float(any(x[j] > 0 for j in s)) for s in subsets]
    rho = sum(rs) / len(rs)
    sigma = math.sqrt(sum((v - rho) ** 2 for v in rs) / len(rs))
    for i in members:
      held = [v for s, v in zip(subsets, rs) if i in s]
      out[i] = _div(sum(held) / len(held) - rho, sigma + eps)
  return out.reshape(np.shape(correct))


def ref_opo(rewards, lengths, group_ids=None, num_groups=None, *, valid=None,
            singleton="zero"):
  r, ok = _finite_valid(rewards, valid)
  lens = np.asarray(lengths, np.float64).ravel()
  out = np.zeros_like(r)
  for members in _group_members(np.shape(rewards), group_ids, num_groups):
    members = [i for i in members if ok[i]]
    if not members:
      continue
    if len(members) == 1 and singleton == "raw":
      baseline = 0.0
    else:
      total = sum(lens[i] for i in members)
      if total > 0:
        baseline = sum(lens[i] * r[i] for i in members) / total
      else:
        baseline = sum(r[i] for i in members) / len(members)
    for i in members:
      out[i] = r[i] - baseline
  return out.reshape(np.shape(rewards))


def ref_gpg(rewards, group_ids=None, num_groups=None, *, alpha_mode="paper",
            normalize_std=False, ddof=1, eps=1e-6, valid=None):
  r, ok = _finite_valid(rewards, valid)
  out = np.zeros_like(r)
  b = int(ok.sum())
  flat_samples = 0
  for members in _group_members(np.shape(rewards), group_ids, num_groups):
    members = [i for i in members if ok[i]]
    xs = [r[i] for i in members]
    if not xs:
      continue
    if max(xs) == min(xs):
      flat_samples += len(xs)
      continue
    mean, std = sum(xs) / len(xs), _std(xs, ddof)
    for i in members:
      out[i] = _div(r[i] - mean, std + eps) if normalize_std else r[i] - mean
  if alpha_mode == "paper":
    useful = b - flat_samples
  else:
    useful = sum(1 for i in range(len(r)) if ok[i] and r[i] != 0)
  alpha = b / useful if useful > 0 else 1.0
  return (alpha * out).reshape(np.shape(rewards))


def ref_masked_whiten(x, mask, *, ddof=1, eps=1e-8):
  x = np.asarray(x, np.float64)
  m = np.asarray(mask).astype(bool)
  vals = [x[i] for i in np.ndindex(x.shape) if m[i]]
  out = np.zeros(x.shape)
  n = len(vals)
  if n <= ddof or max(vals) == min(vals):
    return out
  mean = sum(vals) / n
  var = sum((v - mean) ** 2 for v in vals) / (n - ddof)
  for i in np.ndindex(x.shape):
    if m[i]:
      out[i] = (x[i] - mean) / math.sqrt(var + eps)
  return out


def ref_reinforce_pp(token_rewards, response_mask, *, gamma=1.0, ddof=1, eps=1e-8):
  return ref_masked_whiten(ref_token_returns(token_rewards, response_mask, gamma),
                           response_mask, ddof=ddof, eps=eps)


def ref_reinforce_pp_baseline(rewards, response_mask, group_ids=None, num_groups=None, *,
                              ddof=1, eps=1e-8, valid=None, singleton="zero"):
  r, ok = _finite_valid(rewards, valid)
  a = np.zeros_like(r)
  for members in _group_members(np.shape(rewards), group_ids, num_groups):
    members = [i for i in members if ok[i]]
    xs = [r[i] for i in members]
    if not xs:
      continue
    if len(xs) == 1:
      a[members[0]] = xs[0] if singleton == "raw" else 0.0
      continue
    mean = xs[0] if max(xs) == min(xs) else sum(xs) / len(xs)
    for i in members:
      a[i] = r[i] - mean
  m = np.asarray(response_mask).astype(bool)
  length = m.shape[-1]
  m = m.reshape(-1, length) & ok[:, None]
  tokens = np.repeat(a[:, None], length, axis=1)
  return ref_masked_whiten(tokens, m, ddof=ddof, eps=eps).reshape(np.shape(response_mask))


def ref_remax(rewards, greedy_rewards, *, valid=None):
  r = np.asarray(rewards, np.float64)
  g = np.broadcast_to(np.asarray(greedy_rewards, np.float64), r.shape)
  v = np.ones(r.shape, bool) if valid is None else np.asarray(valid).astype(bool)
  out = np.zeros(r.shape)
  for i in np.ndindex(r.shape):
    if v[i] and np.isfinite(r[i]) and np.isfinite(g[i]):
      out[i] = r[i] - g[i]
  return out


def ref_score_preferences(scores, *, margin=0.0, temperature=None):
  s = np.asarray(scores, np.float64)
  g = s.shape[-1]
  flat = s.reshape(-1, g)
  out = np.zeros((flat.shape[0], g, g))
  for b in range(flat.shape[0]):
    for i in range(g):
      for j in range(g):
        d = flat[b, i] - flat[b, j]
        if not np.isfinite(d):
          out[b, i, j] = 0.5
        elif temperature is None:
          out[b, i, j] = 1.0 if d > margin else (0.5 if abs(d) <= margin else 0.0)
        else:
          out[b, i, j] = 1.0 / (1.0 + math.exp(-d / temperature))
  return out.reshape(s.shape + (g,))


def ref_win_rate(preferences, *, valid=None, judged="both"):
  o = np.asarray(preferences, np.float64)
  g = o.shape[-1]
  flat = o.reshape(-1, g, g)
  ok = (np.ones(flat.shape[:2], bool) if valid is None
        else np.asarray(valid).astype(bool).reshape(-1, g))
  out = np.full(flat.shape[:2], 0.5)
  for b in range(flat.shape[0]):

    def o_(i, j, b=b):
      v = flat[b, i, j]
      return v if np.isfinite(v) else 0.5

    for i in range(g):
      if not ok[b, i]:
        continue
      scores = []
      for j in range(g):
        if j == i or not ok[b, j]:
          continue
        if judged == "upper":
          scores.append(o_(i, j) if i < j else 1.0 - o_(j, i))
        else:
          scores.append(0.5 * (o_(i, j) + 1.0 - o_(j, i)))
      if scores:
        out[b, i] = sum(scores) / len(scores)
  return out.reshape(o.shape[:-1])


# ---------------------------------------------------------------------------------------
# credit (rlcore/credit.py): PURE min-form credit assignment and token utilities
# ---------------------------------------------------------------------------------------


def _rows(x):
  x = np.asarray(x)
  return x.reshape(-1, x.shape[-1])


def ref_min_form(step_rewards, step_mask, temperature=0.1):
  r = _rows(np.asarray(step_rewards, np.float64))
  m = _rows(np.asarray(step_mask)).astype(bool)
  out = np.zeros(r.shape)
  for b in range(r.shape[0]):
    valid = [k for k in range(r.shape[1]) if m[b, k] and np.isfinite(r[b, k])]
    if not valid:
      continue
    logits = {k: -r[b, k] / temperature for k in valid}
    top = max(logits.values())
    e = {k: np.exp(logits[k] - top) for k in valid}
    z = sum(e.values())
    for k in valid:
      out[b, k] = e[k] / z * r[b, k]
  return out.reshape(np.shape(step_rewards))


def ref_strict_min_form(step_rewards, step_mask):
  r = _rows(np.asarray(step_rewards, np.float64))
  m = _rows(np.asarray(step_mask)).astype(bool)
  out = np.zeros(r.shape)
  for b in range(r.shape[0]):
    best = None
    for k in range(r.shape[1]):
      if m[b, k] and np.isfinite(r[b, k]) and (best is None or r[b, k] < r[b, best]):
        best = k
    if best is not None:
      out[b, best] = r[b, best]
  return out.reshape(np.shape(step_rewards))


def ref_sum_form(step_rewards, step_mask):
  r = _rows(np.asarray(step_rewards, np.float64))
  m = _rows(np.asarray(step_mask)).astype(bool)
  out = np.zeros(r.shape)
  for b in range(r.shape[0]):
    for k in range(r.shape[1]):
      if m[b, k] and np.isfinite(r[b, k]):
        out[b, k] = r[b, k]
  return out.reshape(np.shape(step_rewards))


def ref_steps_to_tokens(step_values, step_end_index, step_mask, num_tokens):
  b_, k_ = np.shape(step_values)
  out = np.zeros((b_, num_tokens))
  for b in range(b_):
    for k in range(k_):
      if step_mask[b, k]:
        out[b, int(step_end_index[b, k])] += step_values[b, k]
  return out


def ref_step_ends(separator_mask, response_mask, max_steps):
  b_, l_ = np.shape(separator_mask)
  ends = np.zeros((b_, max_steps), np.int64)
  mask = np.zeros((b_, max_steps), bool)
  ntok = np.zeros((b_, max_steps))
  for b in range(b_):
    pos = [t for t in range(l_) if response_mask[b, t]]
    if not pos:
      continue
    first, last = pos[0], pos[-1]
    all_ends = [t for t in pos if separator_mask[b, t] or t == last]
    prev = first - 1
    for k, e in enumerate(all_ends[:max_steps]):
      ends[b, k] = e
      mask[b, k] = True
      ntok[b, k] = e - prev
      prev = e
  return ends, mask, ntok


def ref_token_returns(token_rewards, mask, gamma=1.0):
  """Return-to-go over the response tokens; masked tokens neither add nor discount."""
  rew = np.asarray(token_rewards, np.float64)
  m = np.asarray(mask).astype(bool)
  out = np.zeros(rew.shape)
  for b in range(rew.shape[0]):
    ret = 0.0
    for t in reversed(range(rew.shape[1])):
      if m[b, t]:
        ret = rew[b, t] + gamma * ret
        out[b, t] = ret
  return out


def ref_broadcast_to_tokens(advantages, response_mask):
  adv = np.asarray(advantages, np.float64)
  out = np.zeros(np.shape(response_mask))
  for idx in np.ndindex(adv.shape):
    for t in range(out.shape[-1]):
      if response_mask[idx + (t,)]:
        out[idx + (t,)] = adv[idx]
  return out


def ref_rloo_token_baseline(step_rewards, step_num_tokens, step_mask, group_ids=None,
                            num_groups=None, response_lengths=None, valid=None):
  """Leave-one-out token baseline; dense inputs use the prompt index as group id."""
  del num_groups
  r = np.asarray(step_rewards, np.float64)
  shape = r.shape
  r = r.reshape(-1, shape[-1])
  ntok = np.asarray(step_num_tokens, np.float64).reshape(r.shape)
  m = np.asarray(step_mask, bool).reshape(r.shape)
  n = r.shape[0]
  if group_ids is None:
    gids = np.repeat(np.arange(shape[0]), shape[1])
  else:
    gids = np.asarray(group_ids)
  ok_seq = np.ones(n, bool) if valid is None else np.asarray(valid, bool).reshape(n)
  outcome, length = np.zeros(n), np.zeros(n)
  for i in range(n):
    for k in range(r.shape[1]):
      if m[i, k] and np.isfinite(r[i, k]):
        outcome[i] += r[i, k]
        length[i] += ntok[i, k]
  if response_lengths is not None:
    length = np.asarray(response_lengths, np.float64).reshape(n)
  out = np.zeros(r.shape)
  for i in range(n):
    if not ok_seq[i]:
      continue
    others = [j for j in range(n) if j != i and gids[j] == gids[i] and ok_seq[j]]
    den = sum(length[j] for j in others)
    avg = sum(outcome[j] for j in others) / den if (others and den != 0) else 0.0
    for k in range(r.shape[1]):
      if m[i, k] and np.isfinite(r[i, k]):
        out[i, k] = r[i, k] - avg * ntok[i, k]
  return out.reshape(shape)


def ref_pure_advantages(token_rewards, response_mask, separator_mask=None, kl=None,
                        kl_coef=0.0, whiten=True, gamma=1.0, ddof=1, eps=1e-8):
  rho = np.asarray(token_rewards, np.float64).copy()
  if kl is not None:
    rho = rho - kl_coef * np.asarray(kl, np.float64)
  m = np.asarray(response_mask, bool)
  adv = ref_token_returns(rho, m, gamma)
  keep = m.copy()
  if separator_mask is not None:
    keep &= ~np.asarray(separator_mask, bool)
  adv = np.where(keep, adv, 0.0)
  if whiten:  # over the kept tokens only: separators are left out
    adv = ref_masked_whiten(adv, keep, ddof=ddof, eps=eps)
  return adv


# ---------------------------------------------------------------------------------------
# LASER and length rewards (rlcore/shaping/laser.py, rlcore/shaping/length.py)
# ---------------------------------------------------------------------------------------


# Bucket indices and the fallback target length of LASER-D, as documented in
# rlcore.shaping.laser (restated here: this module does not import rlcore).
HARD, MEDIUM, EASY = 0, 1, 2
FALLBACK = -1  # target length meaning "the longest response of the current batch"


def _bcast(x, shape):
  return np.broadcast_to(np.asarray(x, np.float64), shape)


def _dense_group_ids(shape, group_ids):
  """Per-sample group ids: the row index of a dense [P, G] batch, or `group_ids`."""
  if group_ids is None:
    return np.repeat(np.arange(shape[0]), shape[1]).reshape(shape)
  return np.asarray(group_ids)


def ref_truncation(scores, lengths, max_length, rho=0.0):
  s = np.asarray(scores, np.float64)
  lmax = _bcast(max_length, s.shape)
  out = np.zeros(s.shape)
  for idx in np.ndindex(s.shape):
    out[idx] = s[idx] if lengths[idx] <= lmax[idx] else rho
  return out


def ref_l1_exact(scores, lengths, target_lengths, alpha=3e-4):
  s = np.asarray(scores, np.float64)
  t = _bcast(target_lengths, s.shape)
  out = np.zeros(s.shape)
  for idx in np.ndindex(s.shape):
    out[idx] = s[idx] - alpha * abs(float(lengths[idx]) - t[idx])
  return out


def ref_l1_max(correct, lengths, target_lengths, alpha=3e-4, delta=0.5):
  shape = np.shape(lengths)
  t = _bcast(target_lengths, shape)
  out = np.zeros(shape)
  for idx in np.ndindex(shape):
    if correct[idx]:
      out[idx] = min(1.0, max(0.0, alpha * (t[idx] - float(lengths[idx])) + delta))
  return out


def ref_kimi(scores, correct, lengths, group_ids=None, num_groups=None, coef=1.0, valid=None):
  del num_groups
  s = np.asarray(scores, np.float64)
  gids = _dense_group_ids(s.shape, group_ids)
  ok = np.isfinite(s) if valid is None else (np.asarray(valid, bool) & np.isfinite(s))
  out = s.copy()
  for idx in np.ndindex(s.shape):
    if not ok[idx]:
      continue
    members = [float(lengths[j]) for j in np.ndindex(s.shape) if gids[j] == gids[idx] and ok[j]]
    lo, hi = min(members), max(members)
    lam = 0.0 if hi == lo else 0.5 - (float(lengths[idx]) - lo) / (hi - lo)
    out[idx] += coef * (lam if correct[idx] else min(0.0, lam))
  return out


def ref_group_length_penalty(scores, correct, lengths, group_ids=None, num_groups=None,
                             alpha=0.2, ddof=0, eps=1e-7, valid=None):
  del num_groups
  s = np.asarray(scores, np.float64)
  gids = _dense_group_ids(s.shape, group_ids)
  ok = np.isfinite(s) if valid is None else (np.asarray(valid, bool) & np.isfinite(s))
  good = ok & np.asarray(correct, bool)
  out = s.copy()
  for idx in np.ndindex(s.shape):
    if not good[idx]:
      continue
    xs = [float(lengths[j]) for j in np.ndindex(s.shape) if gids[j] == gids[idx] and good[j]]
    n = len(xs)
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - ddof)) if n > ddof else 0.0
    z = (float(lengths[idx]) - mean) / (std + eps)
    out[idx] = s[idx] * (1.0 - alpha / (1.0 + math.exp(-z)))
  return out


def ref_dapo(scores, lengths, max_length, buffer_length, penalty_factor=1.0):
  s = np.asarray(scores, np.float64)
  out = np.zeros(s.shape)
  for idx in np.ndindex(s.shape):
    n = float(lengths[idx])
    if n <= max_length - buffer_length:
      r = 0.0
    elif n <= max_length:
      r = ((max_length - buffer_length) - n) / buffer_length
    else:
      r = -1.0
    out[idx] = s[idx] + penalty_factor * r
  return out


def ref_cosine(correct, lengths, max_length, r0_correct=2.0, rl_correct=1.0, r0_wrong=-10.0,
               rl_wrong=0.0, r_exceed=-10.0, margin=16):
  shape = np.shape(lengths)
  out = np.zeros(shape)
  for idx in np.ndindex(shape):
    t = float(lengths[idx])
    if t + margin >= max_length:
      out[idx] = r_exceed
      continue
    r0, rl = (r0_correct, rl_correct) if correct[idx] else (r0_wrong, rl_wrong)
    out[idx] = rl + 0.5 * (r0 - rl) * (1.0 + math.cos(math.pi * t / max_length))
  return out


def ref_laser(scores, correct, lengths, target_length, alpha=0.5, mode="reward", valid=None):
  s = np.asarray(scores, np.float64)
  target = np.broadcast_to(np.asarray(target_length, np.float64), s.shape)
  ok = np.ones(s.shape, bool) if valid is None else np.asarray(valid, bool)
  out = s.copy()
  for idx in np.ndindex(s.shape):
    if not (ok[idx] and np.isfinite(s[idx]) and correct[idx]):
      continue
    short = lengths[idx] <= target[idx]
    if mode == "reward" and short:
      out[idx] += alpha
    elif mode == "penalty" and not short:
      out[idx] -= alpha
    elif mode == "hybrid":
      out[idx] += alpha if short else -alpha
  return out


def _bucket_of(c, n):
  """Training convention of the official code: acc >= 2/3 high, >= 1/3 medium."""
  if n == 0:
    return EASY  # empty group: 3c >= 2n holds trivially (not exercised by random inputs)
  acc = c / n
  if acc >= 2 / 3:
    return EASY
  if acc >= 1 / 3:
    return MEDIUM
  return HARD


def ref_difficulty(correct, group_ids=None, num_groups=None, valid=None):
  del num_groups
  correct = np.asarray(correct, bool)
  gids = _dense_group_ids(correct.shape, group_ids).reshape(-1)
  ok = np.ones(correct.shape, bool) if valid is None else np.asarray(valid, bool)
  c_flat, ok_flat = correct.reshape(-1), ok.reshape(-1)
  out = np.zeros(c_flat.shape, np.int64)
  for i in range(len(c_flat)):
    members = [j for j in range(len(c_flat)) if gids[j] == gids[i] and ok_flat[j]]
    out[i] = _bucket_of(sum(bool(c_flat[j]) for j in members), len(members))
  return out.reshape(correct.shape)


def ref_thresholds(lower, upper, interval):
  values = [lower]
  nxt = interval if lower < interval else lower + interval
  while nxt <= upper:
    if nxt != lower:
      values.append(nxt)
    nxt += interval
  return values


def ref_monitor(lengths, correct, thresholds, valid=None):
  """Returns (covered [3, NL], total [3])."""
  m_, k_ = np.shape(lengths)
  ok = np.ones((m_, k_), bool) if valid is None else np.asarray(valid, bool)
  covered = np.zeros((3, len(thresholds)))
  total = np.zeros(3)
  for m in range(m_):
    members = [k for k in range(k_) if ok[m, k]]
    d = _bucket_of(sum(bool(correct[m, k]) for k in members), len(members))
    for k in members:
      total[d] += 1
      for j, l in enumerate(thresholds):
        if lengths[m, k] <= l:
          covered[d, j] += 1
  return covered, total


def ref_target_lengths(covered, total, rollouts, thresholds, round_method="floor",
                       expected_n_correct=1):
  """`_choose_target_length` of the official code, with exact (Fraction) coverage."""
  out = []
  for d in (HARD, MEDIUM, EASY):
    if d == HARD:
      lower_n = 1
    elif d == MEDIUM:
      lower_n = (math.floor if round_method == "floor" else math.ceil)(rollouts * 1 / 3)
    else:
      lower_n = (math.floor if round_method == "floor" else math.ceil)(rollouts * 2 / 3)
    target = None
    for j, l in enumerate(thresholds):
      if total[d] == 0:
        continue
      ratio = Fraction(int(covered[d][j]), int(total[d]))
      n_correct = math.floor(ratio * lower_n) if round_method == "floor" else ratio * lower_n
      if n_correct >= expected_n_correct and (target is None or l < target):
        target = l
    out.append(FALLBACK if target is None else target)
  return np.array(out)


def ref_laser_d_apply(scores, targets, correct, lengths, group_ids=None, valid=None,
                      well_formed=None, repetitive=None, alpha=0.5, mode="reward",
                      explore=False):
  s = np.asarray(scores, np.float64)
  ok = np.ones(s.shape, bool) if valid is None else np.asarray(valid, bool)
  ok = ok & np.isfinite(s)
  bucket = ref_difficulty(correct, group_ids, valid=ok)
  batch_max = max([lengths[idx] for idx in np.ndindex(s.shape) if ok[idx]], default=0.0)
  out = s.copy()
  for idx in np.ndindex(s.shape):
    if not ok[idx]:
      continue
    t = targets[bucket[idx]]
    t = batch_max if t < 0 else t
    if not explore:
      out[idx] = ref_laser(s[idx], np.asarray(correct[idx]), np.asarray(lengths[idx]), t,
                           alpha, mode)
      continue
    wf = True if well_formed is None else bool(well_formed[idx])
    rep = False if repetitive is None else bool(repetitive[idx])
    if correct[idx] and lengths[idx] <= t:
      out[idx] += alpha
    elif not correct[idx] and wf and not rep and lengths[idx] > t:
      out[idx] += alpha
  return out


# ---------------------------------------------------------------------------------------
# potential shaping (rlcore/shaping/potential.py)
# ---------------------------------------------------------------------------------------


def ref_potential_based(rewards, phi, phi_next, terminated, truncated, gamma,
                        bootstraps_on_truncation=True, valid=None):
  out = np.zeros(np.shape(rewards))
  g = np.broadcast_to(gamma, np.shape(rewards))
  for idx in np.ndindex(*np.shape(rewards)):
    ends = terminated[idx] or (truncated[idx] and not bootstraps_on_truncation)
    nxt = 0.0 if ends else phi_next[idx]
    out[idx] = rewards[idx] + g[idx] * nxt - phi[idx]
    if valid is not None and not valid[idx]:
      out[idx] = 0.0
  return out


# ---------------------------------------------------------------------------------------
# losses (rlcore/losses.py): token aggregation, clipped surrogate, KL estimators
# ---------------------------------------------------------------------------------------


def ref_aggregate_tokens(values, mask, mode, normaliser=None):
  """verl's `loss_agg_mode` over a [B, L] batch, one sequence and one token at a time.

      token-mean:           Σ_{b,t} m·x / max(Σ_{b,t} m, 1)
      seq-mean-token-sum:   (1/B) Σ_b Σ_t m·x
      seq-mean-token-mean:  (1/B) Σ_b Σ_t m·x / Σ_t m   (empty rows add 0, still count in B)
      constant:             Σ_{b,t} m·x / (B · C)       (Dr. GRPO; C = `normaliser`, default L)
  """
  x = np.asarray(values, np.float64)
  m = np.asarray(mask).astype(bool)
  b_, l_ = x.shape
  sums, counts = [], []
  for b in range(b_):
    s, n = 0.0, 0
    for t in range(l_):
      if m[b, t]:
        s += x[b, t]
        n += 1
    sums.append(s)
    counts.append(n)
  if mode == "token-mean":
    return sum(sums) / max(sum(counts), 1)
  if mode == "seq-mean-token-sum":
    return sum(sums) / b_
  if mode == "seq-mean-token-mean":
    return sum(s / n for s, n in zip(sums, counts) if n > 0) / b_
  if mode == "constant":
    return sum(sums) / (b_ * (l_ if normaliser is None else normaliser))
  raise ValueError(f"unknown mode {mode!r}")


def ref_ppo_clip_loss(logprobs, old_logprobs, advantages, mask, clip_low, clip_high,
                      aggregation):
  """PPO / DAPO clipped surrogate per token, aggregated by `ref_aggregate_tokens`:
  l_t = max(-A_t ρ_t, -A_t clip(ρ_t, 1 - ε_low, 1 + ε_high)), ρ_t = exp(lp_t - old_t)."""
  lp = np.asarray(logprobs, np.float64)
  old = np.asarray(old_logprobs, np.float64)
  adv = np.asarray(advantages, np.float64)
  per_token = np.zeros(lp.shape)
  for idx in np.ndindex(lp.shape):
    ratio = math.exp(lp[idx] - old[idx])
    clipped = min(max(ratio, 1.0 - clip_low), 1.0 + clip_high)
    per_token[idx] = max(-adv[idx] * ratio, -adv[idx] * clipped)
  return ref_aggregate_tokens(per_token, mask, aggregation)


def ref_kl_estimate(logprobs, ref_logprobs, kind):
  """Schulman's per-token estimators of KL(π ‖ π_ref) from samples of π, with
  d = log π_ref − log π: k1 = −d, k2 = d² / 2, k3 = exp(d) − d − 1."""
  lp = np.asarray(logprobs, np.float64)
  lq = np.asarray(ref_logprobs, np.float64)
  out = np.zeros(lp.shape)
  for idx in np.ndindex(lp.shape):
    d = lq[idx] - lp[idx]
    out[idx] = {"k1": -d, "k2": 0.5 * d * d, "k3": math.exp(d) - d - 1.0}[kind]
  return out


# ---------------------------------------------------------------------------------------
# bi-level reward alignment (rlcore/bilevel.py)
# ---------------------------------------------------------------------------------------


def ref_barfi_reward(kernel, bias, features, r_p, r_aux, learn_primary_weight=False):
  """r_φ = f0(s) + r_p + f2(s) · r_aux with f = features @ kernel + bias, per element.

  With `learn_primary_weight`: f0(s) + f1(s) · r_p + f2(s) · r_aux.
  """
  out = np.zeros(np.shape(r_p))
  for idx in np.ndindex(*np.shape(r_p)):
    f = [sum(features[idx][i] * kernel[i][j] for i in range(kernel.shape[0])) + bias[j]
         for j in range(3)]
    out[idx] = f[0] + (f[1] if learn_primary_weight else 1.0) * r_p[idx] + f[2] * r_aux[idx]
  return out


def ref_barfi_policy_objective(log_probs, actions, rewards, discount, mask, entropy_coef):
  """mean_b (1/T) Σ_t m_t log π(a_t) Σ_{k≥t} γ^{k−t} m_k r_k + β Σ m H / Σ m."""
  t_len, b_len, _ = log_probs.shape
  score = 0.0
  for b in range(b_len):
    for t in range(t_len):
      g = sum(discount ** (k - t) * mask[k, b] * rewards[k, b] for k in range(t, t_len))
      score += mask[t, b] * log_probs[t, b, actions[t, b]] * g / t_len
  ent = sum(mask[t, b] * -sum(math.exp(l) * l for l in log_probs[t, b])
            for t in range(t_len) for b in range(b_len))
  return score / b_len + entropy_coef * ent / max(float(np.sum(mask)), 1.0)


# ---------------------------------------------------------------------------------------
# occupancy-measure regularisation (rlcore/occupancy.py)
# ---------------------------------------------------------------------------------------


def _softplus(x):
  return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def ref_discriminator_loss(policy_logits, reference_logits, policy_valid, reference_valid):
  """mean over valid policy samples of softplus(−d) + mean over valid reference of softplus(d)."""
  def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0
  pol = [_softplus(-float(d)) for d, v in zip(np.ravel(policy_logits), np.ravel(policy_valid))
         if v]
  ref = [_softplus(float(d)) for d, v in zip(np.ravel(reference_logits),
                                              np.ravel(reference_valid)) if v]
  return mean(pol) + mean(ref)


def ref_trimmed_mean(x, valid, trim_frac):
  """Sorted valid values, floor(trim_frac·n) dropped from each end (none when that is 0)."""
  values = sorted(float(v) for v, ok in zip(np.ravel(x), np.ravel(valid)) if ok)
  k = int(math.floor(trim_frac * len(values)))
  kept = values[k:len(values) - k]
  return sum(kept) / len(kept) if kept else 0.0


def ref_occupancy_penalty(logits, valid, kind, trim_frac, max_logit):
  """Per-element distances (0 where invalid) for kl, chi2, sqrt_chi2, tv."""
  ratio = np.expm1(np.minimum(np.asarray(logits, np.float64), max_logit))
  chi2 = ref_trimmed_mean(ratio, valid, trim_frac)
  out = np.zeros(np.shape(logits))
  for idx in np.ndindex(*np.shape(logits)):
    if not valid[idx]:
      continue
    d = float(logits[idx])
    if kind == "kl":
      out[idx] = d
    elif kind == "chi2":
      out[idx] = ratio[idx]
    elif kind == "tv":
      out[idx] = (d > 0) - (d < 0)
    else:
      out[idx] = ratio[idx] / math.sqrt(chi2) if chi2 > 0 else ratio[idx]
  return out


def ref_categorical_divergences(p_logits, q_logits):
  """(KL(p‖q), Σ p²/q − 1) per leading index, by explicit softmax loops."""
  lead = np.shape(p_logits)[:-1]
  kl, chi2 = np.zeros(lead), np.zeros(lead)
  for idx in np.ndindex(*lead):
    zp = [math.exp(v) for v in p_logits[idx]]
    zq = [math.exp(v) for v in q_logits[idx]]
    p = [v / sum(zp) for v in zp]
    q = [v / sum(zq) for v in zq]
    kl[idx] = sum(a * math.log(a / b) for a, b in zip(p, q))
    chi2[idx] = sum(a * a / b for a, b in zip(p, q)) - 1.0
  return kl, chi2


def ref_gaussian_divergences_by_quadrature(mu1, std1, mu2, std2):
  """(KL, χ²) of 1-D Gaussians by numerical integration on a fine grid."""
  lo = min(mu1 - 12 * std1, mu2 - 12 * std2)
  hi = max(mu1 + 12 * std1, mu2 + 12 * std2)
  x = np.linspace(lo, hi, 400_001)
  logp = -0.5 * ((x - mu1) / std1) ** 2 - math.log(std1 * math.sqrt(2 * math.pi))
  logq = -0.5 * ((x - mu2) / std2) ** 2 - math.log(std2 * math.sqrt(2 * math.pi))
  p = np.exp(logp)
  kl = np.trapezoid(p * (logp - logq), x)
  chi2 = np.trapezoid(np.exp(2 * logp - logq), x) - 1.0
  return kl, chi2
