"""rlcore.bilevel: BARFI's reward, objective and implicit hypergradient.

The hypergradient is checked on a bi-level problem whose inner problem is solved to
machine precision: a 3-state, 2-action MDP with exact policy evaluation (a linear
solve), a tabular softmax policy with an entropy bonus and a small L2 term (so the
inner maximiser is unique), the BARFI reward on one-hot state features and a learned
discount. J(θ*(φ)) is then a smooth function of φ whose central finite differences
the implicit gradient must match.
"""

import functools

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore import bilevel
from tests import references
from tests.helpers import assert_close, check_jit_and_vmap, jit_quick_compile

S, A = 3, 2
ENV_GAMMA = 0.9
BETA, L2 = 0.3, 0.05


def _mdp():
  rng = np.random.default_rng(0)
  trans = rng.dirichlet(np.ones(S), size=(S, A))          # [S, A, S]
  r_p = rng.normal(size=(S, A))
  r_aux = rng.normal(size=(S, A))
  return trans, r_p, r_aux


def _problem():
  """(inner(θ, φ), outer(θ), solve(φ) -> θ*, φ0), all float64 (call under x64)."""
  trans, r_p, r_aux = (jnp.asarray(x) for x in _mdp())
  feats = jnp.broadcast_to(jnp.eye(S)[:, None, :], (S, A, S))
  mu0 = jnp.asarray([1.0, 0.0, 0.0])

  def value(theta, rewards, gamma):
    pi = jax.nn.softmax(theta, -1)
    r_pi = jnp.sum(pi * rewards, -1)
    p_pi = jnp.einsum("sa,sat->st", pi, trans)
    return mu0 @ jnp.linalg.solve(jnp.eye(S) - gamma * p_pi, r_pi)

  def inner(theta, phi):
    params, logit = phi
    r_phi = bilevel.barfi_reward(params, feats, r_p, r_aux)
    pi = jax.nn.softmax(theta, -1)
    entropy = -jnp.sum(pi * jnp.log(pi))
    return (value(theta, r_phi, bilevel.barfi_discount(logit)) + BETA * entropy
            - 0.5 * L2 * jnp.sum(theta ** 2))

  def outer(theta):
    return value(theta, r_p, ENV_GAMMA)

  @jit_quick_compile
  def solve(phi):
    g = jax.grad(inner)
    theta = jax.lax.fori_loop(0, 3000, lambda _, t: t + 0.5 * g(t, phi), jnp.zeros((S, A)))

    def newton(_, t):
      flat = t.reshape(-1)
      h = jax.hessian(lambda f: inner(f.reshape(S, A), phi))(flat)
      return (flat - jnp.linalg.solve(h, g(t, phi).reshape(-1))).reshape(S, A)

    return jax.lax.fori_loop(0, 20, newton, theta)

  rng = np.random.default_rng(1)
  params = bilevel.BarfiRewardParams(kernel=jnp.asarray(0.3 * rng.normal(size=(S, 3))),
                                     bias=jnp.asarray(0.3 * rng.normal(size=3)))
  return inner, outer, solve, (params, jnp.asarray(1.0))


@pytest.fixture(scope="module")
def problem():
  with jax.enable_x64(True):
    inner, outer, solve, phi0 = _problem()
    theta = solve(phi0)
    v = jax.grad(outer)(theta)
    exact, info = bilevel.barfi_hypergradient(inner, theta, phi0, v, method="exact")
    hess = jax.hessian(lambda f: inner(f.reshape(S, A), phi0))(theta.reshape(-1))
    yield dict(inner=inner, outer=outer, solve=solve, phi0=phi0, theta=theta, v=v,
               exact=exact, info=info, eigs=np.linalg.eigvalsh(np.asarray(hess)))


def _flat(tree):
  return np.asarray(jax.flatten_util.ravel_pytree(tree)[0])


def _rel(a, b):
  return np.linalg.norm(_flat(a) - _flat(b)) / np.linalg.norm(_flat(b))


def test_inner_problem_is_solved_at_a_strict_maximum(problem):
  with jax.enable_x64(True):
    grad = jax.grad(problem["inner"])(problem["theta"], problem["phi0"])
  assert np.max(np.abs(grad)) < 1e-10
  assert np.max(problem["eigs"]) < 0
  assert bool(problem["info"].stable) and float(problem["info"].growth) < 0


