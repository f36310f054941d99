"""`chain` and `stateless`: optax-style composition of stateful shaping transforms."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlcore
from tests import helpers


def counting_transform(scale):
  """A stateful test transform: r * scale + bias, counting applications."""
  def init():
    return {"bias": jnp.zeros((), jnp.float32), "calls": jnp.zeros((), jnp.int32)}

  def apply(rewards, state, context):
    del context
    return rewards * scale + state["bias"], {**state, "calls": state["calls"] + 1}

  def update(state, statistics):
    return {**state, "bias": jnp.asarray(statistics, jnp.float32)}

  return rlcore.ShapingTransform(init, apply, update)


def test_chain_applies_in_order_and_threads_state():
  double = counting_transform(2.0)
  add_one = rlcore.stateless(lambda r, ctx: r + 1.0)
  t = rlcore.chain(double, add_one)
  state = t.init()
  out, state = t.apply(jnp.array([1.0, 2.0]), state, None)
  np.testing.assert_allclose(out, [3.0, 5.0])  # (r * 2) + 1, not (r + 1) * 2
  reverse = rlcore.chain(add_one, double)
  out_rev, _ = reverse.apply(jnp.array([1.0, 2.0]), reverse.init(), None)
  np.testing.assert_allclose(out_rev, [4.0, 6.0])
  assert int(state[0]["calls"]) == 1
  state = t.update(state, 10.0)
  out, state = t.apply(jnp.array([1.0, 2.0]), state, None)
  np.testing.assert_allclose(out, [13.0, 15.0])
  assert int(state[0]["calls"]) == 2
  assert isinstance(state[1], rlcore.EmptyState)


def test_chain_accepts_plain_callables_and_is_jittable():
  t = rlcore.chain(lambda r, ctx: r * ctx, counting_transform(1.0))
  state = t.init()
  f = jax.jit(t.apply)
  out, new_state = f(jnp.ones(3), state, jnp.float32(3.0))
  np.testing.assert_allclose(out, [3.0, 3.0, 3.0])
  chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)  # and structures
  helpers.assert_no_retrace(lambda r, s: t.apply(r, s, 2.0), jnp.ones(3), state,
                            second_args=(jnp.zeros(3), new_state))


def test_chain_of_potential_and_laser_style_transforms_composes():
  ctx = rlcore.SequenceContext(correct=np.array([[True, True, False, True]]),
                               lengths=np.array([[10, 30, 5, 50]]))
  t = rlcore.chain(
      lambda r, c: rlcore.laser(r, c.correct, c.lengths, 20),
      rlcore.laser_d(rlcore.laser_d_thresholds(10, 60, 10)))
  scores = jnp.array([[1.0, 1.0, -0.5, 1.0]])
  out, _ = t.apply(scores, t.init(), ctx)
  # LASER gives +0.5 to the short correct answer; LASER-D before any monitor pass
  # falls back to the batch's longest response, so every correct answer gets +0.5.
  np.testing.assert_allclose(out, [[2.0, 1.5, -0.5, 1.5]])


def test_errors_name_the_problem():
  with pytest.raises(TypeError, match="transform 1"):
    rlcore.chain(rlcore.stateless(lambda r, c: r), 3)
  with pytest.raises(TypeError, match="`fn` must be callable"):
    rlcore.stateless(None)
  t = rlcore.chain(rlcore.stateless(lambda r, c: r))
  with pytest.raises(ValueError, match="`state` has 2 entries for 1"):
    t.apply(jnp.ones(2), (rlcore.EmptyState(), rlcore.EmptyState()), None)
