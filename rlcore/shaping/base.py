"""Stateful shaping transforms, optax-style, and their composition with `chain`.

A `ShapingTransform` is a NamedTuple of pure functions:

    init()                          -> state
    apply(rewards, state, context)  -> (rewards, state)
    update(state, statistics)       -> state      (the method's own schedule)

`context` carries what the transforms read besides the rewards (a `Transition` for
control, a `SequenceContext` for LLM batches). `update` runs where the paper has a
schedule (LASER-D's monitor pass); stateless transforms ignore it. State is a pytree
and is checkpointed with the agent.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple


class ShapingTransform(NamedTuple):
  """A reward transform with explicit pytree state (see module docstring)."""
  init: Callable[[], Any]
  apply: Callable[[Any, Any, Any], tuple[Any, Any]]
  update: Callable[[Any, Any], Any]


class EmptyState(NamedTuple):
  """State of a stateless transform."""


def _no_update(state, statistics=None):
  del statistics
  return state


def stateless(fn: Callable[[Any, Any], Any]) -> ShapingTransform:
  """Wraps `fn(rewards, context) -> rewards` as a `ShapingTransform`.

  Args:
    fn: a pure function of the rewards and the context.

  Returns:
    A `ShapingTransform` with empty state whose `update` does nothing.

  Example:
    >>> t = rlcore.stateless(
    ...     lambda r, ctx: rlcore.laser(r, ctx.correct, ctx.lengths, 4096))
  """
  if not callable(fn):
    raise TypeError(f"stateless: `fn` must be callable, got {type(fn).__name__}.")

  def apply(rewards, state, context):
    return fn(rewards, context), state

  return ShapingTransform(init=EmptyState, apply=apply, update=_no_update)


def chain(*transforms: ShapingTransform | Callable) -> ShapingTransform:
  """Applies transforms in order; the state is the tuple of their states.

      r ← t_1(r), r ← t_2(r), …      update(state, stats) updates every member.

  Members may be `ShapingTransform`s or plain `fn(rewards, context)` callables
  (wrapped with `stateless`). As in optax's `chain`, order matters: put length or
  process-reward shaping before any group normalisation.

  Args:
    *transforms: the transforms, applied first to last.

  Returns:
    A `ShapingTransform` whose state is a tuple with one entry per member.
  """
  members = []
  for i, t in enumerate(transforms):
    if isinstance(t, ShapingTransform):
      members.append(t)
    elif callable(t):
      members.append(stateless(t))
    else:
      raise TypeError(f"chain: transform {i} must be a ShapingTransform or a callable "
                      f"fn(rewards, context), got {type(t).__name__}.")
  members = tuple(members)

  def init():
    return tuple(t.init() for t in members)

  def apply(rewards, state, context):
    if len(state) != len(members):
      raise ValueError(f"chain: `state` has {len(state)} entries for {len(members)} "
                       "transforms; was it made by this chain's init()?")
    new_states = []
    for t, s in zip(members, state):
      rewards, s = t.apply(rewards, s, context)
      new_states.append(s)
    return rewards, tuple(new_states)

  def update(state, statistics=None):
    return tuple(t.update(s, statistics) for t, s in zip(members, state))

  return ShapingTransform(init=init, apply=apply, update=update)
