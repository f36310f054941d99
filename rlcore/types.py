"""Data types shared by transforms, agents and environments.

Shape conventions (docs/design.md, "Data conventions"):

* trajectories are time-major, `[T, B, ...]`;
* per-sequence LLM quantities are `[B]`, or `[P, G]` (prompts x samples);
* token quantities are `[B, L]` with a bool response mask;
* never a single `done`: `terminated` (the next state is terminal: value 0,
  potential 0) and `truncated` (a time limit cut the episode: bootstrap from the
  true next state) are separate, and `valid` marks filler transitions (e.g. the
  dummy step of gymnasium's NEXT_STEP auto-reset).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax

Array = jax.Array


class Transition(NamedTuple):
  """One batch of environment transitions, time-major `[T, B, ...]`.

  `next_obs` is the true next observation, taken before any auto-reset.
  """
  obs: Any            # [T, B, *obs_shape]
  action: Any         # [T, B, *action_shape]
  reward: Array       # [T, B] float32
  next_obs: Any       # [T, B, *obs_shape], the true s_{t+1}
  terminated: Array   # [T, B] bool
  truncated: Array    # [T, B] bool
  valid: Array        # [T, B] bool, False on filler transitions


@dataclasses.dataclass(frozen=True)
class SequenceContext:
  """Side information that sequence-level (LLM) shaping transforms read.

  All arrays share the layout of the rewards: `[P, G]` dense, or `[N]` with
  `group_ids` and a static `num_groups` (carried as pytree metadata, so a context
  passes through `jit` without making `num_groups` a tracer).
  """
  correct: Array                        # bool, the answer verified (and well formed)
  lengths: Array                        # response lengths in tokens (incl. EOS)
  well_formed: Optional[Array] = None   # bool; None = all well formed
  repetitive: Optional[Array] = None    # bool, host-side repetition flag (LASER-DE)
  group_ids: Optional[Array] = None     # [N] int, ragged layout only
  valid: Optional[Array] = None         # bool; False = padding / unscorable
  num_groups: Optional[int] = None      # static, ragged layout only


jax.tree_util.register_dataclass(
    SequenceContext,
    data_fields=["correct", "lengths", "well_formed", "repetitive", "group_ids", "valid"],
    meta_fields=["num_groups"])
