"""Random permutations for minibatch shuffling without a sort.

`jax.random.permutation` sorts random keys (two rounds of a key-value sort for a few
hundred thousand items). On XLA:CPU a sort runs a compiled comparator per comparison,
so shuffling PPO's batch of 128 steps x 2048 envs = 262,144 samples takes about 120 ms,
four times per update: more than a quarter of the whole update at that size
(2-core CPU, jax 0.10.2; benchmarks/README.md, "PPO throughput").

`feistel_permutation` instead evaluates a keyed bijection on every index at once: a
Feistel network on the smallest number of bits b that covers `n` (the high and low
halves of an index take turns being xor-ed with a 32-bit integer hash of the other
half and a random round key), then, unless n = 2^b, keeps the images that fall below
`n`, in index order. The result is always a permutation of `0..n-1`; it costs a few
dozen elementwise integer operations per index (about 0.5 ms for 262,144 samples
instead of 120 ms). `permutation`, what the agents call, uses it above 1024 items
and `jax.random.permutation` below. This is the bijective-shuffle construction of "Bandwidth-Optimal Random Shuffling for GPUs"
(Mitchell, Stokes, Frank, Holmes 2022, https://arxiv.org/abs/2106.06161), which
`thrust::shuffle` uses.

What it gives up: the permutations are pseudo-random functions of a 32-bit key per
round, not exact draws from the uniform distribution over all n! orderings.
What minibatch SGD needs is that the sets of samples that share a minibatch are
uniformly random; `tests/test_shuffle.py` checks that with chi-square tests (which
subsets form the first minibatch, where each index lands, which minibatches two
items share) on sizes that do and do not need the compaction.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_ROUNDS = 16
SORT_MAX_ITEMS = 1024   # `permutation` sorts up to this many items (measured, see there)

# A 32-bit integer finaliser with low bias ("lowbias32", constants from Chris
# Wellons' hash-prospector, public domain): an invertible mix of all 32 bits.
_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)


def _mix32(x: jax.Array) -> jax.Array:
  x = x ^ (x >> 16)
  x = x * _M1
  x = x ^ (x >> 15)
  x = x * _M2
  return x ^ (x >> 16)


def _bits(n: int) -> int:
  """b such that the Feistel domain 2^b is the smallest power of 2 >= n (b >= 2)."""
  return max(2, math.ceil(math.log2(n)))


def feistel(x: jax.Array, round_keys: jax.Array, bits: int) -> jax.Array:
  """The keyed Feistel bijection of [0, 2^bits) applied to uint32 `x`.

  With L the high ⌊bits/2⌋ bits of x and R the low ⌈bits/2⌉ bits, the rounds
  alternate (an unbalanced Feistel network when `bits` is odd):

      even rounds: L ← L ⊕ F_k(R),   odd rounds: R ← R ⊕ F_k(L),
      F_k(v) = the top |target| bits of mix32(v ⊕ k),

  with one key k per round. Each round is its own inverse, so any keys give a
  bijection.

  Args:
    x: [...] uint32 values below 2^bits.
    round_keys: [rounds] uint32 keys.
    bits: the domain's bits (2 to 32).

  Returns:
    [...] uint32: the images of `x`.
  """
  if jnp.ndim(round_keys) != 1:
    raise ValueError(f"round_keys must be a vector [rounds], got shape {jnp.shape(round_keys)}.")
  if not 2 <= bits <= 32:
    raise ValueError(f"bits must be between 2 and 32, got {bits}.")
  low_bits = (bits + 1) // 2
  high_bits = bits - low_bits
  low_mask = np.uint32((1 << low_bits) - 1)
  left = (x >> np.uint32(low_bits)) & np.uint32((1 << high_bits) - 1)
  right = x & low_mask
  for i in range(round_keys.shape[0]):
    if i % 2 == 0:
      left = left ^ (_mix32(right ^ round_keys[i]) >> np.uint32(32 - high_bits))
    else:
      right = right ^ (_mix32(left ^ round_keys[i]) >> np.uint32(32 - low_bits))
  return (left << np.uint32(low_bits)) | right


def permutation(key: jax.Array, n: int, *, rounds: int = DEFAULT_ROUNDS) -> jax.Array:
  """A random permutation of `arange(n)`: `jax.random.permutation` up to
  `SORT_MAX_ITEMS` items, `feistel_permutation` above.

  Measured on PPO CartPole updates (2-core CPU, jax 0.10.2, PJRT_NPROC=8): at
  4 envs x 128 steps (512 items) whole updates with the sort took 3.1 ms against
  4.7-5.4 ms with the Feistel shuffle (or even with no shuffle at all; the cause,
  inside XLA:CPU's scheduling, was not found), at 1024 items both 7.0 ms, from 2048
  items on the Feistel shuffle is faster (14.3 against 19.2 ms at 2048, 30 against
  45 ms of learning at 8192). Small n also mixes least under few Feistel rounds
  (n = 8 needs 24), so it is the sort's.

  Args:
    key: a PRNG key.
    n: the number of items (static, 1 to 2^30).
    rounds: Feistel rounds (static; used above `SORT_MAX_ITEMS`).

  Returns:
    [n] int32: every index in 0..n−1 once.
  """
  n = int(n)
  if n < 1 or n > 2**30:
    raise ValueError(f"n must be between 1 and 2^30, got {n}.")
  if rounds < 1:
    raise ValueError(f"rounds must be a positive integer, got {rounds}.")
  if n <= SORT_MAX_ITEMS:
    return jax.random.permutation(key, n).astype(jnp.int32)
  return feistel_permutation(key, n, rounds=rounds)


def feistel_permutation(key: jax.Array, n: int, *,
                        rounds: int = DEFAULT_ROUNDS) -> jax.Array:
  """A pseudo-random permutation of `arange(n)` from a keyed Feistel bijection.

      π = [σ_k(i) for i in 0 .. 2^b − 1 if σ_k(i) < n],

  with σ_k the Feistel bijection (`feistel`) of the smallest power-of-two domain
  2^b ≥ n (b ≥ 2; no compaction when n is a power of two from 4 on) and `rounds`
  round keys drawn from `key` (Mitchell et al. 2022,
  https://arxiv.org/abs/2106.06161). A drop-in for `jax.random.permutation(key, n)`
  where what matters is which items share a minibatch (see the module docstring for
  what it does not give); unlike that, it needs no sort.

  Args:
    key: a PRNG key.
    n: the number of items (static, 1 to 2^30).
    rounds: Feistel rounds (static).

  Returns:
    [n] int32: every index in 0..n−1 once.
  """
  n = int(n)
  if n < 1 or n > 2**30:
    raise ValueError(f"n must be between 1 and 2^30, got {n}.")
  if rounds < 1:
    raise ValueError(f"rounds must be a positive integer, got {rounds}.")
  bits = _bits(n)
  domain = 1 << bits
  round_keys = jax.random.bits(key, (rounds,), jnp.uint32)
  images = feistel(jnp.arange(domain, dtype=jnp.uint32), round_keys, bits)
  if domain == n:
    return images.astype(jnp.int32)
  # Stream compaction: the images below n, in the order of their preimages.
  keep = images < np.uint32(n)
  slot = jnp.cumsum(keep, dtype=jnp.int32) - 1
  slot = jnp.where(keep, slot, n)              # out of range: dropped by the scatter
  return jnp.zeros((n,), jnp.int32).at[slot].set(images.astype(jnp.int32), mode="drop")
