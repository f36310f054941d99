"""BARFI: bi-level reward alignment with a learned discount, as pure JAX functions.

BARFI (Gupta, Chandak, Jordan, Thomas & da Silva, "Behavior Alignment via Reward
Function Optimization", NeurIPS 2023, https://arxiv.org/abs/2310.19007) learns how to
blend a designer's heuristic reward r_aux with the primary reward r_p:

    r_φ(s, a) = b_φ(s) + r_p(s, a) + w_φ(s) · r_aux(s, a),      γ_φ = sigmoid(w_γ)
    outer:  max_φ J(θ*(φ)),   J(θ) = E_πθ[ Σ_t γ^t r_p ]                 (true objective)
    inner:  θ*(φ) ∈ argmax_θ Ĵ_φ(θ),   Ĵ_φ = E_πθ[ Σ_t γ_φ^t r_φ ] + β H(π_θ)

and follows the implicit-function-theorem hypergradient (H = ∇²_θ Ĵ_φ at θ)

    dJ/dφ = − ∇_θJ(θ)ᵀ H⁻¹ ∇²_θφ Ĵ_φ(θ),
    H⁻¹ v ≈ −α Σ_{j=0..K} (I + α H)^j v                     (Neumann series; K = 0: H ≈ −I/α)

The functions here are the pieces: the reward and discount parametrisation
(`barfi_reward`, `barfi_discount`), the inner objective's REINFORCE estimator with a
traced discount (`barfi_policy_objective`), the hypergradient (`barfi_hypergradient`,
Neumann or exact dense solve, with a stability diagnostic) and the regulariser
(`barfi_penalty`). `rlcore.agents.barfi` composes them into the agent. The paper's
results tables were not available to us; everything follows the official code
(github.com/Dhawgupta/gupta2023behavior) as described in docs/design.md's "BARFI"
section.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from rlcore import _checks
from rlcore.features import features_linear
from rlcore.returns import discounted_returns

Array = jax.Array
PyTree = Any

GAMMA_LOGIT_INIT = 4.6   # sigmoid(4.6) = 0.990, the official code's initial discount


class BarfiRewardParams(NamedTuple):
  """Parameters of f_φ = Linear(F → 3) on fixed state features.

  Output 0 is the state bias b_φ(s), output 2 the weight w_φ(s) on r_aux; output 1 is
  the weight v_φ(s) on r_p when `barfi_reward(..., learn_primary_weight=True)` (the
  official CartPole code), unused otherwise (as in the official GridWorld code).
  """
  kernel: Array   # [F, 3]
  bias: Array     # [3]


def init_barfi_reward(key: Array, num_features: int) -> BarfiRewardParams:
  """f_φ initialised as PyTorch's `nn.Linear(F, 3)` default: U(−1/√F, 1/√F).

  As the official code of https://arxiv.org/abs/2310.19007 (`Alignment_Reward`).

  Args:
    key: PRNG key.
    num_features: F, the number of state features.

  Returns:
    `BarfiRewardParams` with kernel [F, 3] and bias [3].
  """
  if int(num_features) != num_features or num_features < 1:
    raise ValueError(f"init_barfi_reward: `num_features` must be a positive integer, got "
                     f"{num_features!r}.")
  bound = 1.0 / np.sqrt(num_features)
  k1, k2 = jax.random.split(key)
  return BarfiRewardParams(
      kernel=jax.random.uniform(k1, (num_features, 3), jnp.float32, -bound, bound),
      bias=jax.random.uniform(k2, (3,), jnp.float32, -bound, bound))


def barfi_reward_terms(params: BarfiRewardParams, features: Array) -> tuple[Array, Array]:
  """The state bias b_φ(s) and the heuristic's weight w_φ(s).

  [b_φ(s), ·, w_φ(s)] = f_φ(s) = features(s) · kernel + bias, columns 0 and 2 (column 1
  is `barfi_primary_weight`, used only when r_p's weight is learned;
  https://arxiv.org/abs/2310.19007).

  Args:
    params: `BarfiRewardParams` (kernel [F, 3], bias [3]).
    features: [..., F] state features.

  Returns:
    (b_φ, w_φ), each [...] (float32, or the inputs' float dtype).
  """
  out = _reward_outputs("barfi_reward_terms", params, features)
  return out[..., 0], out[..., 2]


def _reward_outputs(fn: str, params: BarfiRewardParams, features: Array,
                    features_t: Array | None = None) -> Array:
  """f_φ(s) = features · kernel + bias, [..., 3], with the shape checks."""
  kernel = jnp.asarray(params.kernel)
  _checks.check_rank(fn, "params.kernel", kernel, 2, "[F, 3]")
  f = kernel.shape[0]
  _checks.check_shape(fn, "params.kernel", kernel, (f, 3), "[F, 3]")
  _checks.check_shape(fn, "params.bias", params.bias, (3,), "[3]")
  if np.shape(features)[-1:] != (f,):
    raise ValueError(f"{fn}: `features` must end in the feature dimension F = {f} of "
                     f"`params.kernel`, got shape {tuple(np.shape(features))}.")
  x = _float(features)
  bias = jnp.reshape(params.bias, (1,) * (x.ndim - 1) + (3,))
  if features_t is None:
    return x @ kernel + bias
  return features_linear(x, kernel, _float(features_t)) + bias


def barfi_reward(params: BarfiRewardParams, features: Array, r_p: Array,
                 r_aux: Array, *, learn_primary_weight: bool = False,
                 features_t: Array | None = None) -> Array:
  """The behaviour-alignment reward r_φ(s, a) = b_φ(s) + r_p(s, a) + w_φ(s) · r_aux(s, a).

  With `learn_primary_weight=True` the primary reward's weight is learned too,
  r_φ = b_φ(s) + v_φ(s) · r_p + w_φ(s) · r_aux with v_φ output 1 of f_φ: the active
  line of the official CartPole code's `Alignment_Reward` (the GridWorld code and the
  spec keep weight 1 on r_p, the default here). At PyTorch's initialisation v_φ(s) is
  near 0, so the initial r_φ holds almost none of r_p; see results/barfi.md for what
  that changes on CartPole.
  No tanh: the official code computes tanh'd outputs but returns the linear ones.
  Differentiable in `params` (the hypergradient needs it; no stop_gradient inside).

  See https://arxiv.org/abs/2310.19007 (`src/utils/Reward.py` in the official code).

  Args:
    params: `BarfiRewardParams`.
    features: [T, B, F] (any leading shape [...]) fixed state features φ(s_t).
    r_p: [T, B] primary rewards.
    r_aux: [T, B] auxiliary (heuristic) rewards.
    learn_primary_weight: static; weight r_p by the learned v_φ(s) instead of 1.
    features_t: optional [F, T·B], `features` as [T·B, F] transposed: the kernel's
      gradient is then computed from it (`rlcore.features.features_linear`, faster
      on CPU for many states); the values and gradients are the same.

  Returns:
    [T, B] rewards r_φ (float32, or the inputs' float dtype).
  """
  fn = "barfi_reward"
  shape = tuple(np.shape(features))[:-1]
  _checks.check_shape(fn, "r_p", r_p, shape, "(features' leading shape)")
  _checks.check_shape(fn, "r_aux", r_aux, shape, "(features' leading shape)")
  out = _reward_outputs(fn, params, features, features_t)
  primary = _float(r_p) * out[..., 1] if learn_primary_weight else _float(r_p)
  return out[..., 0] + primary + out[..., 2] * _float(r_aux)


def barfi_primary_weight(params: BarfiRewardParams, features: Array) -> Array:
  """v_φ(s), output 1 of f_φ: the learned weight on r_p of the official CartPole code.

  Used by `barfi_reward(..., learn_primary_weight=True)`
  (https://arxiv.org/abs/2310.19007, `barfi-cp/src/utils/Reward.py`).

  Args:
    params: `BarfiRewardParams` (kernel [F, 3], bias [3]).
    features: [..., F] state features.

  Returns:
    [...] v_φ(s).
  """
  return _reward_outputs("barfi_primary_weight", params, features)[..., 1]


def barfi_discount(gamma_logit: Array) -> Array:
  """The learned discount γ_φ = sigmoid(w_γ) (initialise w_γ at `GAMMA_LOGIT_INIT`).

  BARFI's discount (https://arxiv.org/abs/2310.19007), learned by the outer step.

  Args:
    gamma_logit: [] the logit w_γ.

  Returns:
    [] discount in (0, 1).
  """
  _checks.check_rank("barfi_discount", "gamma_logit", gamma_logit, 0, "(a scalar)")
  return jax.nn.sigmoid(_float(gamma_logit))


def _float(x):
  """x as the default float dtype (float32, or float64 under x64), keeping floats'."""
  x = jnp.asarray(x)
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _safe_norm(x):
  sq = jnp.sum(jnp.square(x))
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def barfi_penalty(reward_params: PyTree, gamma_logit: Array, reward_l2, gamma_l2) -> Array:
  """The outer regulariser, subtracted from J: λ_r Σ_p ‖p‖₂ + λ_γ · γ_φ.

  BARFI's reward and discount penalties (https://arxiv.org/abs/2310.19007).

  `reward_l2` multiplies the sum over parameter arrays p of their (unsquared) 2-norms,
  as the official code's `utils.L2_reg` does (the spec writes ‖φ‖²; we follow the
  code). The discount penalty acts on γ_φ itself, not on its logit, so it pushes the
  horizon down. The norm's gradient at p = 0 is taken as 0.

  Args:
    reward_params: pytree of reward parameters.
    gamma_logit: [] discount logit.
    reward_l2: λ_r ≥ 0, scalar (traced is fine).
    gamma_l2: λ_γ ≥ 0, scalar.

  Returns:
    [] float32 penalty.
  """
  fn = "barfi_penalty"
  for name, x in (("reward_l2", reward_l2), ("gamma_l2", gamma_l2)):
    _checks.check_rank(fn, name, x, 0, "(a scalar)")
    _checks.check_range(fn, name, x, 0.0, np.inf)
  norms = sum(_safe_norm(p) for p in jax.tree.leaves(reward_params))
  return reward_l2 * norms + gamma_l2 * barfi_discount(gamma_logit)


def barfi_policy_objective(log_probs: Array, actions: Array, rewards: Array, discount,
                           mask: Array, entropy_coef, *, method: str | None = None) -> Array:
  """BARFI's REINFORCE estimator of the (inner or outer) objective, to be maximised.

      Ĵ = mean_b [ (1/T) Σ_t m_t log π(a_t|s_t) G_t ] + β Σ_{t,b} m_t H_t / Σ_{t,b} m_t
      G_t = Σ_{k≥t} γ^{k−t} m_k r_k

  Episodes are padded to a fixed length T (mask m); as in the official code the score
  term is averaged over all T steps (so it is length-weighted), the entropy over the
  valid ones, and the score is not weighted by γ^t. `rewards` and `discount` stay
  differentiable (pass r_φ and γ_φ for the inner objective Ĵ_φ, whose θ-gradient the
  hypergradient differentiates in φ): returns come from `rlcore.discounted_returns`.

  See https://arxiv.org/abs/2310.19007 (`get_policy_loss` in the official code).

  Args:
    log_probs: [T, B, A] log π_θ(·|s_t) over the A actions.
    actions: [T, B] int actions taken.
    rewards: [T, B] rewards (r_p for J, r_φ for Ĵ_φ).
    discount: [] discount (traced, differentiable).
    mask: [T, B] bool or {0, 1}: valid steps.
    entropy_coef: β ≥ 0, scalar.
    method: the returns' recurrence, "scan" or "associative" (`rlcore.discounted_returns`;
      None: the backend's default). For long episodes and few of them (T = 500, B = 15)
      "associative" was 5x faster on CPU than "scan" for a Hessian-vector product.

  Returns:
    [] float32 objective.
  """
  fn = "barfi_policy_objective"
  _checks.check_rank(fn, "log_probs", log_probs, 3, "[T, B, A]")
  t, b, _ = np.shape(log_probs)
  for name, x in (("actions", actions), ("rewards", rewards), ("mask", mask)):
    _checks.check_shape(fn, name, x, (t, b), "[T, B]")
  _checks.check_rank(fn, "discount", discount, 0, "(a scalar)")
  _checks.check_rank(fn, "entropy_coef", entropy_coef, 0, "(a scalar)")
  m = jnp.asarray(mask, jnp.float32)
  returns = discounted_returns(jnp.asarray(rewards, jnp.float32) * m,
                               jnp.zeros((t, b), bool), None, discount, method=method)
  taken = jnp.take_along_axis(log_probs, jnp.asarray(actions, jnp.int32)[..., None], -1)[..., 0]
  score = jnp.mean(jnp.sum(m * taken * returns, 0) / max(t, 1))
  entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, -1)
  entropy = jnp.sum(m * entropy) / jnp.maximum(jnp.sum(m), 1.0)
  return score + entropy_coef * entropy


class HypergradInfo(NamedTuple):
  """Diagnostics of `barfi_hypergradient`.

  growth: for the Neumann method, (‖p_K‖ / ‖p_0‖)^(1/K) with p_j = (I + αH)^j v: the
    per-term growth of the series along v (a power-iteration estimate of the
    spectral radius of I + αH; < 1 contracts). 0 for K = 0; for the exact method, the
    largest eigenvalue of H (≥ 0: the inner problem is not at a strict maximum).
  stable: growth < 1 (Neumann) or H negative definite (exact). When False the
    estimate is not an inverse-Hessian product and should not be followed.
  """
  growth: Array
  stable: Array


def neumann_inverse_hvp(hvp: Callable[[PyTree], PyTree], v: PyTree, *, num_terms: int,
                        alpha) -> tuple[PyTree, Array]:
  """H⁻¹ v ≈ −α Σ_{j=0..K} (I + α H)^j v by K Hessian-vector products (Lorraine et al.).

  Converges when every eigenvalue λ of H satisfies |1 + αλ| < 1 (H negative definite,
  α < 2 / |λ_min|). See "Optimizing Millions of Hyperparameters by Implicit
  Differentiation", Lorraine, Vicol & Duvenaud 2020 (https://arxiv.org/abs/1911.02590).

  Args:
    hvp: p ↦ H p on pytrees shaped like `v`.
    v: pytree vector.
    num_terms: K ≥ 0, static: the number of Hessian-vector products.
    alpha: step α > 0, scalar (traced is fine).

  Returns:
    (the estimate of H⁻¹ v, growth (‖p_K‖/‖p_0‖)^(1/K), 0 when K = 0).
  """
  if int(num_terms) != num_terms or num_terms < 0:
    raise ValueError(f"neumann_inverse_hvp: `num_terms` must be a non-negative integer "
                     f"(static), got {num_terms!r}.")
  _checks.check_rank("neumann_inverse_hvp", "alpha", alpha, 0, "(a scalar)")
  _checks.check_range("neumann_inverse_hvp", "alpha", alpha, 0.0, np.inf)

  def body(carry, _):
    p, acc = carry
    p = jax.tree.map(lambda a, h: a + alpha * h, p, hvp(p))
    return (p, jax.tree.map(jnp.add, acc, p)), None

  (p, acc), _ = jax.lax.scan(body, (v, v), None, length=int(num_terms))
  acc = jax.tree.map(lambda a: -alpha * a, acc)
  if num_terms == 0:
    return acc, jnp.zeros((), jnp.float32)
  norm = lambda x: jnp.sqrt(sum(jnp.sum(jnp.square(l)) for l in jax.tree.leaves(x)))
  ratio = norm(p) / jnp.maximum(norm(v), 1e-30)
  return acc, ratio ** (1.0 / num_terms)


def barfi_hypergradient(inner_objective: Callable[[PyTree, PyTree], Array], theta: PyTree,
                        phi: PyTree, outer_grad: PyTree, *, method: str = "neumann",
                        neumann_steps: int = 5, neumann_alpha=5e-4,
                        forward_objective: Callable[[PyTree, PyTree], Array] | None = None
                        ) -> tuple[PyTree, HypergradInfo]:
  """Implicit hypergradient dJ/dφ = −(∇²_φθ Ĵ_φ)ᵀ H⁻¹ ∇_θJ, H = ∇²_θ Ĵ_φ(θ).

  `inner_objective(θ, φ)` is the inner objective Ĵ_φ(θ) (maximised in θ), with φ any
  pytree (BARFI: reward parameters and the discount logit). `outer_grad` is v =
  ∇_θJ(θ) of the outer objective at the same θ. Hessian-vector products are
  forward-over-reverse (`jax.jvp` of `jax.grad`); the final product is a `jax.vjp`
  of θ ↦ ∇_θ Ĵ_φ with respect to φ. Nothing is stopped inside `inner_objective`,
  so every path from φ (rewards, discount) contributes.

  * method="neumann": H⁻¹v by `neumann_inverse_hvp` with K = `neumann_steps`,
    α = `neumann_alpha`. K = 0 is the first-order variant H ≈ −I/α, i.e.
    dJ/dφ = α (∇²_φθ Ĵ_φ)ᵀ v (the official `outer_first_order` is α = 1).
  * method="exact": dense H by `jax.hessian` over the flattened θ and a linear solve;
    for small θ (tests, tabular problems).

  See https://arxiv.org/abs/2310.19007 (`outer_Neumann` in the official code).

  Args:
    inner_objective: (θ, φ) -> [] float32, maximised in θ.
    theta: pytree, the current inner parameters (an approximate maximiser).
    phi: pytree, the outer parameters.
    outer_grad: pytree like `theta`, ∇_θJ(θ).
    method: "neumann" or "exact" (static).
    neumann_steps: K ≥ 0 (static).
    neumann_alpha: α > 0, scalar.
    forward_objective: optional, the same function as `inner_objective`, written so
      that `jax.jvp` can differentiate it in θ (for instance without `jax.custom_vjp`
      pieces on θ's path). When given, the final product is computed as the φ-gradient
      of its directional derivative in θ along H⁻¹v (reverse over forward mode)
      instead of reverse over reverse mode; the result is the same, the cost can
      differ (`rlcore.agents.barfi` saves a slow transposed product this way).

  Returns:
    (dJ/dφ, a pytree like `phi`: an ascent direction for J; `HypergradInfo`).
  """
  fn = "barfi_hypergradient"
  _checks.check_choice(fn, "method", method, ("neumann", "exact"))
  if jax.tree.structure(outer_grad) != jax.tree.structure(theta):
    raise ValueError(f"{fn}: `outer_grad` must have the structure of `theta`, got "
                     f"{jax.tree.structure(outer_grad)} vs {jax.tree.structure(theta)}.")
  for a, b in zip(jax.tree.leaves(outer_grad), jax.tree.leaves(theta)):
    if np.shape(a) != np.shape(b):
      raise ValueError(f"{fn}: `outer_grad` leaves must have the shapes of `theta`'s, "
                       f"got {np.shape(a)} vs {np.shape(b)}.")
  grad_theta = jax.grad(inner_objective, argnums=0)

  if method == "exact":
    flat, unravel = jax.flatten_util.ravel_pytree(theta)
    hess = jax.hessian(lambda f: inner_objective(unravel(f), phi))(flat)
    v_flat, _ = jax.flatten_util.ravel_pytree(outer_grad)
    acc = unravel(jnp.linalg.solve(hess, v_flat))
    top = jnp.max(jnp.linalg.eigvalsh(0.5 * (hess + hess.T)))
    info = HypergradInfo(growth=top, stable=top < 0)
  else:
    hvp = lambda p: jax.jvp(lambda t: grad_theta(t, phi), (theta,), (p,))[1]
    acc, growth = neumann_inverse_hvp(hvp, outer_grad, num_terms=neumann_steps,
                                      alpha=neumann_alpha)
    info = HypergradInfo(growth=growth, stable=growth < 1.0)
  if forward_objective is None:
    _, vjp = jax.vjp(lambda p: grad_theta(theta, p), phi)
    (mixed,) = vjp(acc)
  else:
    # (∇²_φθ Ĵ_φ)ᵀ acc = ∇_φ ⟨∇_θ Ĵ_φ, acc⟩, the inner product being Ĵ_φ's directional
    # derivative along acc in θ.
    mixed = jax.grad(lambda p: jax.jvp(lambda t: forward_objective(t, p), (theta,),
                                       (acc,))[1])(phi)
  return jax.tree.map(jnp.negative, mixed), info
