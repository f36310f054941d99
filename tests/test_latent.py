"""rlcore.latent (TD-JEPA): each piece against numpy, the tabular fixed point against
exact successor features and policy evaluation, and collapse without the orthonormality
term."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rlcore import latent
from rlcore.envs import tabular
from tests.helpers import assert_close, check_jit_and_vmap


# ---------------------------------------------------------------- numpy references

def ref_project(z):
  z = np.asarray(z, np.float64)
  return np.sqrt(z.shape[-1]) * z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


def ref_ortho(e):
  """The official form: the B x B Gram matrix and its off-diagonal mask."""
  e = np.asarray(e, np.float64)
  b = e.shape[0]
  cov = e @ e.T
  off = 1.0 - np.eye(b)
  diag = -np.mean(np.diag(cov))
  offdiag = 0.5 * np.sum((cov * off) ** 2) / off.sum()
  return np.array([offdiag + diag, diag, offdiag])


def ref_reduce(p, pessimism):
  p = np.asarray(p, np.float64)
  e = p.shape[0]
  mean = p.mean(0)
  unc = sum(np.abs(p[k] - p[l]) for k in range(e) for l in range(e) if k != l) / (e * e - e)
  return np.stack([mean, unc, mean - pessimism * unc])


def ref_target(next_enc, next_preds, terminated, gamma, pessimism):
  boot = ref_reduce(next_preds, pessimism)[2]
  return next_enc + gamma * (1.0 - terminated)[:, None] * boot


def ref_prediction_loss(preds, targets, weights):
  err = ((preds - targets[None]) ** 2).sum(-1).mean(0)
  return np.sum(err * weights) / np.sum(weights)


# ---------------------------------------------------------------- array pieces

def test_project_to_sphere_matches_reference():
  rng = np.random.default_rng(0)
  z = rng.normal(size=(3, 5, 7)).astype(np.float32)
  out = check_jit_and_vmap(latent.project_to_sphere, ref_project, (z,))
  assert_close(np.linalg.norm(out, axis=-1), np.sqrt(7) * np.ones((3, 5)), rtol=1e-5)
  assert np.all(np.asarray(latent.project_to_sphere(jnp.zeros((2, 4)))) == 0.0)


def test_orthonormality_loss_matches_the_gram_form():
  rng = np.random.default_rng(1)
  e = rng.normal(size=(3, 33, 6)).astype(np.float32) * 2
  check_jit_and_vmap(lambda x: jnp.stack(latent.orthonormality_loss(x)), ref_ortho, (e,),
                     rtol=1e-4, atol=1e-4)
  # On the sphere the diagonal term is the constant -d; orthonormal codes have offdiag 0.
  codes = np.sqrt(4) * np.eye(4, dtype=np.float32)
  total, diag, off = latent.orthonormality_loss(codes)
  assert_close(diag, -4.0) and assert_close(off, 0.0)
  with pytest.raises(ValueError, match="at least 2"):
    latent.orthonormality_loss(np.ones((1, 3)))


def test_ensemble_reduce_uses_the_mean_pairwise_absolute_difference():
  rng = np.random.default_rng(2)
  p = rng.normal(size=(4, 3, 5, 2)).astype(np.float32)   # V=4 examples, E=3
  check_jit_and_vmap(lambda x, c: jnp.stack(latent.ensemble_reduce(x, c)), ref_reduce,
                     (p, np.array([0.0, 0.5, 1.0, 2.0], np.float32)))
  # Two members: the uncertainty is |p1 - p2| (not a standard deviation).
  two = jnp.array([[1.0, 2.0], [3.0, -2.0]])
  _, unc, _ = latent.ensemble_reduce(two)
  assert_close(unc, [2.0, 4.0])


def test_td_target_matches_reference_and_terminations_cut_the_bootstrap():
  rng = np.random.default_rng(3)
  v, e, b, d = 3, 2, 6, 4
  args = (rng.normal(size=(v, b, d)).astype(np.float32),
          rng.normal(size=(v, e, b, d)).astype(np.float32),
          (rng.random((v, b)) < 0.4),
          np.array([0.9, 0.99, 0.5], np.float32), np.array([0.0, 0.3, 1.0], np.float32))
  check_jit_and_vmap(latent.td_jepa_target, ref_target, args)
  nxt, preds = args[0][0], args[1][0]
  term = np.array([True, False, True, False, False, False])
  y = np.asarray(latent.td_jepa_target(nxt, preds, term, 0.9))
  assert_close(y[term], nxt[term])                                  # no bootstrap
  assert_close(y[~term], nxt[~term] + 0.9 * preds.mean(0)[~term])   # bootstrap
  # No gradient reaches the target's inputs.
  g = jax.grad(lambda x: latent.td_jepa_target(x, preds, term, 0.9).sum())(nxt)
  assert np.all(np.asarray(g) == 0)


def test_prediction_loss_matches_reference_with_weights():
  rng = np.random.default_rng(4)
  v, e, b, d = 3, 2, 7, 5
  args = (rng.normal(size=(v, e, b, d)).astype(np.float32),
          rng.normal(size=(v, b, d)).astype(np.float32),
          rng.random((v, b)).astype(np.float32))
  check_jit_and_vmap(latent.prediction_loss, ref_prediction_loss, args)
  assert_close(latent.prediction_loss(args[0][0], args[1][0]),
               ref_prediction_loss(args[0][0], args[1][0], np.ones(b)))


def test_sample_task_latents_mixes_gaussian_and_goal_latents():
  rng = np.random.default_rng(5)
  b, d = 4000, 6
  goals = rng.normal(size=(b, d)).astype(np.float32) * 3
  z = np.asarray(latent.sample_task_latents(jax.random.PRNGKey(0), goals, 0.3))
  assert_close(np.linalg.norm(z, axis=1), np.full(b, np.sqrt(d)), rtol=1e-5)
  proj = ref_project(goals)
  # A latent is a goal when it equals some projected goal (matched by its first
  # coordinate, then checked whole).
  order = np.argsort(proj[:, 0])
  pos = np.clip(np.searchsorted(proj[order, 0], z[:, 0]), 0, b - 1)
  cand = np.stack([order[np.clip(pos + k, 0, b - 1)] for k in (-1, 0, 1)], 1)
  is_goal = np.isclose(z[:, None, :], proj[cand], atol=1e-5).all(-1).any(1)
  assert abs(is_goal.mean() - 0.3) < 0.03
  # Ratio 1: every latent is a (permuted) projected goal, each used once.
  z1 = np.asarray(latent.sample_task_latents(jax.random.PRNGKey(1), goals[:50], 1.0))
  order = lambda x: x[np.lexsort(x.T)]
  assert_close(order(z1), order(proj[:50]), atol=1e-5)
  # Ratio 0: Gaussian directions, none a goal; isotropic second moment.
  z0 = np.asarray(latent.sample_task_latents(jax.random.PRNGKey(2), goals, 0.0))
  assert not np.isclose(z0[:500, None, :], proj[None, :50, :], atol=1e-4).all(-1).any()
  assert_close(z0.T @ z0 / b, np.eye(d), atol=0.12)
  # Whitening multiplies the goals by cov_inv before projecting.
  w = np.diag(np.arange(1, d + 1)).astype(np.float32)
  zw = np.asarray(latent.sample_task_latents(jax.random.PRNGKey(1), goals[:50], 1.0, w))
  assert_close(order(zw), order(ref_project(goals[:50] @ w)), atol=1e-5)
  with pytest.raises(ValueError, match="goal_ratio"):
    latent.sample_task_latents(jax.random.PRNGKey(0), goals, 1.5)


def test_sample_task_latents_under_jit_vmap():
  goals = jnp.asarray(np.random.default_rng(6).normal(size=(3, 64, 4)), jnp.float32)
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  ratios = jnp.array([0.0, 0.5, 1.0])
  z = jax.jit(jax.vmap(latent.sample_task_latents))(keys, goals, ratios)
  for i in range(3):
    assert_close(z[i], latent.sample_task_latents(keys[i], goals[i], ratios[i]), atol=1e-6)


def test_infer_task_latent_is_projected_least_squares():
  rng = np.random.default_rng(7)
  v, n, d = 3, 400, 8
  x = rng.normal(size=(v, n, d)).astype(np.float32)
  r = (x @ rng.normal(size=(v, d, 1)))[..., 0] + 0.1 * rng.normal(size=(v, n))
  w = (rng.random((v, n)) < 0.8).astype(np.float32)

  def ref(xi, ri, wi):
    keep = wi > 0
    sol = np.linalg.lstsq(xi[keep].astype(np.float64), ri[keep], rcond=None)[0]
    return ref_project(sol)

  check_jit_and_vmap(latent.infer_task_latent, ref, (x, r.astype(np.float32), w),
                     rtol=1e-4, atol=1e-4)
  # A reward that is exactly ψ(s')ᵀz* recovers z* on the sphere.
  z_star = ref_project(rng.normal(size=d))
  assert_close(latent.infer_task_latent(x[0], x[0] @ z_star), z_star, atol=1e-4)


def test_ema_update_and_covariance():
  rng = np.random.default_rng(8)
  t = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
  o = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
  new = latent.ema_update(t, o, 0.01)
  assert_close(new["w"], 0.99 * t["w"] + 0.01 * o["w"])
  assert_close(latent.ema_update(t, o, 1.0)["b"], o["b"])
  with pytest.raises(ValueError, match="structure"):
    latent.ema_update(t, {"w": o["w"]}, 0.1)
  e = rng.normal(size=(10, 3)).astype(np.float32)
  c = np.eye(3, dtype=np.float32)
  assert_close(latent.update_covariance(c, e, 0.9), 0.9 * c + 0.1 * e.T @ e / 10, rtol=1e-5)


def test_effective_rank_between_collapse_and_isotropy():
  rng = np.random.default_rng(9)
  assert_close(latent.effective_rank(np.sqrt(5) * np.eye(5)), 5.0)
  line = np.outer(rng.normal(size=40), rng.normal(size=5))
  assert_close(latent.effective_rank(line), 1.0, rtol=1e-5)
  iso = latent.project_to_sphere(rng.normal(size=(20000, 5)))
  assert float(latent.effective_rank(iso)) > 4.9


def test_noisy_action_clips_noise_and_passes_gradients_straight_through():
  mean = jnp.array([[0.0, 0.99], [-0.5, 0.2]])
  a = latent.noisy_action(jnp.broadcast_to(mean, (5000, 2, 2)), jax.random.PRNGKey(0), 0.2, 0.3)
  noise = np.asarray(a) - np.asarray(mean)
  assert np.abs(noise).max() <= 0.3 + 1e-6
  assert np.asarray(a).max() < 1.0                      # clamped inside the box
  assert 0.15 < np.std(noise[:, 0, 0]) < 0.2             # clipped N(0, 0.2²)
  g = jax.grad(lambda m: latent.noisy_action(m, jax.random.PRNGKey(1)).sum())(mean)
  assert_close(g, np.ones((2, 2)))


def test_actor_loss_trains_the_actor_toward_high_latent_q():
  """Q_z(s, a) = T(φ, a, z)ᵀz with T linear in a: the actor's gradient moves its mean
  along zᵀW, and no gradient reaches the encoding."""
  rng = np.random.default_rng(10)
  b, dphi, dz, da = 8, 3, 4, 2
  w = jnp.asarray(rng.normal(size=(2, da, dz)), jnp.float32)       # E = 2
  predictor = lambda p, phi, a, z: jnp.einsum("ba,ead->ebd", a, p)
  actor = lambda p, phi, z: jnp.tanh(phi @ p)
  phi = jnp.asarray(rng.normal(size=(b, dphi)), jnp.float32)
  z = latent.project_to_sphere(jnp.asarray(rng.normal(size=(b, dz)), jnp.float32))
  theta = jnp.zeros((dphi, da))
  loss_fn = lambda th, ph: latent.td_jepa_actor_loss(actor, th, predictor, w, ph, z,
                                                     jax.random.PRNGKey(0), 0.0)[0]
  g_theta, g_phi = jax.grad(loss_fn, argnums=(0, 1))(theta, phi)
  # d/dθ of −mean_b (tanh(φθ) · (W̄ z)) at θ = 0 is −φᵀ (W̄ z) / B.
  wz = np.einsum("ead,bd->bea", np.asarray(w), np.asarray(z)).mean(1)
  assert_close(g_theta, -np.asarray(phi).T @ wz / b, rtol=1e-5)
  assert np.all(np.asarray(g_phi) == 0)


def test_shape_errors_name_the_argument():
  with pytest.raises(ValueError, match="next_predictions"):
    latent.td_jepa_target(np.zeros((4, 3)), np.zeros((2, 4, 5)), np.zeros(4, bool), 0.9)
  with pytest.raises(ValueError, match="terminated"):
    latent.td_jepa_target(np.zeros((4, 3)), np.zeros((2, 4, 3)), np.zeros(5, bool), 0.9)
  with pytest.raises(ValueError, match="gamma"):
    latent.td_jepa_target(np.zeros((4, 3)), np.zeros((2, 4, 3)), np.zeros(4, bool), 1.5)
  with pytest.raises(ValueError, match="rewards"):
    latent.infer_task_latent(np.zeros((4, 3)), np.zeros(5))
  with pytest.raises(ValueError, match="targets"):
    latent.prediction_loss(np.zeros((2, 4, 3)), np.zeros((4, 2)))


# ---------------------------------------------------------------- tabular fixed point

S, A, E = 7, 2, 2


def _tabular_problem(seed=0, psi_dim=None):
  mdp = tabular.random_mdp(seed, S, A, terminal_fraction=0.3)
  rng = np.random.default_rng(seed + 100)
  policy = rng.dirichlet(np.ones(A), size=S)                       # π(a|s)
  psi_table = np.eye(S) if psi_dim is None else rng.normal(size=(S, psi_dim))
  # Every (s, a, s', a') with s non-terminal, weighted by P(s'|s,a) π(a'|s'): the
  # batch's weighted loss is the expected loss under uniform (s, a).
  idx = [(s, a, t, b) for s in range(S) if not mdp.terminal[s] for a in range(A)
         for t in range(S) for b in range(A)]
  s_, a_, t_, b_ = map(np.array, zip(*idx))
  weights = mdp.transitions[s_, a_, t_] * policy[t_, b_]
  batch = latent.Batch(obs=np.eye(S, dtype=np.float32)[s_], action=a_,
                       next_obs=np.eye(S, dtype=np.float32)[t_],
                       terminated=mdp.terminal[t_])
  return mdp, policy, psi_table, batch, b_, weights.astype(np.float32)


def _exact_successor_features(mdp, policy, psi_table, gamma):
  """F(s,a) = Σ_s' P(s'|s,a) [ψ(s') + γ (1 − term(s')) Σ_a' π(a'|s') F(s',a')], solved."""
  p, cont = mdp.transitions, 1.0 - mdp.terminal
  m = np.einsum("sat,t,tb->satb", p, cont, policy).reshape(S * A, S * A)
  f = np.linalg.solve(np.eye(S * A) - gamma * m, p.reshape(S * A, S) @ psi_table)
  return f.reshape(S, A, -1)


