"""Potential-based reward shaping with the episodic correction."""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from rlcore import _checks
from rlcore.shaping.base import ShapingTransform, stateless

Array = jax.Array


def potential_based(rewards: Array, potentials: Array, next_potentials: Array,
                    terminated: Array, truncated: Optional[Array], gamma, *,
                    bootstraps_on_truncation: bool = True,
                    valid: Optional[Array] = None) -> Array:
  """Potential-based reward shaping (Ng et al. 1999) with Grześ's terminal correction.

      r'_t = r_t + γ · k_t · Φ(s'_t) − Φ(s_t)
      k_t  = (1 − term_t)                          if the learner bootstraps at truncation
           = (1 − term_t)(1 − trunc_t)             if it does not

  The potential of the state where a trajectory terminates is 0 on that trajectory
  (Grześ 2017, Eq. 3): otherwise γ^N Φ(s_N) depends on which terminal is reached and
  can change the optimal policy. At a truncation the next potential is kept when the
  learner bootstraps there (the time limit is not part of the task, so the shaped
  value V − Φ stays consistent) and zeroed when it does not (Monte-Carlo returns on
  a fixed-horizon task, where the cut is a terminal state in Grześ's sense).
  Optimal Q of the shaped MDP is Q* − Φ, so greedy policies are unchanged.

  `gamma` must be the learner's discount: with another value the telescoping
  leaves a policy-dependent term. Φ(s'_t) must be evaluated on the true next
  observation (before any auto-reset). Shaping applies at the reward level, before
  n-step, λ-returns or GAE.

  See "Policy invariance under reward transformations", Ng, Harada & Russell 1999
  (https://people.eecs.berkeley.edu/~russell/papers/icml99-shaping.pdf) and
  "Reward Shaping in Episodic Reinforcement Learning", Grześ 2017
  (https://dl.acm.org/doi/10.5555/3091125.3091208); no arXiv versions exist.

  Args:
    rewards: [T, B] (any shape) rewards r_t.
    potentials: Φ(s_t), same shape.
    next_potentials: Φ(s'_t) on the true next observation, same shape.
    terminated: bool, same shape.
    truncated: bool, same shape, or None.
    gamma: the learner's discount, scalar or broadcastable, in [0, 1].
    bootstraps_on_truncation: static bool, see above.
    valid: optional bool mask; filler transitions get 0.

  Returns:
    float32 shaped rewards, same shape as `rewards`. Elementwise: NaN or ±inf in
    r_t, Φ(s_t) or a kept Φ(s'_t) makes r'_t non-finite at that step only (a zeroed
    Φ(s'_t), at a termination or an unbootstrapped truncation, is never read, and
    `valid=False` steps are 0 whatever their inputs). A return computed from the
    shaped rewards (`gae`, `lambda_returns`) then carries it back to every earlier
    step of the episode (see `rlcore.returns`).

  Example:
    >>> r2 = rlcore.potential_based(r, phi(obs), phi(next_obs), term, trunc, 0.99)
  """
  fn = "potential_based"
  shape = jnp.shape(rewards)
  for name, x in (("potentials", potentials), ("next_potentials", next_potentials),
                  ("terminated", terminated)):
    _checks.check_shape(fn, name, x, shape, "(same as `rewards`)")
  _checks.check_broadcastable(fn, "gamma", gamma, shape)
  _checks.check_range(fn, "gamma", gamma, 0.0, 1.0)
  if not isinstance(bootstraps_on_truncation, bool):
    raise ValueError(f"{fn}: `bootstraps_on_truncation` must be a Python bool (static), "
                     f"got {bootstraps_on_truncation!r}.")
  keep = ~_checks.as_bool(terminated)
  if truncated is not None:
    _checks.check_shape(fn, "truncated", truncated, shape, "(same as `rewards`)")
    if not bootstraps_on_truncation:
      keep = keep & ~_checks.as_bool(truncated)
  r = _checks.as_float(rewards)
  phi_next = jnp.where(keep, _checks.as_float(next_potentials), 0.0)
  shaped = r + _checks.as_float(gamma) * phi_next - _checks.as_float(potentials)
  if valid is not None:
    _checks.check_shape(fn, "valid", valid, shape, "(same as `rewards`)")
    shaped = jnp.where(_checks.as_bool(valid), shaped, 0.0)
  return shaped


def potential_shaping(potential_fn: Callable[[Array], Array], gamma, *,
                      bootstraps_on_truncation: bool = True) -> ShapingTransform:
  """`potential_based` as a transform over a `Transition` context.

  Φ is evaluated on `context.obs` and on `context.next_obs` (the true next
  observation) with the same function, so the potential is stationary for the
  update (mixing potentials from different parameters breaks the telescoping).

  Args:
    potential_fn: maps a batch of observations [..., *obs_shape] to potentials [...].
    gamma: the learner's discount.
    bootstraps_on_truncation: see `potential_based`.

  Returns:
    A stateless `ShapingTransform`: apply(rewards [T, B], state, transition).
  """
  if not callable(potential_fn):
    raise TypeError("potential_shaping: `potential_fn` must be callable, got "
                    f"{type(potential_fn).__name__}.")

  def fn(rewards, transition):
    return potential_based(
        rewards, potential_fn(transition.obs), potential_fn(transition.next_obs),
        transition.terminated, transition.truncated, gamma,
        bootstraps_on_truncation=bootstraps_on_truncation, valid=transition.valid)

  return stateless(fn)
