"""Fixed state features and linear maps on them, fast on XLA:CPU.

* `fourier_features`: the coupled Fourier basis (Konidaris, Osentoski & Thomas 2011),
  as used by BARFI's policies and reward functions; `fourier_trig` and
  `fourier_features_from_trig` split it in two for callers that store cos(πx), sin(πx)
  (in either layout, [N, F] or [F, N]).
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
  `benchmarks/README.md`). `fourier_features_from_trig` starts from cos(πx), sin(πx)
  when the caller keeps them.

  See Konidaris, Osentoski & Thomas, AAAI 2011
  (https://people.cs.umass.edu/~pthomas/papers/Konidaris2011a.pdf); BARFI
  (https://arxiv.org/abs/2310.19007) uses order 3 on CartPole's 4 state variables.

  Args:
    x: [..., D] states, each dimension scaled to [0, 1].
    order: n ≥ 0, static: the largest frequency per dimension.

  Returns:
    [..., (n+1)^D] features, columns in `fourier_basis(order, D)`'s row order.
  """
  cos_pix, sin_pix = fourier_trig(x)
  return fourier_features_from_trig(cos_pix, sin_pix, order)


def fourier_trig(x: Array) -> tuple[Array, Array]:
  """(cos(πx), sin(πx)) of states x [..., D]: what `fourier_features_from_trig` needs.

  The per-dimension values behind the coupled Fourier basis (Konidaris et al., AAAI
  2011, https://people.cs.umass.edu/~pthomas/papers/Konidaris2011a.pdf), as BARFI's
  agent stores them (https://arxiv.org/abs/2310.19007).

  Args:
    x: [..., D] states, each dimension scaled to [0, 1].

  Returns:
    two [..., D] arrays.
  """
  if np.ndim(x) < 1 or np.shape(x)[-1] < 1:
    raise ValueError(f"fourier_trig: `x` must have shape [..., D] with D >= 1, got "
                     f"{tuple(np.shape(x))}.")
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  return jnp.cos(jnp.pi * x), jnp.sin(jnp.pi * x)


def fourier_features_from_trig(cos_pix: Array, sin_pix: Array, order: int, *,
                               transpose: bool = False) -> Array:
  """`fourier_features(x, order)` from cos(πx) and sin(πx) (`fourier_trig(x)`).

  See Konidaris et al., AAAI 2011
  (https://people.cs.umass.edu/~pthomas/papers/Konidaris2011a.pdf). For callers that
  keep the two per-dimension values (a replay buffer, say) instead
  of recomputing 2D sines and cosines per state each time the features are needed.
  With `transpose=True` the result is laid out [F, N], computed in that layout (the
  states on the minor axis), not transposed afterwards: the `features_t` of
  `features_linear`.

  Args:
    cos_pix: [..., D] cos(πx) ([N, D] when `transpose`).
    sin_pix: [..., D] sin(πx), the same shape.
    order: n ≥ 0, static: the largest frequency per dimension.
    transpose: static; return [(n+1)^D, N] instead of [N, (n+1)^D].

  Returns:
    [..., (n+1)^D] features (or [(n+1)^D, N]), columns (rows) in
    `fourier_basis(order, D)`'s row order.
  """
  fn = "fourier_features_from_trig"
  if int(order) != order or order < 0:
    raise ValueError(f"{fn}: `order` must be an integer >= 0 (static), got {order!r}.")
  order = int(order)
  shape = tuple(np.shape(cos_pix))
  if len(shape) < 1 or shape[-1] < 1:
    raise ValueError(f"{fn}: `cos_pix` must have shape [..., D] with D >= 1, got {shape}.")
  _checks.check_shape(fn, "sin_pix", sin_pix, shape, "(cos_pix's shape)")
  if transpose and len(shape) != 2:
    raise ValueError(f"{fn}: with transpose=True `cos_pix` must have shape [N, D], got "
                     f"{shape}.")
  c1, s1 = jnp.asarray(cos_pix), jnp.asarray(sin_pix)
  if transpose:
    c1, s1 = c1.T, s1.T                           # [D, N]
  cos_k, sin_k = [jnp.ones_like(c1), c1], [jnp.zeros_like(s1), s1]
  for _ in range(2, order + 1):
    cos_k.append(2 * c1 * cos_k[-1] - cos_k[-2])
    sin_k.append(2 * c1 * sin_k[-1] - sin_k[-2])
  axis = 1 if transpose else -1
  cos_k = jnp.stack(cos_k[:order + 1], axis)     # [..., D, n+1] or [D, n+1, N]
  sin_k = jnp.stack(sin_k[:order + 1], axis)
  if transpose:          # the feature index leads, the states stay on the minor axis
    pick = lambda t, d: t[d]                                          # [n+1, N]
    outer = lambda a, b: (a[:, None] * b[None]).reshape(-1, a.shape[-1])
  else:
    pick = lambda t, d: t[..., d, :]                                  # [..., n+1]
    outer = lambda a, b: (a[..., :, None] * b[..., None, :]).reshape(a.shape[:-1] + (-1,))
  cos_sum, sin_sum = pick(cos_k, 0), pick(sin_k, 0)
  for d in range(1, shape[-1]):
    cd, sd = pick(cos_k, d), pick(sin_k, d)
    new_cos = outer(cos_sum, cd) - outer(sin_sum, sd)
    if d < shape[-1] - 1:    # the last dimension needs only the cosines
      sin_sum = outer(sin_sum, cd) + outer(cos_sum, sd)
    cos_sum = new_cos
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
  `benchmarks/README.md`). Compute `features_t` once per batch and reuse it, and
  compute it in its own layout (`fourier_features_from_trig(..., transpose=True)`):
  inside one jitted function XLA folds a plain transpose of `features` back into the
  product, which then runs in the slow layout again.

  Used by BARFI's policy and reward on Fourier features
  (https://arxiv.org/abs/2310.19007; `rlcore.agents.barfi`). No gradient flows to
  `features` or `features_t` (fixed features; their cotangents are zero). Reverse
  mode through the kernel's gradient (`jax.vjp` of `jax.grad` with respect to other
  inputs) is exact too. Forward mode on this function itself (`jax.jvp` in `kernel`,
  not of a gradient) is not available, as for any `jax.custom_vjp`: use
  `features @ kernel` there (`barfi_hypergradient`'s `forward_objective` does).

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
