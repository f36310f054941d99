"""rlcore.occupancy: ORPO's discriminator loss, per-step penalties, reward augmentation,
action-distribution divergences and the correlation helpers, against numpy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlcore
from rlcore import occupancy
from tests import references
from tests.helpers import assert_close, check_jit_and_vmap


def _exact_batches():
  """Policy and reference samples over 3 states whose empirical visitations are exactly
  μ_π = (1/2, 1/4, 1/4) and μ_ref = (1/8, 3/8, 1/2)."""
  mu_pi, mu_ref = np.array([0.5, 0.25, 0.25]), np.array([0.125, 0.375, 0.5])
  pi_states = np.repeat(np.arange(3), (mu_pi * 8).astype(int))      # 8 samples
  ref_states = np.repeat(np.arange(3), (mu_ref * 8).astype(int))    # 8 samples
  return mu_pi, mu_ref, pi_states, ref_states


def test_discriminator_loss_matches_reference():
  rng = np.random.default_rng(0)
  v = 3
  args = (rng.normal(size=(v, 5, 4)).astype(np.float32) * 3,
          rng.normal(size=(v, 6)).astype(np.float32) * 3,
          rng.random((v, 5, 4)) > 0.3, rng.random((v, 6)) > 0.3)
  check_jit_and_vmap(occupancy.discriminator_loss, references.ref_discriminator_loss, args)
  # Without masks every sample counts.
  assert_close(occupancy.discriminator_loss(args[0][0], args[1][0]),
               references.ref_discriminator_loss(args[0][0], args[1][0],
                                                 np.ones((5, 4)), np.ones(6)))


def test_discriminator_optimum_is_the_log_occupancy_ratio():
  """A tabular discriminator minimising the loss on the two batches is log μ_π/μ_ref."""
  mu_pi, mu_ref, pi_states, ref_states = _exact_batches()
  loss = lambda table: occupancy.discriminator_loss(table[pi_states], table[ref_states])
  table = jax.jit(lambda t: jax.lax.fori_loop(
      0, 3000, lambda _, x: x - 2.0 * jax.grad(loss)(x), t))(jnp.zeros(3))
  assert_close(table, np.log(mu_pi / mu_ref), rtol=1e-4, atol=1e-4)


def test_penalty_estimates_at_the_optimal_discriminator_are_the_exact_divergences():
  """E_μπ[d*] = KL(μ_π‖μ_ref) and E_μπ[e^d* − 1] = χ²(μ_π‖μ_ref) = E_ref[(L − 1)²]."""
  mu_pi, mu_ref, pi_states, _ = _exact_batches()
  d_star = np.log(mu_pi / mu_ref)
  _, stats = occupancy.occupancy_penalty(jnp.asarray(d_star[pi_states]), kind="chi2")
  ratio = mu_pi / mu_ref
  assert_close(stats["kl"], np.sum(mu_pi * np.log(ratio)), rtol=1e-5)
  assert_close(stats["chi2"], np.sum(mu_ref * (ratio - 1) ** 2), rtol=1e-5)
  assert_close(stats["chi2_trimmed"], stats["chi2"], rtol=1e-6)   # 8 samples: no trimming


@pytest.mark.parametrize("n, trim", [(1, 0.01), (20, 0.01), (99, 0.01), (100, 0.01),
                                     (250, 0.01), (37, 0.1), (40, 0.0)])
def test_trimmed_mean_matches_reference(n, trim):
  rng = np.random.default_rng(n)
  x = rng.standard_cauchy(size=(3, n)).astype(np.float32)
  valid = rng.random((3, n)) > 0.2
  valid[:, 0] = True
  fn = lambda a, m: occupancy.trimmed_mean(a, m, trim)
  ref = lambda a, m: references.ref_trimmed_mean(a, m, trim)
  check_jit_and_vmap(fn, ref, (x, valid), rtol=1e-5, atol=1e-5)
  assert float(occupancy.trimmed_mean(x[0], np.zeros(n, bool), trim)) == 0.0


@pytest.mark.parametrize("kind", occupancy.PENALTIES)
def test_penalties_match_reference(kind):
  rng = np.random.default_rng(1)
  v = 3
  logits = rng.normal(size=(v, 7, 3)).astype(np.float32) * 2
  logits[0, 0, 0] = 0.0                                  # sign(0) = 0 for tv
  valid = rng.random((v, 7, 3)) > 0.25
  fn = lambda d, m: occupancy.occupancy_penalty(d, m, kind)[0]
  ref = lambda d, m: references.ref_occupancy_penalty(d, m, kind, 0.01, 50.0)
  check_jit_and_vmap(fn, ref, (logits, valid), rtol=1e-5, atol=1e-5)


def test_a_small_batch_still_regularises_with_sqrt_chi2():
  """20 samples: the official 1%-trimmed slice [0:-0] is empty (NaN, then zeroed, so no
  penalty); here the estimate uses all 20 and the penalty is (e^d − 1)/sqrt(χ̂²)."""
  d = np.linspace(-1.0, 2.0, 20).astype(np.float32)
  ratio = np.expm1(d.astype(np.float64))
  k = int(0.01 * len(d))
  with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
    assert np.isnan(np.mean(np.sort(ratio)[k:-k]))      # the official slice, k = 0
  distance, stats = occupancy.occupancy_penalty(jnp.asarray(d), kind="sqrt_chi2")
  chi2 = ratio.mean()
  assert chi2 > 0
  assert_close(stats["chi2_trimmed"], chi2, rtol=1e-5)
  assert_close(distance, ratio / math.sqrt(chi2), rtol=1e-5, atol=1e-6)
  shaped = occupancy.augment_rewards(jnp.zeros(20), distance, 0.5)
  assert float(jnp.abs(shaped).max()) > 0.1


def test_sqrt_chi2_falls_back_to_chi2_when_the_estimate_is_not_positive():
  d = jnp.asarray([-1.0, -0.5, -0.2, 0.0])                # every e^d − 1 <= 0
  distance, stats = occupancy.occupancy_penalty(d, kind="sqrt_chi2")
  assert float(stats["chi2_trimmed"]) < 0
  assert_close(distance, np.expm1(np.asarray(d, np.float64)), rtol=1e-6)


def test_sqrt_chi2_scale_is_held_constant_in_the_gradient():
  d = jnp.asarray([0.3, -0.2, 1.1, 0.5])
  total = lambda x: jnp.sum(occupancy.occupancy_penalty(x, kind="sqrt_chi2")[0])
  chi2 = float(np.mean(np.expm1(np.asarray(d, np.float64))))
  assert_close(jax.grad(total)(d), np.exp(np.asarray(d)) / math.sqrt(chi2), rtol=1e-5)


def test_logits_are_capped_and_nan_is_not_zeroed():
  d = jnp.asarray([1000.0, 0.5, jnp.nan])
  distance, _ = occupancy.occupancy_penalty(d, kind="chi2", max_logit=50.0)
  assert np.isfinite(float(distance[0])) and float(distance[0]) == pytest.approx(
      math.expm1(50.0), rel=1e-5)
  assert np.isnan(float(distance[2]))
  masked, _ = occupancy.occupancy_penalty(d, jnp.asarray([True, True, False]), kind="kl")
  assert float(masked[2]) == 0.0 and float(masked[0]) == 1000.0
  # sqrt_chi2 with a NaN among padded entries: the whole batch is NaN, not unscaled.
  padded = jnp.asarray([0.5, jnp.nan, 0.2, 7.0])
  dist, stats = occupancy.occupancy_penalty(padded, jnp.asarray([True, True, True, False]),
                                            kind="sqrt_chi2")
  assert np.isnan(float(stats["chi2_trimmed"]))
  assert np.isnan(np.asarray(dist[:3])).all() and float(dist[3]) == 0.0


def test_augment_rewards_clips_keeps_nan_and_sweeps_coefficients():
  r = jnp.asarray([[1.0, 2.0, 3.0, 4.0]])
  dist = jnp.asarray([[0.5, jnp.inf, -jnp.inf, jnp.nan]])
  out = np.asarray(occupancy.augment_rewards(r, dist, 2.0, clip=10.0))
  np.testing.assert_allclose(out[0, :3], [0.0, -8.0, 13.0])
  assert np.isnan(out[0, 3])
  unclipped = np.asarray(occupancy.augment_rewards(r[:, :1], dist[:, :1], -1.0))
  np.testing.assert_allclose(unclipped, [[1.5]])                   # λ < 0: away from π_ref
  coeffs = jnp.asarray([0.0, 0.1, 1.0])
  rng = np.random.default_rng(2)
  rewards = jnp.asarray(rng.normal(size=(5, 2)), jnp.float32)
  distance = jnp.asarray(rng.normal(size=(5, 2)), jnp.float32)
  swept = jax.jit(jax.vmap(lambda c: occupancy.augment_rewards(rewards, distance, c)))(coeffs)
  for i, c in enumerate(np.asarray(coeffs)):
    assert_close(swept[i], np.asarray(rewards) - c * np.asarray(distance))


def test_categorical_divergences_match_reference():
  rng = np.random.default_rng(3)
  p = rng.normal(size=(3, 4, 5)).astype(np.float32) * 2
  q = rng.normal(size=(3, 4, 5)).astype(np.float32) * 2
  kl_ref = lambda a, b: references.ref_categorical_divergences(a, b)[0]
  chi2_ref = lambda a, b: references.ref_categorical_divergences(a, b)[1]
  check_jit_and_vmap(occupancy.categorical_kl, kl_ref, (p, q), rtol=1e-4, atol=1e-5)
  check_jit_and_vmap(occupancy.categorical_chi2, chi2_ref, (p, q), rtol=1e-4, atol=1e-5)
  assert_close(occupancy.categorical_chi2(p, p + 3.0), np.zeros((3, 4)), atol=1e-5)
  # χ² ≥ KL-type bound: log(1 + χ²) ≥ KL (Jensen).
  kl, chi2 = occupancy.categorical_kl(p, q), occupancy.categorical_chi2(p, q)
  assert np.all(np.log1p(np.asarray(chi2)) >= np.asarray(kl) - 1e-5)


@pytest.mark.parametrize("mu1, std1, mu2, std2", [(0.0, 1.0, 0.0, 1.0), (0.3, 0.5, -0.2, 0.8),
                                                  (1.0, 1.2, 0.0, 1.0), (-2.0, 0.2, 0.5, 3.0)])
def test_gaussian_divergences_match_quadrature(mu1, std1, mu2, std2):
  kl, chi2 = references.ref_gaussian_divergences_by_quadrature(mu1, std1, mu2, std2)
  args = [jnp.asarray([x], jnp.float32) for x in (mu1, std1, mu2, std2)]
  assert_close(occupancy.gaussian_kl(*args), kl, rtol=1e-4, atol=1e-5)
  assert_close(occupancy.gaussian_chi2(*args), chi2, rtol=1e-4, atol=1e-5)


def test_diagonal_gaussian_divergences_combine_dimensions_and_flag_infinite_chi2():
  mu1, std1 = jnp.asarray([[0.3, -1.0]]), jnp.asarray([[0.5, 1.2]])
  mu2, std2 = jnp.asarray([[-0.2, 0.0]]), jnp.asarray([[0.8, 1.0]])
  one = [references.ref_gaussian_divergences_by_quadrature(*(float(a[0, i]) for a in
                                                             (mu1, std1, mu2, std2)))
         for i in range(2)]
  assert_close(occupancy.gaussian_kl(mu1, std1, mu2, std2), [one[0][0] + one[1][0]],
               rtol=1e-4)
  assert_close(occupancy.gaussian_chi2(mu1, std1, mu2, std2),
               [(1 + one[0][1]) * (1 + one[1][1]) - 1], rtol=1e-4)
  # 2σ2² <= σ1² in one dimension: the integral diverges.
  assert np.isinf(float(occupancy.gaussian_chi2(mu1, jnp.asarray([[0.5, 2.0]]), mu2, std2)[0]))
  swept = jax.jit(jax.vmap(occupancy.gaussian_chi2))(mu1[None], std1[None], mu2[None],
                                                    std2[None])
  assert_close(swept[0], occupancy.gaussian_chi2(mu1, std1, mu2, std2), rtol=1e-6)


def test_proxy_true_correlation_and_coefficients():
  rng = np.random.default_rng(4)
  true = rng.normal(size=6)
  proxy = 0.6 * true + rng.normal(size=6)
  counts = np.array([1, 3, 2, 5, 1, 4])
  expected = np.corrcoef(np.repeat(proxy, counts), np.repeat(true, counts))[0, 1]
  r = rlcore.proxy_true_correlation(jnp.asarray(proxy), jnp.asarray(true), jnp.asarray(counts))
  assert_close(r, expected, rtol=1e-5)
  assert_close(rlcore.proxy_true_correlation(jnp.asarray(true), jnp.asarray(2 * true + 1),
                                             jnp.ones(6)), 1.0, rtol=1e-6)
  assert_close(occupancy.coefficient_from_correlation(0.6, 2.0), 2.0 * 0.8, rtol=1e-6)
  assert_close(occupancy.coefficient_from_correlation(0.6, 2.0, "bound"), 2.0 * 0.8 / 0.6,
               rtol=1e-6)
  swept = jax.jit(jax.vmap(occupancy.coefficient_from_correlation))(jnp.asarray([0.0, 1.0]),
                                                                    jnp.asarray([1.0, 1.0]))
  assert_close(swept, [1.0, 0.0], atol=1e-7)


@pytest.mark.parametrize("call, match", [
    (lambda: occupancy.occupancy_penalty(jnp.zeros(3), kind="js"), "`kind` must be one of"),
    (lambda: occupancy.occupancy_penalty(jnp.zeros(3), jnp.ones(4, bool)), "`valid` must"),
    (lambda: occupancy.trimmed_mean(jnp.zeros(3), trim_frac=0.5), "`trim_frac` must lie"),
    (lambda: occupancy.augment_rewards(jnp.zeros(3), jnp.zeros(4), 1.0), "`distance`"),
    (lambda: occupancy.augment_rewards(jnp.zeros(3), jnp.zeros(3), 1.0, clip=0.0),
     "`clip` must lie"),
    (lambda: occupancy.categorical_kl(jnp.zeros((2, 3)), jnp.zeros((2, 4))), "`q_logits`"),
    (lambda: occupancy.gaussian_chi2(jnp.zeros(2), jnp.ones(2), jnp.zeros(3), jnp.ones(2)),
     "`mu2`"),
    (lambda: occupancy.proxy_true_correlation(jnp.zeros(3), jnp.zeros(3), -jnp.ones(3)),
     "`weights` must lie"),
    (lambda: occupancy.coefficient_from_correlation(0.0, 1.0, "bound"), "`r` must lie"),
    (lambda: occupancy.coefficient_from_correlation(0.5, 1.0, "exact"), "`convention`"),
    (lambda: occupancy.discriminator_loss(jnp.zeros(3), jnp.zeros(2), jnp.ones(2, bool)),
     "`policy_valid`"),
])
def test_bad_input_names_the_argument(call, match):
  with pytest.raises(ValueError, match=match):
    call()
