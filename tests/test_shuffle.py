"""rlcore.shuffle: the Feistel bijection against numpy, permutations of every size,
and chi-square checks that minibatch membership is uniform (with a control that the
checks reject too few rounds)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rlcore import shuffle


def ref_feistel(x, keys, bits):
  """numpy reference of `shuffle.feistel` (uint32 arithmetic wraps like XLA's)."""
  x = np.asarray(x, np.uint32)
  low = (bits + 1) // 2
  high = bits - low

  def mix(v):
    v = v ^ (v >> np.uint32(16))
    v = v * np.uint32(0x7FEB352D)
    v = v ^ (v >> np.uint32(15))
    v = v * np.uint32(0x846CA68B)
    return v ^ (v >> np.uint32(16))

  left, right = x >> np.uint32(low), x & np.uint32((1 << low) - 1)
  for i, k in enumerate(np.asarray(keys, np.uint32)):
    if i % 2 == 0:
      left = left ^ (mix(right ^ k) >> np.uint32(32 - high))
    else:
      right = right ^ (mix(left ^ k) >> np.uint32(32 - low))
  return (left << np.uint32(low)) | right


@pytest.mark.parametrize("bits", [2, 3, 9, 16])
def test_feistel_equals_numpy_and_is_a_bijection(bits):
  keys = np.random.default_rng(bits).integers(0, 2**32, size=5, dtype=np.uint32)
  x = np.arange(1 << bits, dtype=np.uint32)
  with np.errstate(over="ignore"):
    want = ref_feistel(x, keys, bits)
  got = np.asarray(jax.jit(shuffle.feistel, static_argnums=2)(x, keys, bits))
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(np.sort(got), x)


SIZES = [1, 17, 1000, 1025, 8193]


@pytest.mark.parametrize("fn", [shuffle.permutation, shuffle.feistel_permutation,
                                shuffle.sort_permutation])
@pytest.mark.parametrize("n", SIZES)
def test_every_size_gives_a_permutation_under_jit_and_vmap(n, fn):
  if fn is shuffle.sort_permutation and n > 1024:
    pytest.skip("sort_permutation takes up to 1024 items")
  keys = jax.random.split(jax.random.PRNGKey(n), 3)
  one = np.asarray(jax.jit(lambda k: fn(k, n))(keys[0]))
  many = np.asarray(jax.jit(jax.vmap(lambda k: fn(k, n)))(keys))
  assert one.dtype == np.int32 and one.shape == (n,)
  for p in many:
    np.testing.assert_array_equal(np.sort(p), np.arange(n))
  np.testing.assert_array_equal(many[0], one)      # vmap changes nothing per key
  if n >= 16:                                       # keys matter
    assert not np.array_equal(many[1], many[2])


def _first_minibatch_counts(n, k, rounds, draws=20000, fn=None):
  keys = jax.random.split(jax.random.PRNGKey(7), draws)
  fn = fn or (lambda key, n: shuffle.feistel_permutation(key, n, rounds=rounds))
  perms = np.asarray(jax.jit(jax.vmap(lambda key: fn(key, n)))(keys))
  codes = (1 << np.sort(perms[:, :k], 1)).sum(1)
  _, counts = np.unique(codes, return_counts=True)
  missing = math.comb(n, k) - len(counts)
  return perms, np.concatenate([counts, np.zeros(missing)])


# n = 16 fills the Feistel domain exactly; n = 12 needs the compaction. (With 16
# rounds, 3-bit domains, n <= 8, fail; `permutation` sorts there.)
@pytest.mark.parametrize("n,k", [(16, 4), (12, 3)])
def test_minibatch_membership_and_positions_are_uniform(n, k):
  perms, counts = _first_minibatch_counts(n, k, shuffle.DEFAULT_ROUNDS)
  assert stats.chisquare(counts).pvalue > 1e-3          # which k items share a minibatch
  positions = np.stack([np.bincount(perms[:, j], minlength=n) for j in range(n)])
  assert stats.chisquare(positions.ravel()).pvalue > 1e-3   # where each item lands


@pytest.mark.parametrize("n,k", [(8, 4), (6, 2), (12, 3)])
def test_the_sort_permutation_is_uniform(n, k):
  perms, counts = _first_minibatch_counts(n, k, None, fn=shuffle.sort_permutation)
  assert stats.chisquare(counts).pvalue > 1e-3
  positions = np.stack([np.bincount(perms[:, j], minlength=n) for j in range(n)])
  assert stats.chisquare(positions.ravel()).pvalue > 1e-3


def test_the_uniformity_check_rejects_too_few_rounds():
  _, counts = _first_minibatch_counts(16, 4, rounds=4)
  assert stats.chisquare(counts).pvalue < 1e-6


@pytest.mark.parametrize("n", [2048, 3000])
def test_two_items_share_minibatches_as_by_chance(n):
  """Which of 4 minibatches items 0 and 1 land in: the 16 joint cells, chi-square."""
  m, per = 4, n // 4
  keys = jax.random.split(jax.random.PRNGKey(5), 4000)
  perms = np.asarray(jax.jit(jax.vmap(lambda key: shuffle.permutation(key, n)))(keys))
  minibatch = np.argsort(perms, 1)[:, :2] // per            # [draws, items 0 and 1]
  minibatch = np.minimum(minibatch, m - 1)                   # 3000: the rest, in the last
  sizes = [per] * (m - 1) + [n - per * (m - 1)]
  expected = np.array([sizes[a] * (sizes[b] - (a == b)) for a in range(m) for b in range(m)],
                      float)
  counts = np.bincount(minibatch[:, 0] * m + minibatch[:, 1], minlength=m * m)
  assert stats.chisquare(counts, expected / expected.sum() * len(perms)).pvalue > 1e-3


def test_neighbours_share_a_minibatch_as_often_as_chance():
  """Flattened [T, B] batches: index i and i + 1 (next env), i + 64 (next step)."""
  n, per = 8192, 2048
  keys = jax.random.split(jax.random.PRNGKey(3), 100)
  perms = np.asarray(jax.jit(jax.vmap(lambda key: shuffle.permutation(key, n)))(keys))
  minibatch = np.empty_like(perms)
  minibatch[np.arange(len(perms))[:, None], perms] = np.arange(n)[None] // per
  chance = (per - 1) / (n - 1)
  for d in (1, 64):
    shared = (minibatch[:, :-d] == minibatch[:, d:]).mean()
    assert abs(shared / chance - 1) < 0.02, (d, shared, chance)


@pytest.mark.parametrize("fn", [shuffle.permutation, shuffle.feistel_permutation])
@pytest.mark.parametrize("kwargs,match", [
    (dict(n=0), "n must be"), (dict(n=2**31), "n must be"),
    (dict(n=4096, rounds=0), "rounds must be")])
def test_bad_input_is_named(kwargs, match, fn):
  with pytest.raises(ValueError, match=match):
    fn(jax.random.PRNGKey(0), **kwargs)


def test_sort_permutation_rejects_more_than_1024_items():
  with pytest.raises(ValueError, match="between 1 and 1024"):
    shuffle.sort_permutation(jax.random.PRNGKey(0), 1025)


def test_feistel_rejects_an_unsupported_width():
  with pytest.raises(ValueError, match="bits must be"):
    shuffle.feistel(jnp.zeros(4, jnp.uint32), jnp.zeros(2, jnp.uint32), 33)
  with pytest.raises(ValueError, match="round_keys"):
    shuffle.feistel(jnp.zeros(4, jnp.uint32), jnp.zeros((2, 2), jnp.uint32), 2)