def _table(w, enc, a, z):
  """A tabular predictor: W[E, A, S, d] read at (one-hot state, action)."""
  return jnp.einsum("bs,ebsd->ebd", enc, w[:, a])


def _tabular_networks(symmetric):
  """One-hot φ and ψ (the observations are one-hot states), tabular predictors."""
  onehot = lambda p, obs: obs
  if symmetric:
    return latent.Networks(phi=onehot, psi=None, phi_predictor=_table, psi_predictor=None)
  return latent.Networks(phi=onehot, psi=onehot, phi_predictor=_table, psi_predictor=_table)


def _solve_fixed_point(networks, params, batch, next_action, weights, gamma, iters=3000):
  """Semi-gradient TD on the expected loss (target = online: τ = 1), plain GD."""
  z = jnp.zeros((batch.obs.shape[0], 3))

  def loss(p, target):
    return latent.td_jepa_loss(networks, p, target, batch, z, next_action, gamma, 0.0, 0.0,
                               weights=weights)[0]

  # Each (s, a) carries total weight 1 of Σw: this lr moves each entry half way to its
  # current target per step.
  lr = 0.5 * E * float(weights.sum()) / 2.0

  def step(_, p):
    g = jax.grad(loss)(p, p)
    return jax.tree.map(lambda x, gx: x - lr * gx, p, g)

  return jax.jit(lambda p: jax.lax.fori_loop(0, iters, step, p))(params)