def test_exact_hypergradient_matches_central_finite_differences(problem):
  with jax.enable_x64(True):
    outer, solve, phi0 = problem["outer"], problem["solve"], problem["phi0"]
    flat, unravel = jax.flatten_util.ravel_pytree(phi0)
    h = 1e-5
    fd = np.array([(outer(solve(unravel(flat + h * e))) - outer(solve(unravel(flat - h * e))))
                   / (2 * h) for e in np.eye(flat.size)])
  exact = _flat(problem["exact"])
  # Reward parameters (kernel and bias) and the discount logit, each to 1e-3.
  n_reward = flat.size - 1
  rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)
  assert rel(exact[:n_reward], fd[:n_reward]) < 1e-3
  assert abs(exact[-1] - fd[-1]) / abs(fd[-1]) < 1e-3
  assert abs(fd[-1]) > 1e-3           # the discount matters on this problem


def test_neumann_converges_to_exact_as_k_grows(problem):
  eigs = problem["eigs"]
  alpha = 1.0 / np.max(np.abs(eigs))                       # |1 + αλ| < 1 for every λ
  rate = np.max(np.abs(1 + alpha * eigs))
  with jax.enable_x64(True):
    errors = []
    for k in (1, 3, 10, 30, 100):
      est, info = bilevel.barfi_hypergradient(
          problem["inner"], problem["theta"], problem["phi0"], problem["v"],
          neumann_steps=k, neumann_alpha=alpha)
      assert bool(info.stable)
      errors.append(_rel(est, problem["exact"]))
  assert all(b < a or b < 1e-12 for a, b in zip(errors, errors[1:])), errors
  assert rate ** 100 < 1e-6 and errors[-1] < 1e-6, errors
  assert errors[0] > 10 * errors[-1]


@pytest.mark.parametrize("method,steps", [("exact", 0), ("neumann", 0), ("neumann", 10)])
def test_forward_objective_gives_the_same_hypergradient(problem, method, steps):
  """The mixed product by reverse over forward mode equals reverse over reverse."""
  alpha = 1.0 / np.max(np.abs(problem["eigs"]))
  with jax.enable_x64(True):
    args = (problem["inner"], problem["theta"], problem["phi0"], problem["v"])
    kw = dict(method=method, neumann_steps=steps, neumann_alpha=alpha)
    default, _ = bilevel.barfi_hypergradient(*args, **kw)
    forward, _ = bilevel.barfi_hypergradient(*args, **kw,
                                             forward_objective=problem["inner"])
  assert _rel(forward, default) < 1e-12
  if method == "exact":
    assert _rel(forward, problem["exact"]) < 1e-12


def test_k0_is_the_first_order_formula(problem):
  """K = 0: dJ/dφ = α (∂_φ ∇_θ Ĵ_φ)ᵀ v, built here from the dense mixed Jacobian."""
  inner, theta, phi0, v = problem["inner"], problem["theta"], problem["phi0"], problem["v"]
  alpha = 0.37
  with jax.enable_x64(True):
    est, info = bilevel.barfi_hypergradient(inner, theta, phi0, v, neumann_steps=0,
                                            neumann_alpha=alpha)
    flat, unravel = jax.flatten_util.ravel_pytree(phi0)
    mixed = jax.jacobian(lambda f: jax.grad(inner)(theta, unravel(f)).reshape(-1))(flat)
  expected = alpha * np.asarray(mixed).T @ np.asarray(v).reshape(-1)
  assert_close(_flat(est), expected, rtol=1e-10, atol=1e-12)
  assert float(info.growth) == 0.0


def test_one_outer_step_along_the_hypergradient_raises_j(problem):
  outer, solve, phi0 = problem["outer"], problem["solve"], problem["phi0"]
  with jax.enable_x64(True):
    flat, unravel = jax.flatten_util.ravel_pytree(phi0)
    direction = _flat(problem["exact"])
    step = 0.05 * direction / np.linalg.norm(direction)
    before = float(outer(solve(phi0)))
    up = float(outer(solve(unravel(flat + step))))
    down = float(outer(solve(unravel(flat - step))))
  assert up > before > down


