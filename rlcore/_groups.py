"""Group layout for LLM-style batches: dense [P, G] or ragged [N] with group ids.

Dense batches reduce along the last axis; ragged batches use `jax.ops.segment_*`
with a static `num_groups`. Every reduction is returned already broadcast back to
the samples, so callers write one formula for both layouts.

Concrete `group_ids` outside [0, num_groups) raise. Traced ones cannot be checked:
such a sample belongs to no group (the segment ops drop it, and its own reductions
read as an empty group's: sum 0, max/min the fill). Callers combine `member(ok)`
into their valid mask, so the sample counts as `valid=False`: it is in no statistic
and gets the output of an invalid sample.

Empty layouts (G = 0, P = 0 or N = 0) give empty results.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import _checks

LAYOUT = "([P, G] dense, or [N] with `group_ids`)"
_UNROLL_GROUP_SIZE = 32


class Groups:
  """Per-sample group reductions for one batch layout (internal)."""

  def __init__(self, fn: str, name: str, x, group_ids=None, num_groups: Optional[int] = None):
    self.fn = fn
    if group_ids is None:
      if num_groups is not None:
        raise ValueError(f"{fn}: `num_groups` is only used with `group_ids`.")
      _checks.check_rank(fn, name, x, 2, "[P, G] (prompts x samples) when `group_ids` is None")
      self.ids = None
      self.shape = tuple(jnp.shape(x))
    else:
      _checks.check_rank(fn, name, x, 1, "[N] when `group_ids` is given")
      _checks.check_shape(fn, "group_ids", group_ids, jnp.shape(x), f"(same as `{name}`)")
      _checks.check_positive_int(fn, "num_groups", num_groups)
      if not jnp.issubdtype(jnp.asarray(group_ids).dtype, jnp.integer):
        raise ValueError(f"{fn}: `group_ids` must be integers in [0, num_groups), got dtype "
                         f"{jnp.asarray(group_ids).dtype}.")
      ids = _checks.concrete_or_none(group_ids)
      if ids is not None:
        bad = (ids < 0) | (ids >= num_groups)
        if np.any(bad):
          raise ValueError(f"{fn}: `group_ids` must lie in [0, num_groups) = "
                           f"[0, {num_groups}), got {ids[bad].ravel()[:5]}.")
      self.ids = jnp.asarray(group_ids, jnp.int32)
      self.num_groups = num_groups
      self.shape = tuple(jnp.shape(x))
      # Traced ids may still be out of range (module docstring): those samples are
      # in no group. `_take` reads them as an empty group.
      self.in_range = (self.ids >= 0) & (self.ids < num_groups)
      self._safe_ids = jnp.where(self.in_range, self.ids, 0)

  @property
  def dense(self) -> bool:
    return self.ids is None

  def member(self, ok):
    """`ok` and "the sample belongs to a group" (False for out-of-range traced ids)."""
    return ok if self.dense else ok & self.in_range

  def _take(self, per_group, fill):
    """Per-group values [num_groups] read back per sample; `fill` outside any group."""
    return jnp.where(self.in_range, per_group[self._safe_ids], fill)

  def check_same(self, name: str, y) -> None:
    _checks.check_shape(self.fn, name, y, self.shape, LAYOUT)

  def _dense_reduce(self, x, op, reduce):
    # For small static G, a chain of elementwise ops over the G columns keeps the
    # whole computation in XLA loop fusions; a reduce op splits it into separate
    # passes with materialised intermediates (measured 2x faster for GRPO at
    # [32768, 8] on CPU).
    g = x.shape[-1]
    if g == 0:  # empty groups: nothing to reduce, nothing to broadcast back
      return x
    if g <= _UNROLL_GROUP_SIZE:
      out = x[..., 0]
      for j in range(1, g):
        out = op(out, x[..., j])
      out = out[..., None]
    else:
      out = reduce(x, axis=-1, keepdims=True)
    return jnp.broadcast_to(out, x.shape)

  def sum(self, x):
    if self.dense:
      return self._dense_reduce(x, jnp.add, jnp.sum)
    return self._take(jax.ops.segment_sum(x, self.ids, self.num_groups), 0)

  def max(self, x, fill):
    """Group max of x where `valid` was already applied as `fill` elsewhere."""
    if self.dense:
      return self._dense_reduce(x, jnp.maximum, jnp.max)
    out = jax.ops.segment_max(x, self.ids, self.num_groups)
    return self._take(jnp.maximum(out, fill), fill)

  def min(self, x, fill):
    if self.dense:
      return self._dense_reduce(x, jnp.minimum, jnp.min)
    out = jax.ops.segment_min(x, self.ids, self.num_groups)
    return self._take(jnp.minimum(out, fill), fill)

  def masked_max(self, x, valid, fill=-jnp.inf):
    return self.max(jnp.where(valid, x, fill), fill)

  def masked_min(self, x, valid, fill=jnp.inf):
    return self.min(jnp.where(valid, x, fill), fill)

  def moments(self, x, valid, ddof):
    """(count, mean, std) over the valid members of each sample's group.

    std uses `count - ddof` in the denominator and is 0 where count <= ddof.
    Values are shifted by one member of their group before summing, so a group
    whose members are all equal gets a mean equal to that value and a std of
    exactly 0 (no rounding noise for a small std to blow up), and flat groups need
    no separate max/min pass.
    """
    v = valid.astype(x.dtype)
    shift = self.masked_max(x, valid)
    shift = jnp.where(jnp.isfinite(shift), shift, 0.0)  # groups with no valid member
    xs = jnp.where(valid, x - shift, 0.0)
    count = self.sum(v)
    mean_s = self.sum(xs) / jnp.maximum(count, 1.0)
    dev = jnp.where(valid, xs - mean_s, 0.0)
    var = self.sum(dev * dev) / jnp.maximum(count - ddof, 1.0)
    return count, shift + mean_s, safe_sqrt(var, count > ddof)


def finite_rewards(fn: str, rewards, valid=None, name: str = "rewards"):
  """Float32 rewards with NaN/inf ('unscorable') and invalid entries zeroed.

  Returns (rewards, valid) where valid = given mask & isfinite(rewards).
  """
  rewards = _checks.as_float(rewards)
  ok = jnp.isfinite(rewards)
  if valid is not None:
    _checks.check_shape(fn, "valid", valid, rewards.shape, f"(same as `{name}`)")
    ok = ok & _checks.as_bool(valid)
  return jnp.where(ok, rewards, 0.0), ok


def safe_div(num, den):
  """num / den, and 0 where den == 0 (no NaN from 0/0)."""
  ok = den != 0
  return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def safe_sqrt(x, ok=True):
  """sqrt(x) where ok and x > 0, else 0; its gradient is finite everywhere (the
  double `where` keeps sqrt's infinite slope at 0 out of the backward pass)."""
  live = ok & (x > 0)
  return jnp.where(live, jnp.sqrt(jnp.where(live, x, 1.0)), 0.0)
