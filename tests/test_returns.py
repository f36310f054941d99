"""Returns and advantages: numpy references, rlax parity, identities, truncation,
gradients through the discount, scan vs associative scan, and input checks."""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

import rlcore
from tests import helpers
from tests.references import (ref_discounted_returns, ref_gae, ref_lambda_returns,
                               ref_linear_recurrence, ref_n_step_returns)

SHAPES = [(1,), (9,), (16, 3), (33, 2, 2)]
METHODS = ["scan", "associative"]


# --- random episodes ---------------------------------------------------------------------------

def episode_batch(rng, shape, p_term=0.1, p_trunc=0.1):
  r = rng.normal(size=shape).astype(np.float32)
  values = rng.normal(size=shape).astype(np.float32)
  next_values = rng.normal(size=shape).astype(np.float32)
  term = rng.random(shape) < p_term
  trunc = (rng.random(shape) < p_trunc) & ~term
  return r, values, next_values, term, trunc


def stacked(rng, shape, v=3):
  batches = [episode_batch(rng, shape) for _ in range(v)]
  return tuple(np.stack(x) for x in zip(*batches))


# --- references under jit and jit(vmap), both methods ----------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", METHODS)
def test_gae_matches_reference(shape, method, rng):
  r, v, nv, te, tr = stacked(rng, shape)
  gam = rng.uniform(0.8, 1.0, size=(3,)).astype(np.float32)
  lam = rng.uniform(0.0, 1.0, size=(3,)).astype(np.float32)
  fn = lambda r, v, nv, te, tr, g, l, method: rlcore.gae(r, v, te, tr, g, l, next_values=nv,
                                                         method=method)
  ref = lambda r, v, nv, te, tr, g, l, method: ref_gae(r, v, nv, te, tr, g, l)
  helpers.check_jit_and_vmap(fn, ref, (r, v, nv, te, tr, gam, lam),
                             static_kwargs=dict(method=method), atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", METHODS)
def test_lambda_returns_matches_reference(shape, method, rng):
  r, _, nv, te, tr = stacked(rng, shape)
  gam = rng.uniform(0.8, 1.0, size=(3,)).astype(np.float32)
  lam = rng.uniform(0.0, 1.0, size=(3,)).astype(np.float32)
  fn = lambda r, nv, te, tr, g, l, method: rlcore.lambda_returns(r, nv, te, tr, g, l,
                                                                 method=method)
  ref = lambda r, nv, te, tr, g, l, method: ref_lambda_returns(r, nv, te, tr, g, l)
  helpers.check_jit_and_vmap(fn, ref, (r, nv, te, tr, gam, lam),
                             static_kwargs=dict(method=method), atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bootstrap", [False, True])
def test_discounted_returns_matches_reference(shape, method, bootstrap, rng):
  r, _, nv, te, tr = stacked(rng, shape)
  gam = rng.uniform(0.5, 1.0, size=(3,)).astype(np.float32)
  if bootstrap:
    fn = lambda r, nv, te, tr, g, method: rlcore.discounted_returns(r, te, tr, g, next_values=nv,
                                                                    method=method)
    ref = lambda r, nv, te, tr, g, method: ref_discounted_returns(r, te, tr, g, nv)
  else:
    fn = lambda r, nv, te, tr, g, method: rlcore.discounted_returns(r, te, tr, g, method=method)
    ref = lambda r, nv, te, tr, g, method: ref_discounted_returns(r, te, tr, g)
  helpers.check_jit_and_vmap(fn, ref, (r, nv, te, tr, gam), static_kwargs=dict(method=method),
                             atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", [1, 2, 5, 40])
def test_n_step_returns_matches_reference(shape, n, rng):
  r, _, nv, te, tr = stacked(rng, shape)
  gam = rng.uniform(0.5, 1.0, size=(3,)).astype(np.float32)
  fn = lambda r, nv, te, tr, g, n: rlcore.n_step_returns(r, nv, te, tr, g, n)
  ref = lambda r, nv, te, tr, g, n: ref_n_step_returns(r, nv, te, tr, g, n)
  helpers.check_jit_and_vmap(fn, ref, (r, nv, te, tr, gam), static_kwargs=dict(n=n), atol=1e-4)


def test_per_step_discount_and_lambda_arrays(rng):
  r, v, nv, te, tr = episode_batch(rng, (12, 4))
  gam = rng.uniform(0.5, 1.0, size=(12, 4)).astype(np.float32)
  lam = rng.uniform(0.0, 1.0, size=(12, 4)).astype(np.float32)
  helpers.assert_close(rlcore.gae(r, v, te, tr, gam, lam, next_values=nv),
                       ref_gae(r, v, nv, te, tr, gam, lam), atol=1e-4)
  helpers.assert_close(rlcore.lambda_returns(r, nv, te, tr, gam, lam),
                       ref_lambda_returns(r, nv, te, tr, gam, lam), atol=1e-4)


def test_linear_recurrence_methods_agree_with_loop(rng):
  a = rng.normal(size=(50, 3)).astype(np.float32)
  c = rng.uniform(0, 1, size=(50, 3)).astype(np.float32)
  expected = ref_linear_recurrence(a, c)
  for method in METHODS:
    helpers.assert_close(rlcore.linear_recurrence(a, c, method=method), expected, atol=1e-5)
  helpers.assert_close(rlcore.linear_recurrence(a, c, method="scan", unroll=4), expected,
                       atol=1e-5)


# --- parity with rlax (no truncation) --------------------------------------------------------

@pytest.mark.parametrize("t_len,b", [(1, 1), (20, 5), (128, 7)])
def test_gae_parity_with_rlax(t_len, b, rng):
  r = rng.normal(size=(t_len, b)).astype(np.float32)
  values = rng.normal(size=(t_len + 1, b)).astype(np.float32)
  term = rng.random((t_len, b)) < 0.1
  gamma, lam = 0.97, 0.9
  discount = (gamma * (1 - term)).astype(np.float32)
  ours = rlcore.gae(r, values, term, None, gamma, lam)
  theirs = jax.vmap(rlax.truncated_generalized_advantage_estimation,
                    in_axes=(1, 1, None, 1), out_axes=1)(r, discount, lam, values)
  helpers.assert_close(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("t_len,b", [(1, 1), (20, 5), (128, 7)])
def test_lambda_returns_parity_with_rlax(t_len, b, rng):
  r = rng.normal(size=(t_len, b)).astype(np.float32)
  next_values = rng.normal(size=(t_len, b)).astype(np.float32)
  term = rng.random((t_len, b)) < 0.1
  gamma, lam = 0.97, 0.8
  discount = (gamma * (1 - term)).astype(np.float32)
  ours = rlcore.lambda_returns(r, next_values, term, None, gamma, lam)
  theirs = jax.vmap(rlax.lambda_returns, in_axes=(1, 1, 1, None), out_axes=1)(
      r, discount, next_values, lam)
  helpers.assert_close(ours, theirs, atol=1e-5)


# --- identities ----------------------------------------------------------------------------

def consistent_batch(rng, shape):
  """next_values[t] = values[t+1] inside episodes (auto-reset rows: true next value)."""
  r, v, nv, te, tr = episode_batch(rng, shape)
  inside = np.concatenate([v[1:], nv[-1:]])
  nv = np.where(te | tr, nv, inside).astype(np.float32)
  nv[-1] = rng.normal(size=shape[1:])
  return r, v, nv, te, tr


def test_gae_lambda_one_is_discounted_returns_minus_values(rng):
  r, v, nv, te, tr = consistent_batch(rng, (30, 4))
  adv = rlcore.gae(r, v, te, tr, 0.95, 1.0, next_values=nv)
  g = rlcore.discounted_returns(r, te, tr, 0.95, next_values=nv)
  helpers.assert_close(adv, np.asarray(g) - v, atol=1e-4)


def test_n_step_with_n_equal_t_is_lambda_return_at_one(rng):
  r, _, nv, te, tr = episode_batch(rng, (25, 3))
  helpers.assert_close(rlcore.n_step_returns(r, nv, te, tr, 0.9, 25),
                       rlcore.lambda_returns(r, nv, te, tr, 0.9, 1.0), atol=1e-4)


def test_one_step_return_is_td_target(rng):
  r, _, nv, te, tr = episode_batch(rng, (10, 2))
  expected = r + 0.9 * (1 - te) * nv
  helpers.assert_close(rlcore.n_step_returns(r, nv, te, tr, 0.9, 1), expected)
  helpers.assert_close(rlcore.lambda_returns(r, nv, te, tr, 0.9, 0.0), expected)


def test_lambda_returns_equal_gae_plus_values_with_consistent_values(rng):
  t_len, b = 30, 3
  values = rng.normal(size=(t_len + 1, b)).astype(np.float32)
  r = rng.normal(size=(t_len, b)).astype(np.float32)
  term = rng.random((t_len, b)) < 0.1
  adv = rlcore.gae(r, values, term, None, 0.9, 0.7)
  lam = rlcore.lambda_returns(r, values[1:], term, None, 0.9, 0.7)
  helpers.assert_close(lam, np.asarray(adv) + values[:-1], atol=1e-4)


# --- truncation semantics ---------------------------------------------------------------------

def test_truncation_bootstraps_true_next_value_and_cuts_recursion():
  # Row 1 is truncated: its TD error bootstraps from next_values[1] (the true s'),
  # not from values[2] (the reset state of the next episode).
  r = np.array([1.0, 1.0, 1.0], np.float32)
  values = np.array([0.0, 0.0, 50.0], np.float32)
  next_values = np.array([0.0, 10.0, 0.0], np.float32)
  term = np.zeros(3, bool)
  trunc = np.array([False, True, False])
  adv = rlcore.gae(r, values, term, trunc, 1.0, 1.0, next_values=next_values)
  # step 1: δ = 1 + 10 - 0 = 11; step 0: δ = 1 + 0 - 0 = 1, plus A_1 = 11.
  np.testing.assert_allclose(adv, [12.0, 11.0, -49.0])
  term_instead = rlcore.gae(r, values, trunc, None, 1.0, 1.0, next_values=next_values)
  np.testing.assert_allclose(term_instead, [2.0, 1.0, -49.0])


def test_discounted_returns_without_bootstrap_stop_at_truncation():
  r = np.ones(4, np.float32)
  trunc = np.array([False, True, False, False])
  out = rlcore.discounted_returns(r, np.zeros(4, bool), trunc, 0.5)
  np.testing.assert_allclose(out, [1.5, 1.0, 1.5, 1.0])


# --- gradients ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_gradient_wrt_discount_is_analytic(method):
  r = jnp.arange(1.0, 6.0)
  flags = jnp.zeros(5, bool)
  g0 = lambda gamma: rlcore.discounted_returns(r, flags, None, gamma, method=method)[0]
  gamma = 0.9
  expected = sum(k * gamma ** (k - 1) * float(r[k]) for k in range(1, 5))
  np.testing.assert_allclose(jax.grad(g0)(gamma), expected, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_gae_gradients_match_between_methods_and_finite_differences(method, rng):
  r, v, nv, te, tr = episode_batch(rng, (12, 2))
  loss = lambda r, g, l, m: jnp.sum(rlcore.gae(r, v, te, tr, g, l, next_values=nv, method=m) ** 2)
  grads = jax.grad(loss, argnums=(0, 1, 2))(r, 0.9, 0.8, method)
  ref = jax.grad(loss, argnums=(0, 1, 2))(r, 0.9, 0.8, "scan")
  chex.assert_trees_all_close(grads, ref, rtol=1e-4, atol=1e-4)
  eps = 1e-3
  fd = (loss(r, 0.9 + eps, 0.8, "scan") - loss(r, 0.9 - eps, 0.8, "scan")) / (2 * eps)
  np.testing.assert_allclose(grads[1], fd, rtol=2e-2)


def test_sweep_discount_with_vmap(rng):
  r, v, nv, te, tr = episode_batch(rng, (15, 2))
  gammas = jnp.array([0.5, 0.9, 0.99])
  out = jax.jit(jax.vmap(lambda g: rlcore.gae(r, v, te, tr, g, 0.95, next_values=nv)))(gammas)
  for i, g in enumerate([0.5, 0.9, 0.99]):
    helpers.assert_close(out[i], ref_gae(r, v, nv, te, tr, g, 0.95), atol=1e-4)


# --- compilation and errors ----------------------------------------------------------------

def test_second_call_does_not_retrace(rng):
  a = episode_batch(rng, (16, 4))
  b = episode_batch(rng, (16, 4))
  fn = lambda r, v, nv, te, tr: rlcore.gae(r, v, te, tr, 0.99, 0.95, next_values=nv)
  helpers.assert_no_retrace(fn, *a, second_args=b)
  fn2 = lambda r, nv, te, tr: rlcore.n_step_returns(r, nv, te, tr, 0.99, 3)
  helpers.assert_no_retrace(fn2, a[0], a[2], a[3], a[4], second_args=(b[0], b[2], b[3], b[4]))


def test_float32_math_for_low_precision_inputs():
  r = jnp.ones((4, 2), jnp.bfloat16)
  out = rlcore.discounted_returns(r, jnp.zeros((4, 2), bool), None, 0.99)
  assert out.dtype == jnp.float32


@pytest.mark.parametrize("call, match", [
    (lambda: rlcore.gae(np.zeros((4, 2)), np.zeros((4, 2)), np.zeros((4, 2)), None, 0.9, 0.9),
     r"`values` must have shape \(5, 2\)"),
    (lambda: rlcore.gae(np.zeros((4,)), np.zeros((5,)), np.zeros((3,)), None, 0.9, 0.9),
     "`terminated`"),
    (lambda: rlcore.gae(np.zeros((4,)), np.zeros((5,)), np.zeros((4,)), np.zeros(2), 0.9, 0.9),
     "`truncated`"),
    (lambda: rlcore.gae(np.zeros((4,)), np.zeros((5,)), np.zeros((4,)), None, 1.2, 0.9),
     r"`gamma` must lie in \[0.0, 1.0\]"),
    (lambda: rlcore.gae(np.zeros((4,)), np.zeros((5,)), np.zeros((4,)), None, 0.9, -0.1),
     "`lambda_`"),
    (lambda: rlcore.gae(np.zeros((4,)), np.zeros((5,)), np.zeros((4,)), None, 0.9, 0.9,
                        method="fast"), "`method` must be one of"),
    (lambda: rlcore.lambda_returns(np.zeros((4,)), np.zeros((3,)), np.zeros((4,)), None, 0.9,
                                   0.9), "`next_values`"),
    (lambda: rlcore.n_step_returns(np.zeros((4,)), np.zeros((4,)), np.zeros((4,)), None, 0.9,
                                   0), "`n` must be a positive Python int"),
    (lambda: rlcore.discounted_returns(np.float32(1.0), np.bool_(False), None, 0.9),
     "`rewards` must have rank"),
    (lambda: rlcore.gae(np.zeros((4, 2)), np.zeros((5, 2)), np.zeros((4, 2)), None,
                        np.ones(3) * 0.9, 0.9), "`gamma` must be a scalar or broadcast"),
])
def test_bad_input_names_the_argument(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_float64_is_kept_when_x64_is_enabled(rng):
  r, v, nv, te, tr = episode_batch(rng, (20, 3))
  with jax.enable_x64(True):
    r64, v64, nv64 = (np.asarray(x, np.float64) for x in (r, v, nv))
    out = rlcore.gae(r64, v64, te, tr, 0.99, 0.9, next_values=nv64)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, ref_gae(r64, v64, nv64, te, tr, 0.99, 0.9), atol=1e-12)


# --- empty time axis, NaN coefficients, non-finite inputs ------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)])
def test_empty_time_axis_gives_empty_result(method, batch):
  shape = (0,) + batch
  z, flags = np.zeros(shape, np.float32), np.zeros(shape, bool)
  v_tp1 = np.zeros((1,) + batch, np.float32)
  outs = {
      "gae": rlcore.gae(z, v_tp1, flags, None, 0.9, 0.8, method=method),
      "gae next_values": rlcore.gae(z, z, flags, flags, 0.9, 0.8, next_values=z, method=method),
      "lambda_returns": rlcore.lambda_returns(z, z, flags, flags, 0.9, 0.8, method=method),
      "discounted_returns": rlcore.discounted_returns(z, flags, None, 0.9, method=method),
      "linear_recurrence": rlcore.linear_recurrence(z, z, method=method),
      "n_step_returns": rlcore.n_step_returns(z, z, flags, None, 0.9, 3),
      "gae jit": jax.jit(lambda r, v, f: rlcore.gae(r, v, f, f, 0.9, 0.8, next_values=v,
                                                    method=method))(z, z, flags),
  }
  for name, out in outs.items():
    assert out.shape == shape and out.dtype == jnp.float32, (name, out.shape, out.dtype)


@pytest.mark.parametrize("call, name", [
    (lambda g, l: rlcore.gae(np.zeros(3), np.zeros(4), np.zeros(3), None, g, l), None),
    (lambda g, l: rlcore.lambda_returns(np.zeros(3), np.zeros(3), np.zeros(3), None, g, l),
     None),
    (lambda g, l: rlcore.discounted_returns(np.zeros(3), np.zeros(3), None, g), "gamma"),
    (lambda g, l: rlcore.n_step_returns(np.zeros(3), np.zeros(3), np.zeros(3), None, g, 2),
     "gamma"),
    (lambda g, l: rlcore.potential_based(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3),
                                         None, g), "gamma"),
])
def test_nan_discount_or_lambda_names_the_argument(call, name):
  for g, l, arg in [(np.nan, 0.9, "gamma"), (np.float32(np.nan), 0.9, "gamma"),
                    (0.9, np.nan, "lambda_"), (np.array([0.9, np.nan, 0.9]), 0.9, "gamma")]:
    if name is not None and arg != name:
      continue
    with pytest.raises(ValueError, match=rf"`{arg}` must lie in \[0.0, 1.0\], got .*nan"):
      call(g, l)


def _flagged_batch(rng):
  """[10, 2]: column 0 terminates after step 2 and is truncated after step 6."""
  r = rng.normal(size=(10, 2)).astype(np.float32)
  v = rng.normal(size=(11, 2)).astype(np.float32)
  nv = rng.normal(size=(10, 2)).astype(np.float32)
  term = np.zeros((10, 2), bool)
  trunc = np.zeros((10, 2), bool)
  term[2, 0] = trunc[6, 0] = True
  term[7, 1] = True
  return r, v, nv, term, trunc


NON_FINITE_FNS = {
    "gae": lambda r, v, nv, te, tr, lam, m: rlcore.gae(r, v, te, tr, 0.9, lam, method=m),
    "gae next_values": lambda r, v, nv, te, tr, lam, m: rlcore.gae(
        r, v[:-1], te, tr, 0.9, lam, next_values=nv, method=m),
    "lambda_returns": lambda r, v, nv, te, tr, lam, m: rlcore.lambda_returns(
        r, nv, te, tr, 0.9, lam, method=m),
    "discounted_returns": lambda r, v, nv, te, tr, lam, m: rlcore.discounted_returns(
        r, te, tr, 0.9, next_values=nv, method=m),
}


@pytest.mark.parametrize("name", list(NON_FINITE_FNS))
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad, lam", [(np.nan, 0.8), (np.inf, 0.8), (-np.inf, 1.0),
                                      (np.nan, 0.0)])
def test_non_finite_reward_spreads_back_through_its_episode_only(name, method, bad, lam, rng):
  # Documented (module docstring): a non-finite r_t makes the output non-finite at t and
  # at every earlier step of t's episode, whatever γλ; nothing else changes.
  r, v, nv, term, trunc = _flagged_batch(rng)
  fn = NON_FINITE_FNS[name]
  clean = np.asarray(fn(r, v, nv, term, trunc, lam, method))
  r_bad = r.copy()
  r_bad[5, 0] = bad                  # in column 0's episode of steps 3..6
  out = np.asarray(fn(r_bad, v, nv, term, trunc, lam, method))
  assert not np.any(np.isfinite(out[3:6, 0]))
  np.testing.assert_array_equal(out[:3, 0], clean[:3, 0])    # the earlier episode
  np.testing.assert_array_equal(out[6:, 0], clean[6:, 0])    # later steps
  np.testing.assert_array_equal(out[:, 1], clean[:, 1])      # the other column


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_values_follow_the_same_rule(method, rng):
  r, v, nv, term, trunc = _flagged_batch(rng)
  clean = np.asarray(rlcore.gae(r, v[:-1], term, trunc, 0.9, 0.8, next_values=nv,
                                method=method))
  # A bootstrap value at a termination is never read.
  nv_term = nv.copy()
  nv_term[2, 0] = np.nan
  out = rlcore.gae(r, v[:-1], term, trunc, 0.9, 0.8, next_values=nv_term, method=method)
  np.testing.assert_array_equal(out, clean)
  # V'_t used at a truncation: non-finite at t and back to the start of the episode.
  nv_trunc = nv.copy()
  nv_trunc[6, 0] = np.inf
  out = np.asarray(rlcore.gae(r, v[:-1], term, trunc, 0.9, 0.8, next_values=nv_trunc,
                              method=method))
  assert not np.any(np.isfinite(out[3:7, 0]))
  np.testing.assert_array_equal(out[:3, 0], clean[:3, 0])
  np.testing.assert_array_equal(out[7:], clean[7:])
  np.testing.assert_array_equal(out[:, 1], clean[:, 1])


def test_non_finite_reward_in_n_step_returns_reaches_n_minus_1_earlier_steps(rng):
  r, v, nv, term, trunc = _flagged_batch(rng)
  clean = np.asarray(rlcore.n_step_returns(r, nv, term, trunc, 0.9, 2))
  r_bad = r.copy()
  r_bad[5, 0] = np.nan
  out = np.asarray(rlcore.n_step_returns(r_bad, nv, term, trunc, 0.9, 2))
  assert not np.any(np.isfinite(out[4:6, 0]))
  mask = np.ones(out.shape, bool)
  mask[4:6, 0] = False
  np.testing.assert_array_equal(out[mask], clean[mask])
  # ...and never across a termination, even within n steps
  r_bad = r.copy()
  r_bad[3, 0] = np.nan
  out = np.asarray(rlcore.n_step_returns(r_bad, nv, term, trunc, 0.9, 4))
  clean = np.asarray(rlcore.n_step_returns(r, nv, term, trunc, 0.9, 4))
  assert not np.isfinite(out[3, 0])
  mask = np.ones(out.shape, bool)
  mask[3, 0] = False
  np.testing.assert_array_equal(out[mask], clean[mask])


def test_linear_recurrence_zero_coefficient_still_reads_a_non_finite_next_value():
  for method in METHODS:
    y = np.asarray(rlcore.linear_recurrence(jnp.array([1.0, np.nan]), jnp.array([0.0, 0.5]),
                                            method=method))
    assert np.isnan(y).all()


def test_bfloat16_coefficients_are_range_checked_not_rejected():
  r, flags = np.ones(3, np.float32), np.zeros(3, bool)
  out = rlcore.discounted_returns(r, flags, None, jnp.bfloat16(0.5))
  np.testing.assert_allclose(out, [1.75, 1.5, 1.0])
  with pytest.raises(ValueError, match=r"`gamma` must lie in \[0.0, 1.0\], got nan"):
    rlcore.discounted_returns(r, flags, None, jnp.bfloat16(np.nan))
