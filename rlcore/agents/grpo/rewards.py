"""GRPO's reward pipeline, pure JAX: scores -> shaping -> group advantages -> tokens.

The order is the one docs/design.md fixes for LLM rewards: verifier score, then
shaping (a length-shaping chain; PURE credit assignment of process rewards; Pref-GRPO
win rates), then the group baseline and normalisation, then the broadcast to tokens
with the response mask. `advantages` is one pure function of a `Scored` batch, jitted
by the agent.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

import rlcore
from rlcore.agents.grpo.config import length_chain


def laser_thresholds(config):
  """LASER-D's candidate target lengths, `laser_lower`..`laser_upper` every
  `laser_interval` tokens."""
  s = config.shaping
  return rlcore.laser_d_thresholds(int(s.laser_lower), int(s.laser_upper),
                                   int(s.laser_interval))


def _length_transform(name, config):
  """A ShapingTransform over [P, G] scores with a SequenceContext."""
  s = config.shaping
  if name in ("laser_d", "laser_de"):
    fn = rlcore.laser_d if name == "laser_d" else rlcore.laser_de
    return fn(laser_thresholds(config), alpha=s.alpha, round_method=s.round_method)
  max_len = int(config.max_completion_len)
  fns = {
      "laser": lambda r, c: rlcore.laser(r, c.correct, c.lengths, s.target_length,
                                         alpha=s.alpha),
      "group_length_penalty": lambda r, c: rlcore.group_length_penalty(
          r, c.correct, c.lengths, alpha=s.group_alpha),
      "kimi": lambda r, c: rlcore.kimi_length_reward(r, c.correct, c.lengths),
      "l1_exact": lambda r, c: rlcore.l1_exact_reward(r, c.lengths, s.target_length,
                                                      alpha=1.0 / max_len),
      "truncation": lambda r, c: rlcore.truncation_reward(r, c.lengths, s.target_length),
      "dapo_overlong": lambda r, c: rlcore.dapo_overlong_penalty(
          r, c.lengths, max_len, max_len - s.target_length),
      "cosine": lambda r, c: rlcore.cosine_length_reward(c.correct, c.lengths, max_len),
  }
  return rlcore.stateless(fns[name])


def make_shaping(config) -> rlcore.ShapingTransform:
  """The configured length-shaping chain (empty: identity)."""
  return rlcore.chain(*[_length_transform(n, config) for n in length_chain(config)])


def group_advantages(name: str, rewards, correct, lengths):
  """Sequence advantages [P, G] from shaped rewards by estimator name."""
  if name == "grpo":
    return rlcore.grpo_advantages(rewards)
  if name == "drgrpo":
    return rlcore.grpo_advantages(rewards, scale="none")
  if name == "grpo_batch":
    return rlcore.grpo_advantages(rewards, scale="batch")
  if name == "rloo":
    return rlcore.rloo_advantages(rewards)
  if name == "gpg":
    return rlcore.gpg_advantages(rewards)
  if name == "opo":
    return rlcore.opo_advantages(rewards, lengths)
  return rlcore.passk_advantages(correct, 4)


class Scored(NamedTuple):
  """Host-side scores of one batch, as device arrays ([P, G] unless noted)."""
  verifier_score: jax.Array   # 1 / −0.5 / −1
  correct: jax.Array          # bool
  well_formed: jax.Array      # bool
  lengths: jax.Array          # float32, response tokens incl. EOS
  pointwise: jax.Array        # pointwise RM score (pointwise_rm mode)
  step_scores: jax.Array      # [P, G, K] PRM scores in [0, 1]
  step_mask: jax.Array        # [P, G, K] bool
  step_ends: jax.Array        # [P, G, K] int32 token index in the response
  separators: jax.Array       # [P, G, N] bool, step-separator tokens


def advantages(config, scored: Scored, response_mask, shaping_state):
  """Token advantages [P·G, N] and the shaped sequence rewards.

  Args:
    config: the GRPO config (static).
    scored: `Scored` batch.
    response_mask: [P·G, N] float32.
    shaping_state: state of `make_shaping(config)`.

  Returns:
    (token advantages [P·G, N], shaped rewards [P, G], new shaping state, stats).
  """
  P, G = scored.correct.shape
  N = response_mask.shape[-1]
  stats = {}
  if config.reward == "process":
    pc = config.process
    r = 2.0 * scored.step_scores - 1.0
    if pc.credit == "min":
      r_star = rlcore.min_form(r.reshape(P * G, -1), scored.step_mask.reshape(P * G, -1),
                               temperature=pc.min_form_temperature)
    elif pc.credit == "strict_min":
      r_star = rlcore.strict_min_form(r.reshape(P * G, -1), scored.step_mask.reshape(P * G, -1))
    else:
      r_star = rlcore.sum_form(r.reshape(P * G, -1), scored.step_mask.reshape(P * G, -1))
    r_star = r_star.reshape(P, G, -1)
    ends = scored.step_ends
    starts = jnp.concatenate([jnp.zeros_like(ends[..., :1]), ends[..., :-1] + 1], -1)
    ntok = jnp.where(scored.step_mask, ends - starts + 1, 0)
    baselined = rlcore.rloo_token_baseline(r_star, ntok, scored.step_mask,
                                           response_lengths=scored.lengths)
    token_r = rlcore.steps_to_tokens(baselined.reshape(P * G, -1) * pc.prm_coef,
                                     ends.reshape(P * G, -1),
                                     scored.step_mask.reshape(P * G, -1), N)
    vr = scored.correct.astype(jnp.float32) - 1.0
    vr_adv = rlcore.rloo_advantages(vr).reshape(P * G)
    last = jnp.maximum(scored.lengths.reshape(P * G).astype(jnp.int32) - 1, 0)
    token_r = token_r + pc.verifier_coef * vr_adv[:, None] * jax.nn.one_hot(last, N)
    adv = rlcore.pure_advantages(token_r, response_mask > 0,
                                 scored.separators.reshape(P * G, N), whiten=pc.whiten)
    shaped = jnp.sum(r_star, -1) * pc.prm_coef + pc.verifier_coef * vr
    stats["prm_outcome"] = jnp.mean(jnp.sum(r_star, -1))
    return adv, shaped, shaping_state, stats

  if config.reward == "pointwise_rm":
    rewards = scored.pointwise
    if config.pref.enabled and config.pref.judge == "pairwise":
      rewards = rlcore.win_rate_rewards(rlcore.score_preferences(
          scored.verifier_score, temperature=config.pref.judge_temperature))
    elif config.pref.enabled:
      rewards = rlcore.win_rate_rewards(rlcore.score_preferences(rewards,
                                                                 margin=config.pref.margin))
  else:
    rewards = scored.verifier_score
  ctx = rlcore.SequenceContext(correct=scored.correct, lengths=scored.lengths,
                               well_formed=scored.well_formed)
  shaped, shaping_state = make_shaping(config).apply(rewards, shaping_state, ctx)
  seq_adv = group_advantages(config.advantage, shaped, scored.correct, scored.lengths)
  stats["abs_advantage"] = jnp.mean(jnp.abs(seq_adv))
  adv = rlcore.broadcast_to_tokens(seq_adv.reshape(P * G), response_mask > 0)
  return adv, shaped, shaping_state, stats


READS = ("reward", "advantage", "max_completion_len", "shaping", "process", "pref")


def settings(config):
  """The config keys `advantages` reads (`READS`), frozen: a hashable static argument,
  so agents whose reward settings agree share one compiled pipeline."""
  import ml_collections  # pylint: disable=import-outside-toplevel
  return ml_collections.FrozenConfigDict({k: config[k] for k in READS})


# The pipeline compiled once per `settings(config)`.
jitted_advantages = jax.jit(advantages, static_argnums=0)
