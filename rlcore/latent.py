"""TD-JEPA: latent-predictive representations for zero-shot RL, as pure JAX functions.

TD-JEPA (Bagatella, Pirotta, Touati, Lazaric & Tirinzoni, "TD-JEPA: Latent-predictive
Representations for Zero-Shot Reinforcement Learning", ICLR 2026,
https://arxiv.org/abs/2510.00739; official PyTorch code github.com/marbaga/td_jepa_public,
`metamotivo/agents/td_jepa/`) learns from reward-free transitions (s, a, s', terminated)
a state encoder φ: S → ℝ^{dφ}, a task encoder ψ: S → ℝ^{dψ} and two predictors
conditioned on a task latent z ∈ ℝ^{dψ} (on the sphere of radius sqrt(dψ)), trained by
temporal differences in latent space against EMA targets (bars):

    L(φ, T_φ) = E ‖ T_φ(φ(s), a, z) − ψ̄(s') − γ (1 − term) T̄_φ(φ̄(s'), a', z) ‖²
    L(ψ, T_ψ) = E ‖ T_ψ(ψ(s), a, z) − φ̄(s') − γ (1 − term) T̄_ψ(ψ̄(s'), a', z) ‖²

with a' ~ π_z(φ̄(s')) (the current actor on the target encoding of s'). At the fixed
point T_φ(φ(s), a, z) = F^{π_z}(s, a) = E[Σ_k γ^k ψ(s_{t+k+1}) | s, a], the successor
features of ψ (of *next* states), so for a reward r(s') = ψ(s')ᵀz the action value is
Q_z(s, a) = T_φ(φ(s), a, z)ᵀz. The symmetric variant uses ψ ≡ φ and one predictor.
An orthonormality term on each encoder's batch of encodings keeps them from collapsing
(`orthonormality_loss`). The actor maximises Q_z (TD3-style, `td_jepa_actor_loss`); a task
given only at test time is a latent z: least squares of its rewards on ψ(s')
(`infer_task_latent`) or the encoding of a goal (`goal_task_latent`), both projected to
the sphere.

Array-level pieces (`td_jepa_target`, `prediction_loss`, `ensemble_reduce`, ...) take
encodings and predictions; `td_jepa_loss` and `td_jepa_actor_loss` take a `Networks` of pure
apply functions and their parameters, so any network library fits. Ensembles are a
leading axis E on the predictions ([E, B, d]); the official code uses E = 2.

Conventions from the official code: terminations (never time-limit truncations) cut the
bootstrap; the TD target uses the ensemble mean (minus `pessimism` × the mean pairwise
absolute difference, 0 by default); encoders end with a projection to the sphere
(`project_to_sphere`), which makes the diagonal of the orthonormality loss constant.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import _checks

Array = jax.Array
PyTree = Any

ARXIV = "https://arxiv.org/abs/2510.00739"


def project_to_sphere(z: Array, eps: float = 1e-12) -> Array:
  """Scales each vector to the sphere of radius sqrt(d): sqrt(d) · z / max(‖z‖, eps).

  The task latents, the inferred and goal latents and the encoders' outputs all live
  on this sphere (official `project_z`, `Norm`); https://arxiv.org/abs/2510.00739.

  Args:
    z: [..., d] vectors.
    eps: lower bound on the norm (a zero vector stays zero).

  Returns:
    [..., d], float32.
  """
  z = _checks.as_float(z)
  _checks.check_rank("project_to_sphere", "z", z, range(1, 16), "[..., d]")
  d = z.shape[-1]
  norm = jnp.sqrt(jnp.sum(z * z, -1, keepdims=True))
  return np.sqrt(d).astype(np.float32) * z / jnp.maximum(norm, eps)


def orthonormality_loss(e: Array) -> tuple[Array, Array, Array]:
  """Decorrelation of a batch of encodings e_1..e_B (the anti-collapse term).

      L = (1 / (2 B (B − 1))) Σ_{i≠j} (e_iᵀ e_j)²  −  (1 / B) Σ_i e_iᵀ e_i

  (official `_orth_loss`; https://arxiv.org/abs/2510.00739). With encodings on the
  sphere the second (diagonal) term is the constant −d and only the first acts.

  The off-diagonal sum is computed as ‖EᵀE‖²_F − Σ_i (e_iᵀe_i)² (the two equal
  ‖EEᵀ‖²_F minus its diagonal), which costs B·d² instead of the B²·d of the B×B Gram
  matrix the official code builds: at its DMC sizes (B = 1024, d = 50) 20x fewer
  multiply-adds, and no B×B mask baked into the compiled program.

  Args:
    e: [B, d] encodings, B >= 2.

  Returns:
    (total, diag, offdiag): [] float32 each, total = offdiag + diag.
  """
  e = _checks.as_float(e)
  _checks.check_rank("orthonormality_loss", "e", e, 2, "[B, d]")
  b = e.shape[0]
  if b < 2:
    raise ValueError(f"orthonormality_loss: `e` needs a batch of at least 2 encodings, "
                     f"got shape {e.shape}.")
  sq_norms = jnp.sum(e * e, -1)                       # [B] diagonal of E Eᵀ
  gram = e.T @ e                                      # [d, d]
  off_sq = jnp.sum(gram * gram) - jnp.sum(sq_norms * sq_norms)
  offdiag = 0.5 * off_sq / (b * (b - 1))
  diag = -jnp.mean(sq_norms)
  return offdiag + diag, diag, offdiag


def sample_task_latents(key: Array, goal_encodings: Array, goal_ratio=0.5,
                        cov_inv: Optional[Array] = None) -> Array:
  """Training task latents: Gaussian directions mixed with encoded goals.

      z_i = sqrt(d) · normalize(N(0, I))                       with prob. 1 − goal_ratio
      z_i = sqrt(d) · normalize(ψ(s'_{σ(i)}) [· C⁻¹])          with prob. goal_ratio

  σ a random permutation of the batch (official `sample_mixed_z`, `train_goal_ratio`;
  `cov_inv` is its optional whitening by the running covariance, `scale_train_goals`).
  https://arxiv.org/abs/2510.00739.

  Args:
    key: PRNG key.
    goal_encodings: [B, d] task encodings ψ(s') of the batch's next states (their
      gradient is stopped).
    goal_ratio: [] probability of a goal latent (traced).
    cov_inv: optional [d, d] whitening matrix applied to the goal encodings.

  Returns:
    [B, d] latents on the sphere of radius sqrt(d).
  """
  fn = "sample_task_latents"
  goals = jax.lax.stop_gradient(_checks.as_float(goal_encodings))
  _checks.check_rank(fn, "goal_encodings", goals, 2, "[B, d]")
  b, d = goals.shape
  _checks.check_range(fn, "goal_ratio", goal_ratio, 0.0, 1.0)
  k_gauss, k_perm, k_mix = jax.random.split(key, 3)
  z = project_to_sphere(jax.random.normal(k_gauss, (b, d)))
  goals = goals[jax.random.permutation(k_perm, b)]
  if cov_inv is not None:
    _checks.check_shape(fn, "cov_inv", cov_inv, (d, d))
    goals = goals @ _checks.as_float(cov_inv)
  use_goal = jax.random.uniform(k_mix, (b, 1)) < goal_ratio
  return jnp.where(use_goal, project_to_sphere(goals), z)


def ensemble_reduce(predictions: Array, pessimism=0.0) -> tuple[Array, Array, Array]:
  """Mean, uncertainty and pessimistic value of an ensemble axis (the leading one).

      mean = (1/E) Σ_k p_k,   unc = (1/(E² − E)) Σ_{k≠l} |p_k − p_l|,
      value = mean − pessimism · unc

  (official `get_targets_uncertainty`: the uncertainty is the mean pairwise absolute
  difference, not a standard deviation). https://arxiv.org/abs/2510.00739.

  Args:
    predictions: [E, ...] with E >= 2 (E = 1: unc = 0).
    pessimism: [] coefficient (traced).

  Returns:
    (mean, unc, value), each [...].
  """
  p = _checks.as_float(predictions)
  _checks.check_rank("ensemble_reduce", "predictions", p, range(1, 16), "[E, ...]")
  e = p.shape[0]
  mean = jnp.mean(p, 0)
  if e == 1:
    unc = jnp.zeros_like(mean)
  else:
    unc = jnp.sum(jnp.abs(p[:, None] - p[None, :]), (0, 1)) / (e * e - e)
  return mean, unc, mean - pessimism * unc


def td_jepa_target(next_encoding: Array, next_predictions: Array, terminated: Array, gamma,
              pessimism=0.0) -> Array:
  """The TD-JEPA regression target, without gradient.

      y = ē(s') + γ (1 − terminated) · reduce_E T̄(·(s'), a', z)

  `next_encoding` is the target encoding the predictor regresses onto (ψ̄(s') for T_φ,
  φ̄(s') for T_ψ), `next_predictions` the target predictor's ensemble at s' with the
  next action. Only true terminations cut the bootstrap: a time-limit truncation is a
  non-terminal transition. https://arxiv.org/abs/2510.00739.

  Args:
    next_encoding: [B, d].
    next_predictions: [E, B, d].
    terminated: [B] bool (or 0/1).
    gamma: [] discount (traced).
    pessimism: [] ensemble pessimism (`ensemble_reduce`).

  Returns:
    [B, d] float32, `stop_gradient`-ed.
  """
  fn = "td_jepa_target"
  y = _checks.as_float(next_encoding)
  _checks.check_rank(fn, "next_encoding", y, 2, "[B, d]")
  _checks.check_rank(fn, "next_predictions", next_predictions, 3, "[E, B, d]")
  _checks.check_shape(fn, "next_predictions", next_predictions,
                      np.shape(next_predictions)[:1] + y.shape, "[E, B, d]")
  _checks.check_shape(fn, "terminated", terminated, y.shape[:1], "[B]")
  _checks.check_range(fn, "gamma", gamma, 0.0, 1.0)
  _, _, boot = ensemble_reduce(next_predictions, pessimism)
  cont = 1.0 - _checks.as_bool(terminated).astype(jnp.float32)
  return jax.lax.stop_gradient(y + gamma * cont[:, None] * boot)


def prediction_loss(predictions: Array, targets: Array, weights: Optional[Array] = None) -> Array:
  """Squared TD error summed over the latent dimension, averaged over E and B.

      L = (1/E) Σ_k  Σ_i w_i ‖ p_{k,i} − y_i ‖²  /  Σ_i w_i      (w = 1 by default)

  Args:
    predictions: [E, B, d] predictor outputs.
    targets: [B, d] (`td_jepa_target`).
    weights: optional [B] non-negative weights (a validity mask, or sampling weights).

  Returns:
    [] float32.
  """
  fn = "prediction_loss"
  p = _checks.as_float(predictions)
  _checks.check_rank(fn, "predictions", p, 3, "[E, B, d]")
  _checks.check_shape(fn, "targets", targets, p.shape[1:], "[B, d]")
  err = jnp.sum((p - _checks.as_float(targets)[None]) ** 2, -1)   # [E, B]
  if weights is None:
    return jnp.mean(err)
  _checks.check_shape(fn, "weights", weights, p.shape[1:2], "[B]")
  w = _checks.as_float(weights)
  return jnp.sum(jnp.mean(err, 0) * w) / jnp.maximum(jnp.sum(w), 1e-12)


def latent_q(predictions: Array, z: Array, pessimism=0.0) -> Array:
  """Zero-shot action values Q_z = reduce_E T_φ(φ(s), a, z)ᵀ z
  (https://arxiv.org/abs/2510.00739: T_φ approximates the successor features of ψ, so
  this is the value of the reward r(s') = ψ(s')ᵀz).

  Args:
    predictions: [E, ..., d] the φ-predictor's ensemble outputs.
    z: [..., d] task latents (broadcast against the predictions without E).
    pessimism: [] ensemble pessimism (0: the mean, as the official actor).

  Returns:
    [...] float32.
  """
  p = _checks.as_float(predictions)
  _checks.check_rank("latent_q", "predictions", p, range(2, 16), "[E, ..., d]")
  _checks.check_broadcastable("latent_q", "z", z, p.shape[1:])
  z = jnp.broadcast_to(_checks.as_float(z), p.shape[1:])
  q = jnp.sum(p * z[None], -1)                               # [E, ...]
  return ensemble_reduce(q, pessimism)[2]


class Networks(NamedTuple):
  """Pure apply functions of a TD-JEPA model (any network library).

  Attributes:
    phi: (params, obs [B, ...]) -> [B, dφ] state encodings φ(s).
    psi: (params, obs) -> [B, dψ] task encodings ψ(s); None for the symmetric variant
      (ψ ≡ φ, one predictor).
    phi_predictor: (params, φ [B, dφ], action [B, ...], z [B, dψ]) -> [E, B, dψ].
    psi_predictor: (params, ψ [B, dψ], action, z) -> [E, B, dφ]; None when symmetric.
  """
  phi: Callable
  psi: Optional[Callable]
  phi_predictor: Callable
  psi_predictor: Optional[Callable]

  @property
  def symmetric(self) -> bool:
    return self.psi is None


class Batch(NamedTuple):
  """Reward-free transitions: what `td_jepa_loss` reads."""
  obs: Array         # [B, ...]
  action: Array      # [B, ...]
  next_obs: Array    # [B, ...] the true next observation (never a reset one)
  terminated: Array  # [B] bool: true terminations only


def td_jepa_loss(networks: Networks, params: dict, target_params: dict, batch: Batch,
                 z: Array, next_action: Array, gamma, phi_ortho=1.0, psi_ortho=1.0,
                 pessimism=0.0, weights: Optional[Array] = None) -> tuple[Array, dict]:
  """The TD-JEPA loss (asymmetric, or symmetric when `networks.psi is None`).

  Asymmetric (official `update_tdjepa_asym`):

      L = ‖T_φ(φ(s), a, z) − ψ̄(s') − γ(1−term) T̄_φ(φ̄(s'), a', z)‖²
        + ‖T_ψ(ψ(s), a, z) − φ̄(s') − γ(1−term) T̄_ψ(ψ̄(s'), a', z)‖²
        + phi_ortho · L_ortho(φ(s)) + psi_ortho · L_ortho(ψ(s))

  Symmetric (`update_tdjepa_sym`): ψ ≡ φ, one predictor,
  L = ‖T_φ(φ(s), a, z) − φ̄(s') − γ(1−term) T̄_φ(φ̄(s'), a', z)‖² + phi_ortho · L_ortho(φ(s)).

  Bars are the EMA target parameters (no gradient flows into them); squared errors
  are summed over the latent dimension and averaged over ensemble and batch.
  https://arxiv.org/abs/2510.00739.

  Args:
    networks: the apply functions.
    params: dict with "phi", "phi_predictor" (and "psi", "psi_predictor" unless
      symmetric): online parameters.
    target_params: the same keys, EMA targets.
    batch: `Batch` of B transitions.
    z: [B, dψ] task latents (`sample_task_latents`).
    next_action: [B, ...] a' at s' (the caller samples it from the actor on φ̄(s'),
      or from a fixed policy).
    gamma: [] discount (traced).
    phi_ortho, psi_ortho: [] orthonormality coefficients (traced).
    pessimism: [] ensemble pessimism of the targets.
    weights: optional [B] weights of the transitions.

  Returns:
    (loss [], aux dict: phi_loss, psi_loss, phi_ortho_loss, psi_ortho_loss,
    phi_ortho_offdiag, psi_ortho_offdiag, phi_encoding, psi_encoding (the online
    encodings of s, [B, d], for statistics and goal sampling)).
  """
  fn = "td_jepa_loss"
  b = np.shape(batch.obs)[0]
  _checks.check_shape(fn, "batch.terminated", batch.terminated, (b,), "[B]")
  _checks.check_rank(fn, "z", z, 2, "[B, dψ]")
  if np.shape(z)[0] != b or np.shape(next_action)[0] != b or np.shape(batch.next_obs)[0] != b:
    raise ValueError(f"{fn}: `z`, `next_action` and `batch.next_obs` need the batch size "
                     f"B = {b} of `batch.obs`, got {np.shape(z)}, {np.shape(next_action)}, "
                     f"{np.shape(batch.next_obs)}.")
  tp = jax.lax.stop_gradient(target_params)
  phi_next = networks.phi(tp["phi"], batch.next_obs)
  phi = networks.phi(params["phi"], batch.obs)
  phi_pred = networks.phi_predictor(params["phi_predictor"], phi, batch.action, z)
  phi_pred_next = networks.phi_predictor(tp["phi_predictor"], phi_next, next_action, z)
  phi_ortho_loss, _, phi_off = orthonormality_loss(phi)
  if networks.symmetric:
    target = td_jepa_target(phi_next, phi_pred_next, batch.terminated, gamma, pessimism)
    phi_loss = prediction_loss(phi_pred, target, weights)
    loss = phi_loss + phi_ortho * phi_ortho_loss
    aux = dict(phi_loss=phi_loss, phi_ortho_loss=phi_ortho_loss, phi_ortho_offdiag=phi_off,
               phi_encoding=phi, psi_encoding=phi)
    return loss, aux
  psi_next = networks.psi(tp["psi"], batch.next_obs)
  psi = networks.psi(params["psi"], batch.obs)
  psi_pred = networks.psi_predictor(params["psi_predictor"], psi, batch.action, z)
  psi_pred_next = networks.psi_predictor(tp["psi_predictor"], psi_next, next_action, z)
  term = batch.terminated
  phi_target = td_jepa_target(psi_next, phi_pred_next, term, gamma, pessimism)
  psi_target = td_jepa_target(phi_next, psi_pred_next, term, gamma, pessimism)
  phi_loss = prediction_loss(phi_pred, phi_target, weights)
  psi_loss = prediction_loss(psi_pred, psi_target, weights)
  psi_ortho_loss, _, psi_off = orthonormality_loss(psi)
  loss = phi_loss + psi_loss + phi_ortho * phi_ortho_loss + psi_ortho * psi_ortho_loss
  aux = dict(phi_loss=phi_loss, psi_loss=psi_loss, phi_ortho_loss=phi_ortho_loss,
             psi_ortho_loss=psi_ortho_loss, phi_ortho_offdiag=phi_off,
             psi_ortho_offdiag=psi_off, phi_encoding=phi, psi_encoding=psi)
  return loss, aux


def noisy_action(mean: Array, key: Array, noise_std=0.2, noise_clip=0.3,
                 low: float = -1.0, high: float = 1.0, eps: float = 1e-6) -> Array:
  """TD3-style exploration of a deterministic actor: clipped Gaussian noise, then a
  clamp to (low, high) whose gradient passes straight through.

      a = clamp(μ + clip(σ ε, −c, c), low + eps, high − eps),  ε ~ N(0, I)

  (official `TruncatedNormal.sample(clip=stddev_clip)`). https://arxiv.org/abs/2510.00739.

  Args:
    mean: [..., da] actor means μ in [low, high].
    key: PRNG key.
    noise_std: [] σ (official `actor_std` 0.2).
    noise_clip: [] c (official `stddev_clip` 0.3).
    low, high: the action box.
    eps: margin inside the box.

  Returns:
    [..., da] actions (differentiable in `mean`).
  """
  mean = _checks.as_float(mean)
  noise = jnp.clip(noise_std * jax.random.normal(key, mean.shape), -noise_clip, noise_clip)
  a = mean + noise
  return a + jax.lax.stop_gradient(jnp.clip(a, low + eps, high - eps) - a)


def td_jepa_actor_loss(actor: Callable, actor_params: PyTree, phi_predictor: Callable,
               predictor_params: PyTree, phi_encoding: Array, z: Array, key: Array,
               noise_std=0.2, noise_clip=0.3, pessimism=0.0) -> tuple[Array, Array]:
  """TD3-style latent actor loss: L = − mean_i Q_z(s_i, â_i), â ~ π(·|φ(s), z).

      Q_z(s, a) = reduce_E T_φ(φ(s), a, z)ᵀ z,   â = `noisy_action`(actor(φ(s), z))

  The encoding is held fixed (the actor does not train the encoder; official
  `update_actor` with `actor_use_full_encoder=True`). Differentiate with respect to
  `actor_params` only. https://arxiv.org/abs/2510.00739.

  Args:
    actor: (params, φ [B, dφ], z [B, dψ]) -> [B, da] mean actions in [−1, 1].
    actor_params: the actor's parameters.
    phi_predictor: the `Networks.phi_predictor` apply function.
    predictor_params: its (online) parameters.
    phi_encoding: [B, dφ] φ(s) (its gradient is stopped here).
    z: [B, dψ] task latents.
    key: PRNG key of the action noise.
    noise_std, noise_clip: see `noisy_action`.
    pessimism: [] ensemble pessimism of Q (official `actor_pessimism_penalty`, 0).

  Returns:
    (loss [], mean Q []).
  """
  fn = "td_jepa_actor_loss"
  phi = jax.lax.stop_gradient(_checks.as_float(phi_encoding))
  _checks.check_rank(fn, "phi_encoding", phi, 2, "[B, dφ]")
  _checks.check_rank(fn, "z", z, 2, "[B, dψ]")
  if np.shape(z)[0] != phi.shape[0]:
    raise ValueError(f"{fn}: `z` needs the batch size {phi.shape[0]} of `phi_encoding`, "
                     f"got {np.shape(z)}.")
  a = noisy_action(actor(actor_params, phi, z), key, noise_std, noise_clip)
  q = latent_q(phi_predictor(predictor_params, phi, a, z), z, pessimism)
  return -jnp.mean(q), jnp.mean(q)


def ema_update(target: PyTree, online: PyTree, tau) -> PyTree:
  """Polyak averaging of target parameters: θ̄ ← (1 − τ) θ̄ + τ θ (official
  `_soft_update_params`, τ = `encoder_target_tau` / `predictor_target_tau`;
  https://arxiv.org/abs/2510.00739).

  Args:
    target: pytree of target parameters.
    online: pytree of the same structure.
    tau: [] step size in [0, 1] (traced).

  Returns:
    The new target pytree.
  """
  _checks.check_range("ema_update", "tau", tau, 0.0, 1.0)
  if jax.tree.structure(target) != jax.tree.structure(online):
    raise ValueError("ema_update: `target` and `online` must have the same pytree "
                     "structure.")
  return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def update_covariance(cov: Array, encodings: Array, momentum=0.995) -> Array:
  """Running second moment of the task encodings, C ← m C + (1 − m) ψᵀψ / B
  (official `_update_z_stats`; used for whitening goal latents and for statistics;
  https://arxiv.org/abs/2510.00739).

  Args:
    cov: [d, d].
    encodings: [B, d].
    momentum: [] m.

  Returns:
    [d, d].
  """
  e = _checks.as_float(encodings)
  _checks.check_rank("update_covariance", "encodings", e, 2, "[B, d]")
  _checks.check_shape("update_covariance", "cov", cov, (e.shape[1],) * 2, "[d, d]")
  return momentum * cov + (1.0 - momentum) * (e.T @ e) / e.shape[0]


def effective_rank(encodings: Array) -> Array:
  """Participation ratio of the encodings' second moment C = EᵀE / B:
  tr(C)² / ‖C‖²_F, between 1 (all encodings on one line: collapse) and d (C ∝ I).

  A LAPACK-free collapse statistic (no eigendecomposition), safe under `vmap` on CPU;
  the official code logs the eigenvalue ratio of the ψ covariance for the same purpose
  (https://arxiv.org/abs/2510.00739).

  Args:
    encodings: [B, d].

  Returns:
    [] float32.
  """
  e = _checks.as_float(encodings)
  _checks.check_rank("effective_rank", "encodings", e, 2, "[B, d]")
  c = e.T @ e / e.shape[0]
  return jnp.trace(c) ** 2 / jnp.maximum(jnp.sum(c * c), 1e-30)


def infer_task_latent(psi_next: Array, rewards: Array, weights: Optional[Array] = None,
                      ridge: float = 0.0, iterations: Optional[int] = None) -> Array:
  """Zero-shot task latent of a reward: least squares on next-state task encodings,
  projected to the sphere.

      z_r = sqrt(d) · normalize( argmin_z Σ_i w_i (r_i − ψ(s'_i)ᵀ z)² + ridge ‖z‖² )

  Regress on ψ of the *next* states (the TD target's features; ψ(s) is off by one).
  Without the projection Q scales with ‖z‖ and the policies, trained on the sphere, are
  out of distribution. https://arxiv.org/abs/2510.00739 (official `reward_inference`).

  The normal equations are solved by conjugate gradients
  (`jax.scipy.sparse.linalg.cg`, plain XLA ops) rather than `jnp.linalg.lstsq`: LAPACK
  kernels under `vmap` can deadlock XLA:CPU's thread pool (see
  `rlcore.nets.initializers`), and the runner vmaps seeds.

  Args:
    psi_next: [N, d] ψ(s') of labelled transitions.
    rewards: [N] rewards r(s').
    weights: optional [N] non-negative weights (a validity mask).
    ridge: Tikhonov term (0: plain least squares).
    iterations: CG iterations (default 4 d).

  Returns:
    [d] float32 on the sphere of radius sqrt(d).
  """
  fn = "infer_task_latent"
  x = _checks.as_float(psi_next)
  _checks.check_rank(fn, "psi_next", x, 2, "[N, d]")
  _checks.check_shape(fn, "rewards", rewards, x.shape[:1], "[N]")
  r = _checks.as_float(rewards)
  if weights is not None:
    _checks.check_shape(fn, "weights", weights, x.shape[:1], "[N]")
    w = _checks.as_float(weights)
  else:
    w = jnp.ones_like(r)
  d = x.shape[1]
  xw = x * w[:, None]
  gram = x.T @ xw / jnp.maximum(jnp.sum(w), 1e-12)
  rhs = xw.T @ r / jnp.maximum(jnp.sum(w), 1e-12)
  scale = jnp.trace(gram) / d
  gram = gram + ridge * jnp.eye(d)
  sol, _ = jax.scipy.sparse.linalg.cg(
      lambda v: gram @ v, rhs, tol=1e-7, atol=1e-10 * scale,
      maxiter=int(iterations or 4 * d))
  return project_to_sphere(sol)


def goal_task_latent(psi_goal: Array) -> Array:
  """The task latent of reaching a goal g: z = sqrt(d) · normalize(ψ(g)), the reward
  r(s') = ψ(s')ᵀz peaking at s' = g (https://arxiv.org/abs/2510.00739).

  Args:
    psi_goal: [..., d] task encodings of goal observations.

  Returns:
    [..., d].
  """
  return project_to_sphere(psi_goal)
