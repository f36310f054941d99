"""Potential-based shaping: invariance on exactly solved MDPs, Grześ's terminal
correction, truncation with bootstrapping, and the functional contract."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import rlcore
from rlcore.envs import tabular
from tests import helpers
from tests.references import ref_potential_based


def shaped_mdp(mdp, phi, gamma, *, terminal_correction=True):
  """Shaped rewards R'[s, a, s'] computed by rlcore.potential_based."""
  s, a, _ = mdp.rewards.shape
  phi_s = np.broadcast_to(phi[:, None, None], (s, a, s))
  phi_next = np.broadcast_to(phi[None, None, :], (s, a, s))
  term = np.broadcast_to(mdp.terminal[None, None, :], (s, a, s))
  if not terminal_correction:
    term = np.zeros_like(term)
  r2 = rlcore.potential_based(mdp.rewards, phi_s, phi_next, term, None, gamma)
  return mdp._replace(rewards=np.asarray(r2, np.float64))


# --- Ng et al. invariance on random MDPs ------------------------------------------------

@given(seed=st.integers(0, 10_000), num_states=st.integers(2, 7),
       num_actions=st.integers(2, 4), gamma=st.floats(0.0, 0.95),
       phi_scale=st.floats(0.1, 20.0))
def test_shaped_optimal_q_is_q_minus_potential(seed, num_states, num_actions, gamma, phi_scale):
  mdp = tabular.random_mdp(seed, num_states, num_actions)
  phi = np.random.default_rng(seed + 1).normal(size=num_states) * phi_scale
  q = tabular.value_iteration(mdp, gamma)
  q_shaped = tabular.value_iteration(shaped_mdp(mdp, phi, gamma), gamma)
  live = ~mdp.terminal
  expected = q - phi[:, None]
  # float32 shaped rewards: error ~ 1e-7 * |R'| / (1 - gamma)
  tol = 1e-5 * (1.0 + np.abs(mdp.rewards).max() + np.abs(phi).max()) / (1.0 - gamma)
  np.testing.assert_allclose(q_shaped[live], expected[live], atol=tol)
  # Greedy policies agree wherever the optimal action is not a near-tie.
  top2 = np.sort(q[live], axis=-1)[:, -2:]
  clear = (top2[:, 1] - top2[:, 0]) > 4 * tol
  np.testing.assert_array_equal(q_shaped[live].argmax(-1)[clear], q[live].argmax(-1)[clear])


def test_mismatched_discount_breaks_the_q_identity():
  # A control showing the invariance check can fail: the same F with a
  # discount other than the learner's (γ_F = 1 != γ) is not potential-based.
  mdp = tabular.random_mdp(3, 6, 3)
  gamma = 0.9
  found = False
  for seed in range(50):
    phi = np.random.default_rng(seed).normal(size=6) * 20
    q = tabular.value_iteration(mdp, gamma)
    wrong = shaped_mdp(mdp, phi, 1.0)  # discount of F != learner's discount
    q_wrong = tabular.value_iteration(wrong, gamma)
    live = ~mdp.terminal
    if not np.allclose(q_wrong[live], (q - phi[:, None])[live], atol=1e-3):
      found = True
      break
  assert found


# --- Grześ's two-terminal counterexample --------------------------------------------------

@pytest.mark.parametrize("gamma", [0.05, 0.1, 10 / 99 - 1e-3, 10 / 99 + 1e-3, 0.2, 0.5, 0.9, 0.99])
def test_grzes_counterexample(gamma):
  mdp, phi = tabular.grzes_two_terminal()
  true_q = tabular.value_iteration(mdp, gamma)
  assert true_q[0].argmax() == 1  # g2 (reward 100) is the right goal
  naive = tabular.value_iteration(shaped_mdp(mdp, phi, gamma, terminal_correction=False), gamma)
  fixed = tabular.value_iteration(shaped_mdp(mdp, phi, gamma, terminal_correction=True), gamma)
  assert naive[0].argmax() == (0 if gamma > 10 / 99 else 1)
  assert fixed[0].argmax() == 1
  np.testing.assert_allclose(fixed[0], true_q[0] - phi[0], atol=1e-3)


# --- Truncation: TD fixed point with bootstrapping --------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_truncated_td_fixed_point_matches_v_minus_phi_only_when_phi_kept(seed):
  rng = np.random.default_rng(seed)
  s = 6
  gamma = 0.9
  p = rng.dirichlet(np.ones(s), size=s)                 # policy's chain P(s'|s)
  r = rng.normal(size=(s, s))                           # reward of s -> s'
  terminal = np.zeros(s, bool)
  terminal[-1] = True                                   # entering it ends the episode
  q_trunc = rng.uniform(0.1, 0.5, size=s)               # P(a visit to s is the time limit)
  phi = rng.normal(size=s) * 5
  cont = np.broadcast_to(~terminal[None, :], (s, s)).astype(float)
  v = tabular.policy_evaluation(p, (p * r).sum(-1), cont, gamma)

  def td_fixed_point(bootstraps_on_truncation):
    phi_s = np.broadcast_to(phi[:, None], (s, s))
    phi_n = np.broadcast_to(phi[None, :], (s, s))
    term = np.broadcast_to(terminal[None, :], (s, s))
    shaped = {
        trunc: np.asarray(rlcore.potential_based(
            r, phi_s, phi_n, term, np.full((s, s), trunc), gamma,
            bootstraps_on_truncation=bootstraps_on_truncation), np.float64)
        for trunc in (False, True)}
    # The TD learner always bootstraps V'(s') at truncations (not at terminations).
    expected_r = (1 - q_trunc) * (p * shaped[False]).sum(-1) + q_trunc * (p * shaped[True]).sum(-1)
    return tabular.policy_evaluation(p, expected_r, cont, gamma)

  live = ~terminal
  kept = td_fixed_point(True)
  zeroed = td_fixed_point(False)
  np.testing.assert_allclose(kept[live], (v - phi)[live], atol=1e-4)
  assert np.max(np.abs(zeroed[live] - (v - phi)[live])) > 1e-2


# --- Policy-gradient corollary: shaped return-to-go = G_t - Φ(s_t) ----------------------

def test_shaped_returns_equal_returns_minus_potential_within_episodes():
  rng = np.random.default_rng(0)
  t, b, gamma = 40, 3, 0.95
  rewards = rng.normal(size=(t, b)).astype(np.float32)
  obs_phi = rng.normal(size=(t + 1, b)).astype(np.float32)  # Φ of s_0..s_T
  terminated = rng.random((t, b)) < 0.1
  terminated[-1] = True  # every episode in the batch ends inside it
  # After a termination the next row starts a new episode: Φ(s_t) is that of the
  # reset state, and the next potential of the terminating step is zeroed.
  phi, phi_next = obs_phi[:-1], obs_phi[1:]
  shaped = rlcore.potential_based(rewards, phi, phi_next, terminated, None, gamma)
  g = rlcore.discounted_returns(rewards, terminated, None, gamma)
  g_shaped = rlcore.discounted_returns(shaped, terminated, None, gamma)
  helpers.assert_close(g_shaped, np.asarray(g) - phi, atol=1e-4)


# --- Functional contract -------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(7,), (5, 3), (4, 2, 3)])
@pytest.mark.parametrize("bootstrap", [True, False])
def test_matches_numpy_reference_under_jit_and_vmap(shape, bootstrap, rng):
  v = 3
  args = (rng.normal(size=(v,) + shape).astype(np.float32),
          rng.normal(size=(v,) + shape).astype(np.float32),
          rng.normal(size=(v,) + shape).astype(np.float32),
          rng.random((v,) + shape) < 0.2,
          rng.random((v,) + shape) < 0.2,
          rng.uniform(0.5, 1.0, size=(v,)).astype(np.float32))
  fn = lambda r, p, pn, te, tr, g, bootstraps_on_truncation: rlcore.potential_based(
      r, p, pn, te, tr, g, bootstraps_on_truncation=bootstraps_on_truncation)
  ref = lambda r, p, pn, te, tr, g, bootstraps_on_truncation: ref_potential_based(
      r, p, pn, te, tr, g, bootstraps_on_truncation)
  helpers.check_jit_and_vmap(fn, ref, args,
                             static_kwargs=dict(bootstraps_on_truncation=bootstrap))


def test_valid_mask_zeroes_filler_transitions(rng):
  r = rng.normal(size=(6, 2)).astype(np.float32)
  phi = rng.normal(size=(6, 2)).astype(np.float32)
  valid = rng.random((6, 2)) < 0.6
  out = rlcore.potential_based(r, phi, phi, np.zeros((6, 2), bool), None, 0.9, valid=valid)
  helpers.assert_close(out, ref_potential_based(r, phi, phi, np.zeros((6, 2), bool),
                                                np.zeros((6, 2), bool), 0.9, True, valid))
  assert np.all(np.asarray(out)[~valid] == 0)


@pytest.mark.parametrize("bootstrap", [True, False])
def test_non_finite_inputs_stay_at_their_step(bootstrap, rng):
  # Documented: shaping is elementwise, a non-finite input reaches its own step only;
  # a zeroed Φ(s') (termination, unbootstrapped truncation) is never read, and
  # valid=False steps are 0 whatever their inputs.
  r, phi, phi_next = rng.normal(size=(3, 6, 2)).astype(np.float32)
  term = np.zeros((6, 2), bool)
  trunc = np.zeros((6, 2), bool)
  term[1, 0] = trunc[4, 1] = True
  valid = np.ones((6, 2), bool)
  valid[5, 1] = False
  f = lambda r, p, pn: np.asarray(rlcore.potential_based(
      r, p, pn, term, trunc, 0.9, bootstraps_on_truncation=bootstrap, valid=valid))
  clean = f(r, phi, phi_next)
  r2, p2, pn2 = r.copy(), phi.copy(), phi_next.copy()
  r2[3, 0] = np.nan
  p2[2, 1] = np.inf
  pn2[0, 0] = -np.inf
  pn2[1, 0] = np.nan            # at a termination: never read
  pn2[4, 1] = np.nan            # at a truncation: read only when bootstrapping
  r2[5, 1] = np.nan             # an invalid step
  out = f(r2, p2, pn2)
  bad = np.zeros((6, 2), bool)
  bad[3, 0] = bad[2, 1] = bad[0, 0] = True
  bad[4, 1] = bootstrap
  assert not np.any(np.isfinite(out[bad]))
  np.testing.assert_array_equal(out[~bad], clean[~bad])
  assert out[5, 1] == 0.0


def test_gradient_through_gamma_and_potentials():
  r = jnp.array([1.0, 2.0])
  phi = jnp.array([0.5, -1.0])
  phi_next = jnp.array([2.0, 3.0])
  term = jnp.array([False, True])
  f = lambda g, p: jnp.sum(rlcore.potential_based(r, p, phi_next, term, None, g))
  dg, dp = jax.grad(f, argnums=(0, 1))(0.9, phi)
  assert np.isclose(dg, 2.0)  # only the non-terminal step keeps Φ(s')
  np.testing.assert_allclose(dp, [-1.0, -1.0])


def test_gamma_sweep_with_vmap():
  r = jnp.ones((3,))
  phi = jnp.zeros((3,))
  phi_next = jnp.ones((3,))
  term = jnp.zeros((3,), bool)
  gammas = jnp.array([0.0, 0.5, 1.0])
  out = jax.vmap(lambda g: rlcore.potential_based(r, phi, phi_next, term, None, g))(gammas)
  np.testing.assert_allclose(out, 1.0 + gammas[:, None] * np.ones((3, 3)))


def test_no_retrace_on_second_call(rng):
  a = [rng.normal(size=(8, 4)).astype(np.float32) for _ in range(3)]
  b = [rng.normal(size=(8, 4)).astype(np.float32) for _ in range(3)]
  flags = np.zeros((8, 4), bool)
  helpers.assert_no_retrace(rlcore.potential_based, *a, flags, flags, 0.99,
                            second_args=(*b, flags, flags, 0.9))


@pytest.mark.parametrize("kwargs, match", [
    (dict(potentials=np.zeros((4,))), "`potentials`"),
    (dict(next_potentials=np.zeros((5, 2))), "`next_potentials`"),
    (dict(terminated=np.zeros((4, 3), bool)), "`terminated`"),
    (dict(truncated=np.zeros((2, 2), bool)), "`truncated`"),
    (dict(gamma=1.5), "`gamma`"),
    (dict(gamma=np.ones((3,))), "`gamma`"),
    (dict(gamma=float("nan")), r"`gamma` must lie in \[0.0, 1.0\], got nan"),
])
def test_bad_input_names_the_argument(kwargs, match):
  args = dict(rewards=np.zeros((4, 2)), potentials=np.zeros((4, 2)),
              next_potentials=np.zeros((4, 2)), terminated=np.zeros((4, 2), bool),
              truncated=None, gamma=0.9)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    rlcore.potential_based(**args)


def test_potential_shaping_transform_reads_the_transition():
  rng = np.random.default_rng(1)
  obs = rng.normal(size=(5, 2, 3)).astype(np.float32)
  next_obs = rng.normal(size=(5, 2, 3)).astype(np.float32)
  potential = lambda o: jnp.sum(o, axis=-1)
  tr = rlcore.Transition(obs=obs, action=np.zeros((5, 2)), reward=np.ones((5, 2), np.float32),
                         next_obs=next_obs, terminated=np.zeros((5, 2), bool),
                         truncated=np.eye(5, 2, dtype=bool), valid=np.ones((5, 2), bool))
  t = rlcore.potential_shaping(potential, 0.9, bootstraps_on_truncation=False)
  out, state = jax.jit(t.apply)(tr.reward, t.init(), tr)
  expected = ref_potential_based(tr.reward, obs.sum(-1), next_obs.sum(-1), tr.terminated,
                                 tr.truncated, 0.9, False)
  helpers.assert_close(out, expected)
  assert state == t.init()