def test_unstable_alpha_is_reported_not_blown_up(problem):
  eigs = problem["eigs"]
  alpha = 3.0 / np.max(np.abs(eigs))                       # |1 + αλ_min| = 2
  with jax.enable_x64(True):
    est, info = bilevel.barfi_hypergradient(
        problem["inner"], problem["theta"], problem["phi0"], problem["v"],
        neumann_steps=30, neumann_alpha=alpha)
  assert not bool(info.stable)
  assert float(info.growth) > 1.5
  assert np.all(np.isfinite(_flat(est)))


def test_hypergradient_under_jit_and_vmap(problem):
  """vmap over outer parameters (a sweep of φ) equals one call per φ (float32)."""
  inner, theta, phi0, v = problem["inner"], problem["theta"], problem["phi0"], problem["v"]
  to32 = lambda t: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), t)
  theta, phi0, v = to32(theta), to32(phi0), to32(v)
  phis = jax.tree.map(lambda x: jnp.stack([x, 1.1 * x, 0.9 * x + 0.1]), phi0)
  fn = lambda phi, method: bilevel.barfi_hypergradient(inner, theta, phi, v, method=method,
                                                       neumann_steps=3, neumann_alpha=0.1)[0]
  for method in ("neumann", "exact"):
    batched = jit_quick_compile(jax.vmap(functools.partial(fn, method=method)))(phis)
    single = jit_quick_compile(functools.partial(fn, method=method))
    for i in range(3):
      one = single(jax.tree.map(lambda x: x[i], phis))
      # atol: float32 rounding next to entries of size ~2 (one entry near 0 differed by
      # 2e-6 between the two programs at XLA's optimisation level 0).
      assert_close(_flat(jax.tree.map(lambda x: x[i], batched)), _flat(one), rtol=1e-4,
                   atol=1e-5)


@pytest.mark.parametrize("learn_primary_weight", [False, True])
def test_barfi_reward_matches_reference(learn_primary_weight):
  rng = np.random.default_rng(2)
  v, t, b, f = 3, 4, 2, 5
  kernel = rng.normal(size=(v, f, 3)).astype(np.float32)
  bias = rng.normal(size=(v, 3)).astype(np.float32)
  args = (kernel, bias, rng.normal(size=(v, t, b, f)).astype(np.float32),
          rng.normal(size=(v, t, b)).astype(np.float32),
          rng.normal(size=(v, t, b)).astype(np.float32))
  fn = lambda k, bb, x, rp, ra: bilevel.barfi_reward(
      bilevel.BarfiRewardParams(k, bb), x, rp, ra, learn_primary_weight=learn_primary_weight)
  ref = functools.partial(references.ref_barfi_reward,
                          learn_primary_weight=learn_primary_weight)
  check_jit_and_vmap(fn, ref, args, rtol=1e-5, atol=1e-5)
  params = bilevel.BarfiRewardParams(kernel[0], bias[0])
  bias_term, weight = bilevel.barfi_reward_terms(params, args[2][0])
  assert_close(weight, args[2][0] @ kernel[0][:, 2] + bias[0][2], rtol=1e-5)
  assert_close(bilevel.barfi_primary_weight(params, args[2][0]),
               args[2][0] @ kernel[0][:, 1] + bias[0][1], rtol=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
def test_barfi_policy_objective_matches_reference(gamma):
  rng = np.random.default_rng(3)
  v, t, b, a = 3, 6, 2, 3
  logits = rng.normal(size=(v, t, b, a))
  log_probs = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)
  lengths = rng.integers(1, t + 1, size=(v, b))
  mask = (np.arange(t)[None, :, None] < lengths[:, None, :]).astype(np.float32)
  args = (log_probs, rng.integers(0, a, size=(v, t, b)),
          rng.normal(size=(v, t, b)).astype(np.float32), np.full(v, gamma, np.float32),
          mask, np.full(v, 0.25, np.float32))
  check_jit_and_vmap(bilevel.barfi_policy_objective, references.ref_barfi_policy_objective,
                     args, rtol=1e-5, atol=1e-5)


