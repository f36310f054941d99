"""Random permutations for minibatch shuffling without a key-value sort.

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
and a single sort of packed random keys (`sort_permutation`) up to 1024. This is the
bijective-shuffle construction of "Bandwidth-Optimal Random Shuffling for GPUs"
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
SORT_MAX_ITEMS = 1024   # `permutation` sorts up to this many items (see there)

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


def _check(n, rounds) -> int:
  n = int(n)
  if n < 1 or n > 2**30:
    raise ValueError(f"n must be between 1 and 2^30, got {n}.")
  if rounds < 1:
    raise ValueError(f"rounds must be a positive integer, got {rounds}.")
  return n


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
  """A random permutation of `arange(n)`: `sort_permutation` up to `SORT_MAX_ITEMS`
  items, `feistel_permutation` above.

  Few items mix least under the Feistel rounds (which 4 of 8 items come first is
  measurably non-uniform with 16 rounds; tests/test_shuffle.py), and sorting them
  costs little. Measured on PPO's CartPole updates (2-core CPU, jax 0.10.2): at 2048
  envs x 128 steps a shuffle took 0.5 ms against 120 ms with `jax.random.permutation`;
  at 4 envs x 128 steps (512 items) the sort kept 1-seed updates fastest (3.1-3.5 ms
  against 3.2-4.1 ms with the Feistel shuffle, run to run), and the single-operand
  sort of `sort_permutation` made 8 vmapped seeds as fast as the Feistel shuffle
  (20.2 against 24.2 ms per update with `jax.random.permutation`'s key-value sort).

  Args:
    key: a PRNG key.
    n: the number of items (static, 1 to 2^30).
    rounds: Feistel rounds (static; used above `SORT_MAX_ITEMS`).

  Returns:
    [n] int32: every index in 0..n−1 once.
  """
  n = _check(n, rounds)
  if n <= SORT_MAX_ITEMS:
    return sort_permutation(key, n)
  return feistel_permutation(key, n, rounds=rounds)


def sort_permutation(key: jax.Array, n: int) -> jax.Array:
  """A uniformly random permutation of `arange(n)` (n ≤ 1024) by one single-operand sort.

      π = low b bits of sort(r_i · 2^b + i),  b = ⌈log2 n⌉, r_i uniform on 32 − b bits,

  i.e. the items ordered by independent random keys, ties (probability about
  n² / 2^(33−b) of any; 0.016 at n = 512) broken by index, as
  `jax.random.permutation` breaks them. XLA:CPU sorts one uint32 operand with its
  built-in comparator, about 5x faster than the key-value sort with a compiled
  comparator that `jax.random.permutation` runs.

  Args:
    key: a PRNG key.
    n: the number of items (static, 1 to 1024).

  Returns:
    [n] int32: every index in 0..n−1 once.
  """
  n = int(n)
  if not 1 <= n <= 1024:
    raise ValueError(f"n must be between 1 and 1024, got {n}.")
  bits = max(1, math.ceil(math.log2(n)))
  low = np.uint32((1 << bits) - 1)
  packed = (jax.random.bits(key, (n,), jnp.uint32) & ~low) | jnp.arange(n, dtype=jnp.uint32)
  return (jax.lax.sort(packed) & low).astype(jnp.int32)


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
  n = _check(n, rounds)
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
