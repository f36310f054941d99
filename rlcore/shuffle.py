"""Random permutations for minibatch shuffling without a sort.

`jax.random.permutation` sorts random keys (two rounds of a key-value sort for a few
hundred thousand items). On XLA:CPU a sort runs a compiled comparator per comparison,
so shuffling PPO's batch of 128 steps x 2048 envs = 262,144 samples takes about 120 ms,
four times per update: more than a quarter of the whole update at that size
(2-core CPU, jax 0.10.2; benchmarks/README.md, "PPO throughput").

`permutation` instead evaluates a keyed bijection on every index at once: a balanced
Feistel network on the smallest even number of bits that covers `n` (each round
`(L, R) -> (R, L xor F_k(R))`, with `F_k` a 32-bit integer hash of `R` and a random
round key), then keeps the images that fall below `n`, in index order. The result
is always a permutation of `0..n-1`; it costs a few dozen elementwise integer
operations per index (about 1 ms for 262,144 samples instead of 120 ms). This is
the bijective-shuffle construction of "Bandwidth-Optimal Random Shuffling for GPUs"
(Mitchell, Stokes, Frank, Holmes 2022, https://arxiv.org/abs/2106.06161), which
`thrust::shuffle` uses.

What it gives up: the permutations are pseudo-random functions of a 32-bit key per
round, not exact draws from the uniform distribution over all n! orderings (a
Feistel network on a power-of-two domain, for one, only reaches even permutations).
What minibatch SGD needs is that the sets of samples that share a minibatch are
uniformly random; `tests/test_shuffle.py` checks that with chi-square tests (which
subsets form the first minibatch, where each index lands) on sizes that do and do
not need the compaction.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_ROUNDS = 16

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


def _half_bits(n: int) -> int:
  """h such that the Feistel domain 2^(2h) is the smallest even power of 2 >= n (h >= 1)."""
  bits = max(1, math.ceil(math.log2(n))) if n > 1 else 1
  return (bits + 1) // 2


def feistel(x: jax.Array, round_keys: jax.Array, half_bits: int) -> jax.Array:
  """The keyed Feistel bijection of [0, 2^(2·half_bits)) applied to uint32 `x`.

      (L, R) → (R, L ⊕ F_k(R)),  F_k(R) = top `half_bits` bits of mix32(R ⊕ k),

  one round per key, where L and R are the high and low `half_bits` bits of `x`.

  Args:
    x: [...] uint32 values below 2^(2·half_bits).
    round_keys: [rounds] uint32 keys.
    half_bits: bits per half (1 to 16).

  Returns:
    [...] uint32: the images of `x`, a bijection of the domain for any keys.
  """
  if jnp.ndim(round_keys) != 1:
    raise ValueError(f"round_keys must be a vector [rounds], got shape {jnp.shape(round_keys)}.")
  if not 1 <= half_bits <= 16:
    raise ValueError(f"half_bits must be between 1 and 16, got {half_bits}.")
  mask = np.uint32((1 << half_bits) - 1)
  shift = np.uint32(32 - half_bits)
  left = (x >> np.uint32(half_bits)) & mask
  right = x & mask
  for i in range(round_keys.shape[0]):
    f = _mix32(right ^ round_keys[i]) >> shift
    left, right = right, left ^ f
  return (left << np.uint32(half_bits)) | right


def permutation(key: jax.Array, n: int, *, rounds: int = DEFAULT_ROUNDS) -> jax.Array:
  """A pseudo-random permutation of `arange(n)` from a keyed Feistel bijection.

      π = [σ_k(i) for i in 0 .. 2^(2h) − 1 if σ_k(i) < n],

  with σ_k the Feistel bijection (`feistel`) of the smallest even-power-of-two domain
  2^(2h) ≥ n and `rounds` round keys drawn from `key` (Mitchell et al. 2022,
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
  half = _half_bits(n)
  domain = 1 << (2 * half)
  round_keys = jax.random.bits(key, (rounds,), jnp.uint32)
  images = feistel(jnp.arange(domain, dtype=jnp.uint32), round_keys, half)
  if domain == n:
    return images.astype(jnp.int32)
  # Stream compaction: the images below n, in the order of their preimages.
  keep = images < np.uint32(n)
  slot = jnp.cumsum(keep, dtype=jnp.int32) - 1
  slot = jnp.where(keep, slot, n)              # out of range: dropped by the scatter
  return jnp.zeros((n,), jnp.int32).at[slot].set(images.astype(jnp.int32), mode="drop")