def test_policy_objective_differentiates_rewards_and_discount():
  """No stop_gradient inside: d/dγ and d/dr match finite differences."""
  rng = np.random.default_rng(4)
  t, b, a = 5, 2, 2
  logits = rng.normal(size=(t, b, a))
  log_probs = jnp.asarray(logits - np.log(np.exp(logits).sum(-1, keepdims=True)), jnp.float32)
  actions = jnp.asarray(rng.integers(0, a, size=(t, b)))
  rewards = jnp.asarray(rng.normal(size=(t, b)), jnp.float32)
  mask = jnp.ones((t, b))
  f = lambda r, g: bilevel.barfi_policy_objective(log_probs, actions, r, g, mask, 0.1)
  dr, dg = jax.grad(f, argnums=(0, 1))(rewards, jnp.asarray(0.8))
  h = 1e-2
  fd_g = (f(rewards, 0.8 + h) - f(rewards, 0.8 - h)) / (2 * h)
  assert abs(float(dg)) > 1e-3
  assert_close(dg, fd_g, rtol=1e-2, atol=1e-4)
  assert np.all(np.asarray(dr) != 0)


def test_penalty_value_and_gradient_at_zero():
  params = bilevel.BarfiRewardParams(kernel=jnp.full((4, 3), 0.5), bias=jnp.zeros(3))
  val = bilevel.barfi_penalty(params, jnp.asarray(0.0), 2.0, 3.0)
  assert_close(val, 2.0 * np.sqrt(12 * 0.25) + 3.0 * 0.5)
  grads = jax.grad(bilevel.barfi_penalty, argnums=(0, 1))(params, jnp.asarray(0.0), 2.0, 3.0)
  assert np.all(np.isfinite(_flat(grads)))
  assert_close(grads[0].bias, np.zeros(3))
  assert_close(grads[1], 3.0 * 0.25)


def test_discount_and_init():
  assert abs(float(bilevel.barfi_discount(bilevel.GAMMA_LOGIT_INIT)) - 0.990) < 1e-3
  p = bilevel.init_barfi_reward(jax.random.PRNGKey(0), 16)
  assert p.kernel.shape == (16, 3) and p.bias.shape == (3,)
  assert np.max(np.abs(np.asarray(p.kernel))) <= 0.25 and np.std(np.asarray(p.kernel)) > 0.05


@pytest.mark.parametrize("call, match", [
    (lambda: bilevel.barfi_reward(bilevel.BarfiRewardParams(jnp.zeros((4, 3)), jnp.zeros(3)),
                                  jnp.zeros((5, 2, 3)), jnp.zeros((5, 2)), jnp.zeros((5, 2))),
     "`features` must end in the feature dimension F = 4"),
    (lambda: bilevel.barfi_reward(bilevel.BarfiRewardParams(jnp.zeros((4, 3)), jnp.zeros(3)),
                                  jnp.zeros((5, 2, 4)), jnp.zeros((5, 3)), jnp.zeros((5, 2))),
     "`r_p` must have shape"),
    (lambda: bilevel.barfi_reward(bilevel.BarfiRewardParams(jnp.zeros((4, 2)), jnp.zeros(3)),
                                  jnp.zeros((5, 2, 4)), jnp.zeros((5, 2)), jnp.zeros((5, 2))),
     "`params.kernel` must have shape"),
    (lambda: bilevel.barfi_penalty({}, 0.0, -1.0, 0.0), "`reward_l2`"),
    (lambda: bilevel.barfi_policy_objective(jnp.zeros((3, 2, 2)), jnp.zeros((3, 1), int),
                                            jnp.zeros((3, 2)), 0.9, jnp.ones((3, 2)), 0.1),
     "`actions` must have shape"),
    (lambda: bilevel.neumann_inverse_hvp(lambda p: p, jnp.ones(2), num_terms=-1, alpha=0.1),
     "`num_terms`"),
    (lambda: bilevel.neumann_inverse_hvp(lambda p: p, jnp.ones(2), num_terms=2, alpha=-0.1),
     "`alpha`"),
    (lambda: bilevel.barfi_hypergradient(lambda t, p: jnp.sum(t * p), jnp.ones(2), jnp.ones(2),
                                         jnp.ones(3)), "`outer_grad` leaves"),
    (lambda: bilevel.barfi_hypergradient(lambda t, p: jnp.sum(t * p), jnp.ones(2), jnp.ones(2),
                                         jnp.ones(2), method="cg"), "`method` must be one of"),
])
def test_bad_input_names_the_argument(call, match):
  with pytest.raises(ValueError, match=match):
    call()
