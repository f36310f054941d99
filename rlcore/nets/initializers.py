"""Weight initialisers that compile to plain XLA ops (no LAPACK custom calls).

`orthogonal(scale)` draws the same matrices as `jax.nn.initializers.orthogonal`
(Saxe et al. 2013, https://arxiv.org/abs/1312.6120), up to float rounding: for a
Gaussian matrix A = QR with diag(R) > 0 it returns scale · Q. Q comes from
Gram-Schmidt with reorthogonalisation written in `jnp` instead of `jnp.linalg.qr`.

Why: under `vmap` (seeds and sweep points in one compiled call) `jnp.linalg.qr`
lowers to a batched LAPACK kernel that splits its batch over XLA:CPU's intra-op
thread pool and blocks until the pieces finish. When XLA runs as many such kernels
at once as the pool has threads (the towers' layers are independent, so it does),
every pool thread waits for work that only a pool thread can run, and the program
hangs forever. On 2 cores (jaxlib 0.10.2) it hung the second of two back-to-back
4-seed PPO runs here and several CI runs before that, with both pool threads parked in
`QrFactorization` → `ParallelBatchMap` → `BlockingCounter::Wait`. With this
initialiser, 23 such runs in a row finished.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def orthonormal_columns(a: jax.Array) -> jax.Array:
  """Q of the thin QR factorisation a = QR with diag(R) > 0.

  Classical Gram-Schmidt, each column orthogonalised twice ("twice is enough",
  Giraud et al. 2005), which keeps QᵀQ = I to float32 precision.

  Args:
    a: [n, m] with n >= m and full column rank (a Gaussian matrix is, almost surely).

  Returns:
    [n, m] with orthonormal columns spanning the same nested subspaces as `a`.
  """
  n, m = a.shape
  if n < m:
    raise ValueError(f"orthonormal_columns: a must have at least as many rows as columns, "
                     f"got shape {a.shape}")

  def column(j, q):
    v = a[:, j]
    for _ in range(2):
      v = v - q @ (q.T @ v)          # columns j.. of q are still zero
    return q.at[:, j].set(v / jnp.linalg.norm(v))

  return jax.lax.fori_loop(0, m, column, jnp.zeros_like(a))


def orthogonal(scale: float = 1.0, column_axis: int = -1):
  """`jax.nn.initializers.orthogonal(scale, column_axis)` without LAPACK.

  Returns an initialiser `(key, shape, dtype) -> array`: the kernel reshaped to
  [rows, cols] (cols = shape[column_axis]) is scale · Q, with orthonormal columns
  if rows >= cols and orthonormal rows otherwise. The Gaussian draw and Q are float32
  and cast to `dtype` at the end (jax draws in `dtype`, so for float32 they agree).
  """
  def init(key, shape, dtype=jnp.float32):
    if len(shape) < 2:
      raise ValueError(f"orthogonal: shape must have at least 2 dimensions, got {shape}")
    n_cols = shape[column_axis]
    n_rows = int(np.prod(shape)) // n_cols
    tall = (n_cols, n_rows) if n_rows < n_cols else (n_rows, n_cols)
    q = orthonormal_columns(jax.random.normal(key, tall, jnp.float32))
    if n_rows < n_cols:
      q = q.T
    q = q.reshape(tuple(np.delete(shape, column_axis)) + (n_cols,))
    return (scale * jnp.moveaxis(q, -1, column_axis)).astype(dtype)

  return init
