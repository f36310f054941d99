"""Returns and advantages over time-major trajectories.

All functions take time-major arrays, `[T]` for one stream or `[T, B]` (any trailing
batch dims) for a batch, and keep termination and truncation apart:

* `terminated[t]`: the MDP ended at the next state s_{t+1}. Its value is 0 and the
  recursion stops.
* `truncated[t]`: a time limit cut the episode after step t. The learner bootstraps
  from the value of the true next state, `next_values[t] = V(s'_t)`, and the
  lambda-recursion stops (the next row of the batch belongs to a new episode).

Every return here is one linear recurrence run backwards in time,

    y_t = a_t + c_t · y_{t+1},      y_T = 0,

computed either sequentially (`method="scan"`: a backward `lax.fori_loop`, which
lowers to a scan) or as a parallel prefix (`method="associative"`:
`lax.associative_scan`, O(log T) depth). Both paths are differentiable in the
rewards, the values, the discount and lambda (no internal `stop_gradient`), so a
learned discount can be trained through them.

Non-finite inputs are not cleaned: NaN or ±inf in an input used by step t (its
reward r_t, its value V_t, or its bootstrap value V'_t when not terminated) make the
output non-finite at t and at every earlier step of the same episode, whatever γ and
λ (0 · NaN is NaN); for `n_step_returns` only at the steps whose n-step window reads
the input. They never cross a termination or truncation (the recursion is cut with a
select, not a multiplication by 0), never reach later steps and never reach other
batch columns. A bootstrap value at a termination is never read, so a non-finite
one there changes nothing. Zero rewards on filler steps marked `terminated` keep a
padded batch finite.

An empty time axis (T = 0) gives an empty result of shape [0, ...], float32 (or
float64 for float64 inputs under x64), with both methods.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax

from rlcore import _checks

Array = jax.Array

METHODS = ("scan", "associative")

# Defaults per backend, chosen by measurement (benchmarks/transforms.py, GAE at
# [128, 2048], [1024, 256], [4096, 64]). On a 2-core CPU the sequential loop with
# unroll=1 was fastest at every shape (unroll 8-16 was 1.1-1.6x slower, the
# associative scan 2.5-4x slower). On an H200 the sequential loop pays a kernel launch per step and
# the associative scan was 5x ([128, 2048]) to 73x ([4096, 64]) faster. TPU is
# unmeasured and follows the GPU.
_BACKEND_DEFAULTS = {
    "cpu": ("scan", 1),
    "gpu": ("associative", 1),
    "tpu": ("associative", 1),
}


def _resolve_method(fn: str, method: Optional[str], unroll: Optional[int]):
  default_method, default_unroll = _BACKEND_DEFAULTS.get(
      jax.default_backend(), ("scan", 1))
  method = default_method if method is None else method
  _checks.check_choice(fn, "method", method, METHODS)
  unroll = default_unroll if unroll is None else unroll
  _checks.check_positive_int(fn, "unroll", unroll)
  return method, unroll


def linear_recurrence(a: Array, c: Array, *, method: Optional[str] = None,
                      unroll: Optional[int] = None) -> Array:
  """Solves y_t = a_t + c_t · y_{t+1} backwards along axis 0, with y_T = 0.

  The general form behind this module's associative path and `token_returns`.

  Args:
    a: [T, ...] inhomogeneous term.
    c: [T, ...] (same shape) coefficient of the next value.
    method: "scan" (sequential `lax.scan`) or "associative" (parallel prefix,
      O(log T) depth); None picks the measured default for the backend.
    unroll: scan unroll factor (ignored by "associative"); None picks the default.

  Returns:
    [T, ...] the solution y ([0, ...] when T = 0). A non-finite y_{t+1} reaches y_t
    also where c_t = 0 (0 · NaN is NaN).
  """
  fn = "linear_recurrence"
  method, unroll = _resolve_method(fn, method, unroll)
  a, c = jnp.asarray(a), jnp.asarray(c)
  _checks.check_shape(fn, "c", c, a.shape, "(same as `a`)")
  if a.ndim == 0:
    raise ValueError(f"{fn}: `a` must have a leading time axis, got a scalar.")
  return _recurrence(a, c, None, method, unroll)


def _recurrence(a, c, cut, method, unroll):
  """`linear_recurrence` where the bool `cut` (like `a`, or None) stops the recursion:
  y_t = a_t there, whatever c_t and y_{t+1} (NaN and inf included)."""
  dtype = jnp.result_type(a, c)
  if a.shape[0] == 0:  # T = 0: nothing to scan (the loop would index row 0)
    return jnp.zeros(a.shape, dtype)
  if method == "scan":
    def step(y_next, xs):
      a_t, c_t, cut_t = xs
      carried = c_t * y_next
      y = a_t + (carried if cut_t is None else jnp.where(cut_t, 0.0, carried))
      return y, y
    _, ys = lax.scan(step, jnp.zeros(a.shape[1:], dtype), (a, c, cut), reverse=True,
                     unroll=unroll)
    return ys

  # Element (c_t, a_t) is the affine map y_{t+1} -> a_t + c_t y_{t+1}. With
  # reverse=True, `later` holds the accumulated map of the later times and
  # `earlier` the map of the earlier ones; composing gives earlier ∘ later.
  if cut is None:
    def compose(later, earlier):
      c_l, a_l = later
      c_e, a_e = earlier
      return c_e * c_l, a_e + c_e * a_l

    _, ys = lax.associative_scan(compose, (c, a), reverse=True, axis=0)
    return ys

  # With cuts the element is (c, a, k): y -> a + (k ? 0 : c y). A cut anywhere in
  # the earlier segment (k_e) means the later segment is not read at all.
  def compose_cut(later, earlier):
    c_l, a_l, k_l = later
    c_e, a_e, k_e = earlier
    return c_e * c_l, a_e + jnp.where(k_e, 0.0, c_e * a_l), k_e | k_l

  _, ys, _ = lax.associative_scan(compose_cut, (c, a, cut), reverse=True, axis=0)
  return ys


def _prepare(fn, rewards, terminated, truncated, **named):
  """Shared checks and float32 casts; returns rewards, flags and named arrays.

  `truncated` stays None when not given, so the loops need not read it.
  """
  _checks.check_rank(fn, "rewards", rewards, range(1, 8), "([T] or time-major [T, B, ...])")
  rewards = _checks.as_float(rewards)
  shape = rewards.shape
  _checks.check_shape(fn, "terminated", terminated, shape, "(same as `rewards`)")
  terminated = _checks.as_bool(terminated)
  if truncated is not None:
    _checks.check_shape(fn, "truncated", truncated, shape, "(same as `rewards`)")
    truncated = _checks.as_bool(truncated)
  out = {}
  for name, (x, kind) in named.items():
    if kind == "full":
      _checks.check_shape(fn, name, x, shape, "(same as `rewards`)")
      out[name] = _checks.as_float(x)
    else:  # a coefficient: scalar or broadcastable, range-checked when concrete
      _checks.check_broadcastable(fn, name, x, shape)
      _checks.check_range(fn, name, x, 0.0, 1.0)
      x = _checks.as_float(x)
      # Scalars stay scalars (the scan then forms its coefficient in-loop from the
      # flags); anything else is broadcast explicitly, with no implicit rank promotion.
      out[name] = x if x.ndim == 0 else jnp.broadcast_to(x, shape)
  return rewards, terminated, truncated, out


def _backward_loop(step, per_step, init, length, unroll):
  """Runs `step(carry, x_t) -> (carry, y_t)` for t = length−1, …, 0 and stacks y.

  Each array of the dict `per_step` is read at row t in place, so arrays may be
  longer than `length` (values [T+1]) and nothing is sliced or precomputed outside
  the loop. On CPU this was the fastest sequential form measured (faster than a
  `lax.scan` over precomputed TD errors at every shape in benchmarks/transforms.py,
  and 2-4x faster at small shapes such as [128, 4], where every full-array pass
  before the loop costs a fixed thread hand-off).
  """
  first = next(iter(per_step.values()))
  out = jnp.zeros((length,) + first.shape[1:], jnp.result_type(first, jnp.float32))

  def body(i, state):
    carry, out = state
    t = length - 1 - i
    x = {k: lax.dynamic_index_in_dim(v, t, keepdims=False) for k, v in per_step.items()}
    carry, y = step(carry, x)
    return carry, lax.dynamic_update_index_in_dim(out, y, t, 0)

  return lax.fori_loop(0, length, body, (init, out), unroll=unroll)[1]


def _coefficients(per_step, **coefs):
  """Scalars are closed over; per-step coefficient arrays are read in the loop."""
  scalars = {}
  for name, value in coefs.items():
    if jnp.ndim(value) == 0:
      scalars[name] = value
    else:
      per_step[name] = value
  return lambda x, name: x[name] if name in x else scalars[name]


def _cut(terminated, truncated):
  """Where the λ-recursion stops: terminations and (if given) truncations."""
  return terminated if truncated is None else terminated | truncated


def _split_values(fn, values, next_values, shape):
  """Checks values [T+1, ...] (next_values None) or values [T, ...] + next_values [T, ...]."""
  if next_values is None:
    want = (shape[0] + 1,) + tuple(shape[1:])
    _checks.check_shape(fn, "values", values, want,
                        "([T+1, ...] when `next_values` is None)")
    return _checks.as_float(values), None
  _checks.check_shape(fn, "values", values, shape, "(same as `rewards` when `next_values` is given)")
  _checks.check_shape(fn, "next_values", next_values, shape, "(same as `rewards`)")
  return _checks.as_float(values), _checks.as_float(next_values)


def gae(rewards: Array, values: Array, terminated: Array, truncated: Optional[Array],
        gamma, lambda_, *, next_values: Optional[Array] = None,
        method: Optional[str] = None, unroll: Optional[int] = None) -> Array:
  """Generalised advantage estimation with separate termination and truncation.

      δ_t = r_t + γ (1 − term_t) V'_t − V_t
      A_t = δ_t + γ λ (1 − term_t)(1 − trunc_t) A_{t+1},     A_T = 0

  where V'_t is the value of the true next state of step t. At a truncation the
  TD error still bootstraps from V'_t (a time limit is not a terminal state), and
  only the λ-recursion is cut. λ = 1 gives discounted returns minus values; λ = 0
  gives one-step TD errors.

  See "High-Dimensional Continuous Control Using Generalized Advantage Estimation",
  Schulman et al. 2015 (https://arxiv.org/abs/1506.02438); for truncation,
  "Time Limits in Reinforcement Learning", Pardo et al. 2018
  (https://arxiv.org/abs/1712.00378).

  Args:
    rewards: [T] or [T, B, ...] reward of each transition.
    values: [T+1, ...] values V(s_0..s_T) when `next_values` is None (the next
      value of step t is then values[t+1]); else [T, ...] values V(s_t).
    terminated: [T, ...] bool, the next state is terminal.
    truncated: [T, ...] bool, the episode was cut after this step, or None.
    gamma: discount, scalar or broadcastable to [T, ...], in [0, 1].
    lambda_: GAE λ, scalar or broadcastable to [T, ...], in [0, 1].
    next_values: [T, ...] V of the true next state of each step (before any
      auto-reset). Needed whenever rows of a batch cross episode boundaries.
    method: "scan" or "associative" (see `linear_recurrence`).
    unroll: scan unroll factor.

  Returns:
    [T, ...] float32 advantages ([0, ...] when T = 0). NaN or ±inf in r_t, V_t or a
    used V'_t make A non-finite at t and at every earlier step of t's episode, and
    nowhere else (module docstring).

  Example:
    >>> adv = rlcore.gae(r, v_tp1, term, trunc, 0.99, 0.95)   # v_tp1: [T+1, B]
  """
  fn = "gae"
  rewards, terminated, truncated, coef = _prepare(
      fn, rewards, terminated, truncated, gamma=(gamma, "coef"), lambda_=(lambda_, "coef"))
  method, unroll = _resolve_method(fn, method, unroll)
  gamma, lam = coef["gamma"], coef["lambda_"]
  separate = next_values is not None
  values, next_values = _split_values(fn, values, next_values, rewards.shape)
  if rewards.shape[0] == 0:
    return jnp.zeros(rewards.shape, rewards.dtype)
  if method == "associative":
    v_t, v_next = (values, next_values) if separate else (values[:-1], values[1:])
    deltas = rewards + jnp.where(terminated, 0.0, gamma * v_next) - v_t
    cut = _cut(terminated, truncated)
    c = jnp.where(cut, 0.0, gamma * lam)
    return _recurrence(deltas, jnp.broadcast_to(c, deltas.shape), cut, method, unroll)

  per_step = dict(r=rewards, v=values, term=terminated)
  if truncated is not None:
    per_step["trunc"] = truncated
  if separate:
    per_step["nv"] = next_values
  coef_of = _coefficients(per_step, gamma=gamma, lam=lam)

  def step(carry, x):
    acc, v_next = carry
    g = coef_of(x, "gamma")
    nv = x["nv"] if separate else v_next  # V of s_{t+1}, carried from step t+1
    delta = x["r"] + jnp.where(x["term"], 0.0, g * nv) - x["v"]
    cut = _cut(x["term"], x.get("trunc"))
    # A select, not a product with 0: a non-finite A_{t+1} stays in its episode.
    acc = delta + jnp.where(cut, 0.0, g * coef_of(x, "lam") * acc)
    return (acc, x["v"]), acc

  length = rewards.shape[0]
  zeros = jnp.zeros(rewards.shape[1:], rewards.dtype)
  init = (zeros, zeros if separate else values[length])
  return _backward_loop(step, per_step, init, length, unroll)


def lambda_returns(rewards: Array, next_values: Array, terminated: Array,
                   truncated: Optional[Array], gamma, lambda_, *,
                   method: Optional[str] = None, unroll: Optional[int] = None) -> Array:
  """TD(λ) returns with separate termination and truncation.

      G_t = r_t + γ (1 − term_t) [ (1 − λ) V'_t + λ G_{t+1} ]    (no cut at t)
      G_t = r_t + γ (1 − term_t) V'_t                             (trunc_t or t = T−1)

  V'_t is the value of the true next state of step t. λ = 1 gives Monte-Carlo
  returns bootstrapped at the end of the trajectory and at truncations; λ = 0 gives
  one-step targets. When V'_t = V(s_{t+1}) inside episodes, G^λ_t = A_t + V_t with
  A from `gae` (same γ, λ).

  See "Reinforcement Learning: An Introduction", Sutton & Barto, ch. 12
  (http://incompleteideas.net/book/the-book-2nd.html); rlax's `lambda_returns` uses
  the same recursion with a single discount.

  Args:
    rewards: [T] or [T, B, ...] rewards.
    next_values: [T, ...] V of the true next state of each step.
    terminated: [T, ...] bool.
    truncated: [T, ...] bool or None.
    gamma: discount, scalar or broadcastable to [T, ...], in [0, 1].
    lambda_: λ, scalar or broadcastable to [T, ...], in [0, 1].
    method: "scan" or "associative".
    unroll: scan unroll factor.

  Returns:
    [T, ...] float32 λ-returns ([0, ...] when T = 0). NaN or ±inf in r_t or a used
    V'_t make G non-finite at t and at every earlier step of t's episode, and nowhere
    else (module docstring).
  """
  fn = "lambda_returns"
  rewards, terminated, truncated, coef = _prepare(
      fn, rewards, terminated, truncated, next_values=(next_values, "full"),
      gamma=(gamma, "coef"), lambda_=(lambda_, "coef"))
  return _lambda_returns(fn, rewards, coef["next_values"], terminated, truncated,
                         coef["gamma"], coef["lambda_"], method, unroll)


def _lambda_returns(fn, rewards, next_values, terminated, truncated, gamma, lambda_,
                    method, unroll):
  method, unroll = _resolve_method(fn, method, unroll)
  if rewards.shape[0] == 0:
    return jnp.zeros(rewards.shape, rewards.dtype)
  if method == "associative":
    last = jnp.arange(rewards.shape[0]) == rewards.shape[0] - 1
    cut = _cut(terminated, truncated) | last.reshape((-1,) + (1,) * (rewards.ndim - 1))
    coef = gamma * lambda_
    a = (rewards + jnp.where(terminated, 0.0, gamma * next_values)
         - jnp.where(cut, 0.0, coef * next_values))
    c = jnp.where(cut, 0.0, coef)
    return _recurrence(a, jnp.broadcast_to(c, a.shape), cut, method, unroll)

  per_step = dict(r=rewards, nv=next_values, term=terminated)
  if truncated is not None:
    per_step["trunc"] = truncated
  coef_of = _coefficients(per_step, gamma=gamma, lam=lambda_)

  def step(acc, x):
    lam, nv = coef_of(x, "lam"), x["nv"]
    cont = (1.0 - lam) * nv + lam * acc
    if "trunc" in x:
      cont = jnp.where(x["trunc"], nv, cont)
    acc = x["r"] + jnp.where(x["term"], 0.0, coef_of(x, "gamma") * cont)
    return acc, acc

  # Starting from acc = V'_{T-1} makes the last step bootstrap from V' in full.
  return _backward_loop(step, per_step, next_values[-1], rewards.shape[0], unroll)


def discounted_returns(rewards: Array, terminated: Array, truncated: Optional[Array],
                       gamma, *, next_values: Optional[Array] = None,
                       method: Optional[str] = None,
                       unroll: Optional[int] = None) -> Array:
  """Discounted returns-to-go, cut at episode boundaries.

      G_t = r_t + γ (1 − term_t) [ trunc_t ? V'_t : G_{t+1} ],   G_T = V'_{T−1}

  Without `next_values` nothing is bootstrapped (V' = 0): returns are Monte-Carlo
  sums that stop at terminations, truncations and the end of the trajectory. This
  is `lambda_returns` at λ = 1.

  See Sutton & Barto, ch. 3 (http://incompleteideas.net/book/the-book-2nd.html).

  Args:
    rewards: [T] or [T, B, ...] rewards.
    terminated: [T, ...] bool.
    truncated: [T, ...] bool or None.
    gamma: discount, scalar or broadcastable to [T, ...], in [0, 1].
    next_values: optional [T, ...] V of the true next state, used at truncations
      and at the last step.
    method: "scan" or "associative".
    unroll: scan unroll factor.

  Returns:
    [T, ...] float32 returns ([0, ...] when T = 0); non-finite inputs as in
    `lambda_returns`.
  """
  fn = "discounted_returns"
  if next_values is None:
    next_values = jnp.zeros(jnp.shape(rewards), jnp.float32)
  rewards, terminated, truncated, coef = _prepare(
      fn, rewards, terminated, truncated, next_values=(next_values, "full"),
      gamma=(gamma, "coef"))
  return _lambda_returns(fn, rewards, coef["next_values"], terminated, truncated,
                         coef["gamma"], 1.0, method, unroll)


def n_step_returns(rewards: Array, next_values: Array, terminated: Array,
                   truncated: Optional[Array], gamma, n: int) -> Array:
  """n-step bootstrapped returns, cut at episode boundaries.

      G^(n)_t = Σ_{k=0}^{m−t} γ^k r_{t+k} + γ^{m−t+1} (1 − term_m) V'_m

  with m = min(t + n − 1, first step ≥ t that terminates or truncates, T − 1):
  sums stop at the episode's end and at the end of the trajectory, and bootstrap
  from the value of the true next state there (0 after a termination). n = 1 gives
  one-step TD targets; n ≥ T gives `lambda_returns` at λ = 1.

  See Sutton & Barto, ch. 7 (http://incompleteideas.net/book/the-book-2nd.html).

  Args:
    rewards: [T] or [T, B, ...] rewards.
    next_values: [T, ...] V of the true next state of each step.
    terminated: [T, ...] bool.
    truncated: [T, ...] bool or None.
    gamma: discount, scalar or broadcastable to [T, ...], in [0, 1].
    n: static positive int, the number of steps.

  Returns:
    [T, ...] float32 n-step returns ([0, ...] when T = 0). Cost O(n·T) elementwise
    work, one compile. NaN or ±inf in r_t make G non-finite at t and at the n − 1
    steps before it that lie in t's episode; in V'_t, at the steps whose window
    bootstraps from it (none if step t terminates); nowhere else.
  """
  fn = "n_step_returns"
  _checks.check_positive_int(fn, "n", n)
  rewards, terminated, truncated, coef = _prepare(
      fn, rewards, terminated, truncated, next_values=(next_values, "full"),
      gamma=(gamma, "coef"))
  next_values, gamma = coef["next_values"], coef["gamma"]
  T = rewards.shape[0]
  if T == 0:
    return jnp.zeros(rewards.shape, rewards.dtype)
  n = min(n, T)
  stop = _cut(terminated, truncated)
  gamma = jnp.broadcast_to(gamma, rewards.shape)
  # Positions past the end are "pass-through" (r = 0, no discount applied, acc kept).
  # Flags select (`where`) rather than multiply, so a non-finite value never crosses
  # an episode boundary (0 · NaN is NaN).
  pad = [(0, n - 1)] + [(0, 0)] * (rewards.ndim - 1)
  r_p = jnp.pad(rewards, pad)
  g_p = jnp.pad(gamma, pad)
  t_p = jnp.pad(terminated, pad)
  v_p = jnp.pad(next_values, pad)
  s_p = jnp.pad(stop, pad)
  inside = jnp.pad(jnp.ones(rewards.shape, bool), pad)
  # acc starts as V' at the last step of each window: min(t + n - 1, T - 1).
  last = jnp.minimum(jnp.arange(T) + n - 1, T - 1)
  acc = next_values[last]

  def body(i, acc):
    k = n - 1 - i  # offset inside the window, from n-1 down to 0
    sl = lambda x: lax.dynamic_slice_in_dim(x, k, T, axis=0)
    r_k, g_k, t_k, v_k, s_k, in_k = (sl(r_p), sl(g_p), sl(t_p), sl(v_p), sl(s_p),
                                     sl(inside))
    cont = jnp.where(s_k, v_k, acc)  # episode ends here: bootstrap from V'
    new = r_k + jnp.where(t_k, 0.0, g_k * cont)
    return jnp.where(in_k, new, acc)

  return lax.fori_loop(0, n, body, acc)