@pytest.mark.parametrize("symmetric", [True, False])
def test_tabular_fixed_point_is_the_successor_features(symmetric):
  """With one-hot encoders and a fixed policy, TD-JEPA's fixed point is
  F = (I − γ P^π_c)⁻¹ P Ψ (state-action successor features of next states), and
  F(s, a)ᵀz is the exact Q^π of the reward r(s') = ψ(s')ᵀz."""
  gamma = 0.9
  mdp, policy, psi_table, batch, next_action, weights = _tabular_problem(0)
  nets = _tabular_networks(symmetric)
  rng = np.random.default_rng(0)
  w0 = lambda: jnp.asarray(rng.normal(size=(E, A, S, S)), jnp.float32)
  params = {"phi": {}, "phi_predictor": w0()}
  if not symmetric:
    params.update(psi={}, psi_predictor=w0())
  out = _solve_fixed_point(nets, params, batch, next_action, weights, gamma)
  f = _exact_successor_features(mdp, policy, psi_table, gamma)
  live = ~mdp.terminal
  for name in ("phi_predictor",) + (() if symmetric else ("psi_predictor",)):
    learned = np.asarray(out[name]).transpose(0, 2, 1, 3)          # [E, S, A, d]
    for k in range(E):
      assert_close(learned[k][live], f[live], rtol=1e-4, atol=1e-4, err_msg=name)
  # The state form of the issue: Σ_a π(a|s) F(s,a) = (I − γ P^π_c)⁻¹ P^π Ψ.
  p_pi = np.einsum("sa,sat->st", policy, mdp.transitions)
  m_state = np.linalg.solve(np.eye(S) - gamma * p_pi * (1 - mdp.terminal)[None], p_pi)
  assert_close(np.einsum("sa,sad->sd", policy, f)[live], m_state[live], rtol=1e-6)
  # Zero-shot Q for r(s') = ψ(s')ᵀz against exact policy evaluation.
  z = np.random.default_rng(1).normal(size=S)
  learned = np.asarray(out["phi_predictor"]).transpose(0, 2, 1, 3)
  q_zero_shot = np.asarray(latent.latent_q(jnp.asarray(learned), jnp.asarray(z, jnp.float32)))
  r_next = psi_table @ z
  cont = np.broadcast_to(1.0 - mdp.terminal, (S, S))
  v = tabular.policy_evaluation(p_pi, p_pi @ r_next, cont, gamma)
  q_exact = np.einsum("sat,t->sa", mdp.transitions, r_next + gamma * (1 - mdp.terminal) * v)
  assert_close(q_zero_shot[live], q_exact[live], rtol=1e-4, atol=1e-4)


