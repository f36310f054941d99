"""GRPO's rollout: sample completions, decode them, verify them, score their steps.

`rollout` is the one sequence sample -> decode -> verify that a training step, the
LASER-D monitor pass and the held-out evaluation share; `score` adds the rewards a
training step needs (verifier score, process reward model, pointwise reward model) as
a `Scored` batch for the pure pipeline in `rlcore.agents.grpo.rewards`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import lm
from rlcore.agents.grpo.rewards import Scored


@functools.partial(jax.jit, static_argnames=("lm_config", "max_new_tokens", "temperature",
                                             "top_p", "eos_id", "pad_id"))
def _sample(params, prompts, prompt_mask, key, *, lm_config, max_new_tokens, temperature,
            top_p, eos_id, pad_id):
  out = lm.sample(params, lm_config, prompts, prompt_mask, key, temperature=temperature,
                  top_p=top_p, max_new_tokens=max_new_tokens, eos_id=eos_id, pad_id=pad_id)
  return out, jnp.concatenate([prompt_mask.astype(jnp.float32), out.response_mask], 1)


class Sampler(NamedTuple):
  """What sampling needs besides parameters and prompts (the model: `task.lm_config`)."""
  task: object          # a task of `rlcore.agents.grpo.tasks` (prompts, decoding, verifier)
  max_new_tokens: int   # N
  top_p: float


class Rollout(NamedTuple):
  """Completions of a batch of prompts, decoded and verified ([B] = prompts x group)."""
  problems: list         # [B] the task's problems, each repeated group_size times
  sample: lm.SampleOutput  # tokens [B, PL + N], response [B, N], response_mask, lengths,
                           # finished (device arrays)
  mask: jax.Array        # [B, PL + N] float32 attention mask of prompt and response
  texts: list            # [B] decoded completions
  correct: np.ndarray    # [B] bool: the answer verified and the completion finished
  well_formed: np.ndarray  # [B] bool: parseable and finished


def rollout(sampler: Sampler, params, problems: Sequence, key, *, group_size: int,
            temperature: float) -> Rollout:
  """Samples `group_size` completions per problem, decodes and verifies them.

  Args:
    sampler: the model, the task and the sampling settings.
    params: the policy's parameters.
    problems: P problems of `sampler.task`.
    key: PRNG key of the sampler.
    group_size: G completions per problem.
    temperature: sampling temperature (0: greedy).

  Returns:
    A `Rollout` of P x G completions, grouped by problem.
  """
  task = sampler.task
  prompts, pmask = task.encode_prompts(problems)
  rep = lambda x: np.repeat(x, group_size, axis=0)
  out, mask = _sample(params, rep(prompts), rep(pmask), key, lm_config=task.lm_config,
                      max_new_tokens=sampler.max_new_tokens, temperature=temperature,
                      top_p=sampler.top_p, eos_id=task.eos_id, pad_id=task.pad_id)
  texts = task.decode(np.asarray(out.response))
  problems = [p for p in problems for _ in range(group_size)]
  correct, well_formed = task.verify(problems, texts)
  finished = np.asarray(out.finished)
  return Rollout(problems=problems, sample=out, mask=mask, texts=texts,
                 correct=correct & finished, well_formed=well_formed & finished)


class StepScores(NamedTuple):
  """Host-side process rewards of a rollout ([B, K]), for `Scored` and the metrics."""
  scores: np.ndarray     # float32 PRM step scores in [0, 1]
  mask: np.ndarray       # bool, real steps
  ends: np.ndarray       # int32, token index where each step ends


def score(config, r: Rollout, task, rng: np.random.Generator, *, num_prompts: int,
          group_size: int) -> tuple[Scored, StepScores]:
  """The rewards of a training rollout as a `Scored` batch ([P, G] layout).

  The verifier score is the task's (`verifier_scores`: 1 correct, -0.5 wrong but well
  formed, -1 malformed or truncated, or a dataset's `reward_fn`). With
  `config.reward == "process"` the task scores every step (up to N steps: each step has
  at least one token, so none is dropped); the task's pointwise reward model (the
  arithmetic task's draws its noise from `rng`).

  Args:
    config: the GRPO config.
    r: the rollout (P x G completions, grouped by problem).
    task: the rollout's task.
    rng: host RNG of this step.
    num_prompts: P.
    group_size: G.

  Returns:
    (the `Scored` batch on device, the step scores on the host).
  """
  B = len(r.texts)
  vscore = task.verifier_scores(r.problems, r.texts, r.correct, r.well_formed)
  response = np.asarray(r.sample.response)
  if config.reward == "process":
    (scores, smask, ends), separators = task.process_scores(
        r.problems, r.texts, response, np.asarray(r.sample.lengths))
    steps = StepScores(scores, smask, ends)
  else:
    steps = StepScores(np.zeros((B, 1), np.float32), np.zeros((B, 1), bool),
                       np.zeros((B, 1), np.int32))
    separators = np.zeros(response.shape, bool)
  pointwise = task.pointwise_scores(r.problems, r.texts, r.correct, rng)
  P, G = num_prompts, group_size
  scored = Scored(
      verifier_score=jnp.asarray(vscore.reshape(P, G)),
      correct=jnp.asarray(r.correct.reshape(P, G)),
      well_formed=jnp.asarray(r.well_formed.reshape(P, G)),
      lengths=jnp.asarray(np.asarray(r.sample.lengths, np.float32).reshape(P, G)),
      pointwise=jnp.asarray(pointwise.astype(np.float32).reshape(P, G)),
      step_scores=jnp.asarray(steps.scores.reshape(P, G, -1)),
      step_mask=jnp.asarray(steps.mask.reshape(P, G, -1)),
      step_ends=jnp.asarray(steps.ends.reshape(P, G, -1)),
      separators=jnp.asarray(separators.reshape(P, G, -1)))
  return scored, steps
