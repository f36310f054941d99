"""Fixed state features and linear maps on them, fast on XLA:CPU.

* `fourier_features`: the coupled Fourier basis (Konidaris, Osentoski & Thomas 2011),
  as used by BARFI's policies and reward functions.
* `features_linear`: `features @ kernel` whose kernel gradient is computed from a
  transposed copy of the features.

Both exist for speed and compute the same functions as the plain expressions
(`jnp.cos(jnp.pi * x @ c.T)`, `features @ kernel`); the reasons are measured in
`benchmarks/README.md` ("BARFI end to end").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import _checks

Array = jax.Array


def fourier_basis(order: int, dim: int) -> np.ndarray:
  """The integer frequency vectors c ∈ {0, ..., order}^dim of the coupled Fourier basis.

  Rows in `itertools.product` order (the first dimension's frequency varies slowest).
  See Konidaris, Osentoski & Thomas, "Value Function Approximation in Reinforcement
  Learning using the Fourier Basis", AAAI 2011
  (https://people.cs.umass.edu/~pthomas/papers/Konidaris2011a.pdf).

  Args:
    order: n ≥ 0, the largest frequency per dimension.
    dim: D ≥ 1, the state dimension.

  Returns:
    [(n+1)^D, D] float32 array.
  """
  for name, v, low in (("order", order, 0), ("dim", dim, 1)):
    if int(v) != v or v < low:
      raise ValueError(f"fourier_basis: `{name}` must be an integer >= {low}, got {v!r}.")
  grid = np.indices((int(order) + 1,) * int(dim))        # [D, n+1, ..., n+1]
  return grid.reshape(int(dim), -1).T.astype(np.float32)


def fourier_features(x: Array, order: int) -> Array:
  """The coupled Fourier basis φ_c(x) = cos(π c·x) for every c ∈ {0, ..., order}^D.

  Equal to `jnp.cos(jnp.pi * x @ fourier_basis(order, D).T)` up to float rounding
  (about 5e-6 at order 3, D = 4), computed without a cosine per feature: cos(kπx_d)
  and sin(kπx_d) per dimension by the Chebyshev recurrences
  cos(ka) = 2 cos(a) cos((k−1)a) − cos((k−2)a) (sin alike), then the sums over
  dimensions by the angle-addition formulas cos(a + b) = cos a cos b − sin a sin b,
  sin(a + b) = sin a cos b + cos a sin b, one dimension at a time. That is 2D cosines
  and sines per state instead of (n+1)^D; on XLA:CPU 2.5x faster than the plain
  expression for 7,500 states of dimension 4 at order 3 (measured in
  `benchmarks/README.md`).

  See Konidaris, Osentoski & Thomas, AAAI 2011
  (https://people.cs.umass.edu/~pthomas/papers/Konidaris2011a.pdf); BARFI
  (https://arxiv.org/abs/2310.19007) uses order 3 on CartPole's 4 state variables.

  Args:
    x: [..., D] states, each dimension scaled to [0, 1].
    order: n ≥ 0, static: the largest frequency per dimension.

  Returns:
    [..., (n+1)^D] features, columns in `fourier_basis(order, D)`'s row order.
  """
  fn = "fourier_features"
  if int(order) != order or order < 0:
    raise ValueError(f"{fn}: `order` must be an integer >= 0 (static), got {order!r}.")
  order = int(order)
  if np.ndim(x) < 1 or np.shape(x)[-1] < 1:
    raise ValueError(f"{fn}: `x` must have shape [..., D] with D >= 1, got "
                     f"{tuple(np.shape(x))}.")
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  a = jnp.pi * x
  c1, s1 = jnp.cos(a), jnp.sin(a)
  cos_k, sin_k = [jnp.ones_like(a), c1], [jnp.zeros_like(a), s1]
  for _ in range(2, order + 1):
    cos_k.append(2 * c1 * cos_k[-1] - cos_k[-2])
    sin_k.append(2 * c1 * sin_k[-1] - sin_k[-2])
  cos_k = jnp.stack(cos_k[:order + 1], -1)     # [..., D, n+1]
  sin_k = jnp.stack(sin_k[:order + 1], -1)
  dim = x.shape[-1]
  cos_sum, sin_sum = cos_k[..., 0, :], sin_k[..., 0, :]
  for d in range(1, dim):
    cd, sd = cos_k[..., d, None, :], sin_k[..., d, None, :]
    new_cos = cos_sum[..., :, None] * cd - sin_sum[..., :, None] * sd
    if d < dim - 1:    # the last dimension needs only the cosines
      sin_sum = sin_sum[..., :, None] * cd + cos_sum[..., :, None] * sd
      sin_sum = sin_sum.reshape(sin_sum.shape[:-2] + (-1,))
    cos_sum = new_cos.reshape(new_cos.shape[:-2] + (-1,))
  return cos_sum


def fourier_features_t(x: Array, order: int) -> Array:
  """`fourier_features(x, order)` of x [N, D] laid out [F, N] (its transpose).

  Computed in that layout (the states on the minor axis), not transposed afterwards:
  for `features_linear`'s `features_t`.

  Args:
    x: [N, D] states, each dimension scaled to [0, 1].
    order: n ≥ 0, static.

  Returns:
    [(n+1)^D, N] features.
  """
  if np.ndim(x) != 2:
    raise ValueError(f"fourier_features_t: `x` must have shape [N, D], got "
                     f"{tuple(np.shape(x))}.")
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  a = jnp.pi * x.T                               # [D, N]
  c1, s1 = jnp.cos(a), jnp.sin(a)
  cos_k, sin_k = [jnp.ones_like(a), c1], [jnp.zeros_like(a), s1]
  for _ in range(2, int(order) + 1):
    cos_k.append(2 * c1 * cos_k[-1] - cos_k[-2])
    sin_k.append(2 * c1 * sin_k[-1] - sin_k[-2])
  cos_k = jnp.stack(cos_k[:int(order) + 1], 1)   # [D, n+1, N]
  sin_k = jnp.stack(sin_k[:int(order) + 1], 1)
  dim, n = a.shape
  cos_sum, sin_sum = cos_k[0], sin_k[0]           # [K, N]
  for d in range(1, dim):
    cd, sd = cos_k[d][None], sin_k[d][None]       # [1, n+1, N]
    new_cos = cos_sum[:, None] * cd - sin_sum[:, None] * sd
    if d < dim - 1:
      sin_sum = (sin_sum[:, None] * cd + cos_sum[:, None] * sd).reshape(-1, n)
    cos_sum = new_cos.reshape(-1, n)
  return cos_sum


@jax.custom_vjp
def _linear(rows, cols, kernel):
  return rows @ kernel


def _linear_fwd(rows, cols, kernel):
  return rows @ kernel, (rows, cols)


def _linear_bwd(res, g):
  _, cols = res
  # No cotangents for the features: they are fixed (a function of the states only).
  return None, None, cols @ g


_linear.defvjp(_linear_fwd, _linear_bwd)


def features_linear(features: Array, kernel: Array, features_t: Array) -> Array:
  """y = features · kernel, with ∂y/∂kernel applied as features_t · g.

  The value, the kernel's gradient and forward-over-reverse products (Hessian-vector
  products, `jax.jvp` of `jax.grad`) are those of `features @ kernel`; only the
  kernel's gradient is computed differently: from `features_t`, the same features
  laid out [F, N], as `features_t @ g`. Autodiff's own product, features[N, F]ᵀ · g
  with N ≫ F, contracts over the rows' major dimension, which XLA:CPU runs 6x slower
  than `features_t @ g` for N = 7,500, F = 256 and 2 outputs (1.6 against 0.25 ms;
  `benchmarks/README.md`). Pass the transpose once per batch and reuse it.

  No gradient flows to `features` or `features_t` (fixed features; their cotangents
  are zero). Reverse-mode through the kernel's gradient itself (e.g. `jax.vjp` of
  `jax.grad` with respect to other inputs) is exact too.

  Args:
    features: [..., F] features (any leading shape, N = their product).
    kernel: [F, K] weights.
    features_t: [F, N] `features.reshape(N, F).T` (the caller computes it once).

  Returns:
    [..., K] outputs.
  """
  fn = "features_linear"
  shape = tuple(np.shape(features))
  _checks.check_rank(fn, "kernel", kernel, 2, "[F, K]")
  f, k = np.shape(kernel)
  if shape[-1:] != (f,):
    raise ValueError(f"{fn}: `features` must end in the kernel's F = {f}, got shape "
                     f"{shape}.")
  n = int(np.prod(shape[:-1]))
  _checks.check_shape(fn, "features_t", features_t, (f, n), "[F, N] (features as [N, F], "
                      "transposed)")
  out = _linear(jnp.reshape(features, (n, f)), features_t, kernel)
  return jnp.reshape(out, shape[:-1] + (k,))