def test_tabular_fixed_point_with_low_dimensional_task_features():
  """ψ(s) = Ψ[s] with d = 3 < S: T_φ on one-hot φ still reaches F = (I − γ M)⁻¹ P Ψ."""
  gamma = 0.8
  mdp, policy, psi_table, batch, next_action, weights = _tabular_problem(3, psi_dim=3)
  # The asymmetric form with a frozen linear ψ and a frozen (zero) ψ-predictor: only
  # T_φ learns, regressing onto ψ(s') + γ T_φ.
  psi = jnp.asarray(psi_table, jnp.float32)
  nets = latent.Networks(phi=lambda p, obs: obs, psi=lambda p, obs: obs @ psi,
                         phi_predictor=_table,
                         psi_predictor=lambda w, enc, a, z: jnp.zeros((E, enc.shape[0], S)))
  params = {"phi": {}, "psi": {}, "psi_predictor": {},
            "phi_predictor": jnp.zeros((E, A, S, 3), jnp.float32)}
  out = _solve_fixed_point(nets, params, batch, next_action, weights, gamma)
  f = _exact_successor_features(mdp, policy, psi_table, gamma)
  live = ~mdp.terminal
  learned = np.asarray(out["phi_predictor"]).transpose(0, 2, 1, 3)
  for k in range(E):
    assert_close(learned[k][live], f[live], rtol=1e-4, atol=1e-4)


