"""Static argument checks with messages that name the argument.

These run at trace time (shapes, dtypes and Python constants are static), so they
cost nothing inside a jitted function. Values that are traced (for example a
discount swept with `vmap`) cannot be range-checked and are left alone.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _shape(x) -> tuple[int, ...]:
  return tuple(np.shape(x))


def check_rank(fn: str, name: str, x, ranks: int | Iterable[int], layout: str = "") -> None:
  """Raises ValueError unless `x` has one of `ranks` dimensions."""
  allowed = (ranks,) if isinstance(ranks, int) else tuple(ranks)
  if np.ndim(x) not in allowed:
    want = " or ".join(str(r) for r in allowed)
    hint = f" {layout}" if layout else ""
    raise ValueError(
        f"{fn}: `{name}` must have rank {want}{hint}, got shape {_shape(x)}.")


def check_shape(fn: str, name: str, x, shape: Sequence[int], layout: str = "") -> None:
  """Raises ValueError unless `x.shape == shape`."""
  if _shape(x) != tuple(shape):
    hint = f" {layout}" if layout else ""
    raise ValueError(
        f"{fn}: `{name}` must have shape {tuple(shape)}{hint}, got {_shape(x)}.")


def check_broadcastable(fn: str, name: str, x, shape: Sequence[int]) -> None:
  """Raises ValueError unless `x` broadcasts to `shape` (scalars always do)."""
  try:
    out = np.broadcast_shapes(_shape(x), tuple(shape))
  except ValueError:
    out = None
  if out != tuple(shape):
    raise ValueError(
        f"{fn}: `{name}` must be a scalar or broadcast to {tuple(shape)}, got shape "
        f"{_shape(x)}.")


def check_choice(fn: str, name: str, value: Any, choices: Iterable[Any]) -> None:
  choices = tuple(choices)
  if value not in choices:
    raise ValueError(f"{fn}: `{name}` must be one of {choices}, got {value!r}.")


def concrete_or_none(x):
  """Returns `x` as a numpy array if it is known at trace time, else None."""
  if isinstance(x, jax.core.Tracer):
    return None
  try:
    return np.asarray(x)
  except Exception:  # pylint: disable=broad-except
    return None


def check_range(fn: str, name: str, x, low=None, high=None, *, low_inclusive=True,
                high_inclusive=True) -> None:
  """Checks `low <= x <= high` (bounds optional) when `x` is concrete.

  NaN is never in range (it fails every comparison, so it is tested for explicitly).
  """
  value = concrete_or_none(x)
  if value is None or value.size == 0:
    return
  if not jnp.issubdtype(value.dtype, jnp.number) and value.dtype != bool:  # bfloat16 too
    raise ValueError(f"{fn}: `{name}` must be numeric, got dtype {value.dtype}.")
  bad = np.asarray(value != value)  # NaN, in every float dtype (bfloat16 included)
  if low is not None:
    bad |= (value < low) if low_inclusive else (value <= low)
  if high is not None:
    bad |= (value > high) if high_inclusive else (value >= high)
  if np.any(bad):
    lo = "-inf" if low is None else f"{low}"
    hi = "inf" if high is None else f"{high}"
    interval = f"{'[' if low_inclusive else '('}{lo}, {hi}{']' if high_inclusive else ')'}"
    shown = value if value.size == 1 else value[bad].ravel()[:5]
    raise ValueError(f"{fn}: `{name}` must lie in {interval}, got {shown}.")


def check_positive_int(fn: str, name: str, value: Any) -> None:
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
    raise ValueError(f"{fn}: `{name}` must be a positive Python int (it is static), "
                     f"got {value!r}.")


def as_float(x) -> jax.Array:
  """Float32 for shaping math (float64 is kept when x64 is enabled and given)."""
  x = jnp.asarray(x)
  if x.dtype == jnp.float64:
    return x
  return x.astype(jnp.float32)


def as_bool(x) -> jax.Array:
  """Flags may come as bool, int or float (0/1); returns a bool array."""
  x = jnp.asarray(x)
  return x if x.dtype == jnp.bool_ else x != 0
