"""Network initialisers: orthogonal without LAPACK, equal to jax's, and no LAPACK kernels
in the vmapped training programs (batched LAPACK kernels deadlock XLA:CPU on 2 cores)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore.agents import ppo, reinforce
from rlcore.nets import initializers

SHAPES = [(4, 64), (64, 64), (64, 2), (64, 1), (3, 4, 5), (7, 3)]


def _numpy_orthogonal(z, scale):
  """numpy reference: Q of z = QR with diag(R) > 0, times scale."""
  q, r = np.linalg.qr(z.astype(np.float64))
  return scale * q * np.sign(np.diag(r))


@pytest.mark.parametrize("n, m", [(5, 5), (64, 4), (64, 64), (9, 1)])
def test_orthonormal_columns_matches_numpy_qr(n, m):
  z = np.random.default_rng(n * m).normal(size=(n, m)).astype(np.float32)
  q = np.asarray(initializers.orthonormal_columns(jnp.asarray(z)))
  np.testing.assert_allclose(q, _numpy_orthogonal(z, 1.0), atol=2e-5)
  np.testing.assert_allclose(q.T @ q, np.eye(m), atol=2e-6)


def test_orthonormal_columns_rejects_wide_matrices():
  with pytest.raises(ValueError, match=r"at least as many rows.*\(2, 3\)"):
    initializers.orthonormal_columns(jnp.ones((2, 3)))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("column_axis", [-1, 0])
def test_orthogonal_equals_jax_initializer(shape, column_axis):
  key = jax.random.key(7)
  ours = initializers.orthogonal(1.7, column_axis)(key, shape)
  theirs = jax.nn.initializers.orthogonal(1.7, column_axis)(key, shape)
  assert ours.shape == shape and ours.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=5e-6)


def test_orthogonal_under_jit_and_jit_vmap():
  init = initializers.orthogonal(2.0)
  keys = jax.random.split(jax.random.key(0), 3)
  batched = jax.jit(jax.vmap(lambda k: init(k, (6, 4))))(keys)
  for i in range(3):
    single = jax.jit(lambda k: init(k, (6, 4)))(keys[i])
    np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(single), atol=1e-6)
    np.testing.assert_allclose(np.asarray(single).T @ np.asarray(single), 4.0 * np.eye(4),
                               atol=2e-5)


def test_orthogonal_rejects_vectors():
  with pytest.raises(ValueError, match="at least 2 dimensions"):
    initializers.orthogonal()(jax.random.key(0), (5,))


def _custom_calls(fn, *args):
  return set(re.findall(r"custom_call @(\w+)", jax.jit(fn).lower(*args).as_text()))


def test_jax_orthogonal_would_bring_batched_lapack():
  # The check below can fail: jax's own initialiser lowers to LAPACK QR.
  keys = jax.random.split(jax.random.key(0), 2)
  calls = _custom_calls(jax.vmap(lambda k: jax.nn.initializers.orthogonal()(k, (4, 4))), keys)
  assert any("lapack" in c for c in calls), calls


@pytest.mark.parametrize("module, env", [(ppo, "CartPole-v1"), (ppo, "Pendulum-v1"),
                                         (reinforce, "CartPole-v1"), (ppo, "inverted_pendulum")])
def test_vmapped_training_programs_have_no_lapack_kernels(module, env):
  """The networks bring no LAPACK kernel. brax's inverted_pendulum runs on `spring`
  here: the default `generalized` physics itself solves with LAPACK's Cholesky
  (lapack_spotrf_ffi, lapack_strsm_ffi) on CPU, whatever the network."""
  c = ppo.default_config()   # reinforce reads the same keys
  c.env_name, c.total_timesteps = env, c.num_envs * c.num_steps * 2
  if env == "inverted_pendulum":
    c.env_backend = "spring"
  keys = jax.random.split(jax.random.key(0), 2)
  calls = _custom_calls(jax.vmap(module.make_train(c)), keys)
  assert not [x for x in calls if "lapack" in x], calls


def test_lecun_uniform_kernels_are_brax_s_and_orthogonal_stays_the_default():
  """kernel_init="lecun_uniform": every kernel, heads included, is U(±sqrt(3 / fan_in))
  as brax's MLPs (brax.training.networks.MLP's default); biases 0. The default draws
  orthogonal kernels (here: the critic head's gain-1 unit-norm column)."""
  from rlcore.nets import mlp
  obs = jnp.zeros((1, 17))
  net = mlp.ActorCritic(3, False, (32, 32), "swish", (256, 256),
                        state_dependent_scale=True, kernel_init="lecun_uniform")
  params = net.init(jax.random.PRNGKey(0), obs)["params"]
  for name, layer in params.items():
    w = np.asarray(layer["kernel"], np.float64)
    bound = np.sqrt(3.0 / w.shape[0])
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound, name
    assert np.all(np.asarray(layer["bias"]) == 0), name
    if w.size >= 1024:       # the variance of U(±b) is b² / 3 = 1 / fan_in
      assert abs(w.var() * w.shape[0] - 1.0) < 0.1, name
  default = mlp.ActorCritic(3, False, (32, 32), "swish", (256, 256)).init(
      jax.random.PRNGKey(0), obs)["params"]
  head = np.asarray(default["critic_head"]["kernel"], np.float64)
  assert abs(np.linalg.norm(head) - 1.0) < 1e-5
  with pytest.raises(ValueError, match=r"kernel_init = 'xavier'; expected one of"):
    mlp.ActorCritic(3, False, kernel_init="xavier").init(jax.random.PRNGKey(0), obs)