def test_truncation_is_not_a_termination_in_the_loss():
  """The loss reads only `terminated`: marking time-limit cuts terminated (the bug) moves
  the fixed point away from the successor features."""
  gamma = 0.9
  mdp, policy, psi_table, batch, next_action, weights = _tabular_problem(0)
  nets = _tabular_networks(True)
  params = {"phi": {}, "phi_predictor": jnp.zeros((E, A, S, S), jnp.float32)}
  f = _exact_successor_features(mdp, policy, psi_table, gamma)
  live = ~mdp.terminal
  cut = batch._replace(terminated=np.ones_like(batch.terminated))   # every step "terminated"
  out = _solve_fixed_point(nets, params, cut, next_action, weights, gamma, iters=300)
  learned = np.asarray(out["phi_predictor"]).transpose(0, 2, 1, 3)[0]
  assert_close(learned[live], mdp.transitions[live], atol=1e-5)      # one-step features only
  assert np.abs(learned[live] - f[live]).max() > 0.2


# ---------------------------------------------------------------- collapse

def _collapse_runs(orthos, steps=2000, seed=0):
  """Linear encoders (projected to the sphere) and linear predictors on transitions of a
  random 30-state MDP with random actions, one run per orthonormality coefficient in
  `orthos` (vmapped: one compile): the effective ranks at the start and, per run, of the
  ψ and φ encodings at the end."""
  n_states, n_actions, d, b = 30, 3, 8, 128
  mdp = tabular.random_mdp(seed, n_states, n_actions, terminal_fraction=0.0)
  p_cum = jnp.asarray(np.cumsum(mdp.transitions, -1), jnp.float32)
  obs_table = jnp.asarray(np.random.default_rng(seed).normal(size=(n_states, 12)), jnp.float32)

  def enc(w, obs):
    return latent.project_to_sphere(obs @ w)

  def pred(w, e, a, z):
    x = jnp.concatenate([e, jax.nn.one_hot(a, n_actions), z], -1)
    return jnp.einsum("bi,eio->ebo", x, w)

  nets = latent.Networks(phi=enc, psi=enc, phi_predictor=pred, psi_predictor=pred)
  k = jax.random.split(jax.random.PRNGKey(seed), 4)
  params = {"phi": jax.random.normal(k[0], (12, d)) / 3,
            "psi": jax.random.normal(k[1], (12, d)) / 3,
            "phi_predictor": jax.random.normal(k[2], (E, 2 * d + n_actions, d)) * 0.1,
            "psi_predictor": jax.random.normal(k[3], (E, 2 * d + n_actions, d)) * 0.1}
  opt = optax.adam(3e-3)

  def step(carry, key, ortho):
    p, tp, o = carry
    ks, ka, kn, kt, kz = jax.random.split(key, 5)
    s = jax.random.randint(ks, (b,), 0, n_states)
    a = jax.random.randint(ka, (b,), 0, n_actions)
    t = jnp.sum(jax.random.uniform(kt, (b, 1)) > p_cum[s, a], -1).clip(0, n_states - 1)
    batch = latent.Batch(obs_table[s], a, obs_table[t], jnp.zeros(b, bool))
    z = latent.sample_task_latents(kz, enc(p["psi"], obs_table[t]), 0.5)
    na = jax.random.randint(kn, (b,), 0, n_actions)
    g, _ = jax.grad(latent.td_jepa_loss, argnums=1, has_aux=True)(
        nets, p, tp, batch, z, na, 0.9, ortho, ortho)
    u, o = opt.update(g, o, p)
    p = optax.apply_updates(p, u)
    return (p, latent.ema_update(tp, p, 0.05), o), None

  def run(ortho):
    (p, _, _), _ = jax.lax.scan(lambda c, key: step(c, key, ortho),
                                (params, params, opt.init(params)),
                                jax.random.split(k[0], steps))
    return (latent.effective_rank(enc(p["psi"], obs_table)),
            latent.effective_rank(enc(p["phi"], obs_table)))

  psi, phi = jax.jit(jax.vmap(run))(jnp.asarray(orthos, jnp.float32))
  return (float(latent.effective_rank(enc(params["psi"], obs_table))), np.asarray(psi),
          np.asarray(phi))


def test_encoders_collapse_without_the_orthonormality_term_and_not_with_it():
  """Effective rank (1: one direction, d = 8: second moment ∝ I) of the encodings of the
  30 states: 5.1 at the random initialisation, about 1.2 after 2000 steps without the
  term, about 8 with it."""
  start, (psi_free, psi_reg), (phi_free, phi_reg) = _collapse_runs([0.0, 1.0])
  assert 4.0 < start < 7.0
  assert psi_free < 1.6 and phi_free < 1.6                        # collapsed
  assert psi_reg > 7.5 and phi_reg > 7.5                          # near isotropic
