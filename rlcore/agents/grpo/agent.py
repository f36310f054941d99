"""GRPO's agent: the thin host loop that ties rollout, rewards and update together.

One update (`GRPOAgent.run_chunk` runs several):

1. (LASER-D / LASER-DE only, every `shaping.monitor_every` updates) the monitor pass:
   a rollout of `shaping.monitor_prompts` training prompts updates the shaping state;
2. P problems from `numpy.random.default_rng([seed, step])`, a rollout of G
   completions each (`rollout.rollout`), scored on the host (`rollout.score`);
3. old and reference log-probs of the batch, and each response's sequence log-ratio
   (for the occupancy penalty, `rewards.sequence_penalty`, and its statistics);
4. token advantages from the pure reward pipeline (`rewards.advantages`), then the
   update (`update.update`);
5. every `eval_every` updates (and at the last), pass@1 on held-out problems.

A run is deterministic for its seed: problems and reward noise come from the host
RNG seeded by (seed, step), sampling from the checkpointed key.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

import rlcore
from rlcore import lm
from rlcore.agents.validation import check_hparams
from rlcore.agents.grpo import rewards
from rlcore.agents.grpo import config as config_lib
from rlcore.agents.grpo import rollout as rollout_lib
from rlcore.agents.grpo import tasks as tasks_lib
from rlcore.agents.grpo import update as update_lib

PLOT_METRICS = ("accuracy", "mean_length", "eval_accuracy", "eval_length", "kl")
EVAL_SEED = tasks_lib.EVAL_SEED   # the evaluation's sampling key (and arithmetic problems)
MONITOR_KEY_SALT = 1_000_003
DIFFICULTY_NAMES = ("hard", "medium", "easy")   # LASER-D's buckets, in its order
sequence_log_ratio = jax.jit(rlcore.sequence_log_ratio)


class GRPOState(NamedTuple):
  """A GRPO run's state (checkpointed whole)."""
  params: Any
  opt_state: Any
  ref_params: Any
  shaping_state: Any     # the length-shaping chain's state (LASER-D/DE targets), or ()
  key: jax.Array
  step: jax.Array        # [] int32, updates done
  seed: jax.Array        # [] int32, the run's seed (host RNG of problems and reward noise)


class GRPOAgent(NamedTuple):
  """GRPO as an `rlcore.agents.Agent` (a host loop), plus its parts."""
  init: Callable             # (key, hparams=None, *, seed=0) -> GRPOState
  run_chunk: Callable        # (state, n) -> (state, metrics dict of [n] arrays)
  num_updates: int
  steps_per_update: int      # completions sampled per update (P·G)
  default_hparams: Callable
  plot_metrics: tuple
  finite_metrics: tuple      # the losses
  vectorized: bool           # False
  evaluate: Optional[Callable]   # None: held-out evaluations are logged during training
  evaluate_held_out: Callable    # (state) -> dict of held-out metrics
  lm_config: Any
  task: Any                  # rlcore.agents.grpo.tasks: ArithmeticTask or DatasetTask


def _by_difficulty(prefix: str, problems, lengths, correct) -> dict:
  """Mean length and accuracy per difficulty (NaN for a difficulty not present)."""
  diff = np.array([p.difficulty for p in problems])
  out = {}
  for d in range(3):
    sel = diff == d
    out[f"{prefix}length_d{d}"] = float(lengths[sel].mean()) if sel.any() else float("nan")
    out[f"{prefix}accuracy_d{d}"] = float(correct[sel].mean()) if sel.any() else float("nan")
  return out


def _training_metrics(config, task, r, scored, steps, shaped, aux, adv_stats) -> dict:
  """What an update logs about its own batch: accuracy, lengths (by difficulty), rewards,
  truncation, the task's text metrics (filler steps), PRM scores, and the update's loss
  statistics."""
  lengths = np.asarray(r.sample.lengths, np.float64)
  metrics = dict(
      accuracy=r.correct.mean(), mean_length=lengths.mean(),
      verifier_reward=float(np.asarray(scored.verifier_score).mean()),
      shaped_reward=float(np.asarray(shaped).mean()),
      truncated_rate=1.0 - float(np.asarray(r.sample.finished).mean()),
      kl=float(aux["kl"]), loss=float(aux["loss"]), pg_loss=float(aux["pg_loss"]),
      clip_fraction=float(aux["clip_fraction"]), approx_kl=float(aux["approx_kl"]),
      **task.text_metrics(r.texts))
  if task.has_difficulty:
    metrics.update(_by_difficulty("", r.problems, lengths, r.correct))
  if config.reward == "process":
    sc = np.where(steps.mask, steps.scores, np.inf)
    metrics["prm_min"] = float(np.where(steps.mask.any(1), sc.min(1), 0.0).mean())
    metrics["prm_sum"] = float(np.where(steps.mask, steps.scores, 0.0).sum(1).mean())
  metrics.update({k: float(v) for k, v in adv_stats.items()})
  return metrics


def make_agent(config, *, constrain_batch=None) -> GRPOAgent:
  """Builds the GRPO agent: on the built-in task (the SFT warm start is trained or read
  from its cache at `init`), or with `config.task = "dataset"` on a local HF checkpoint
  and JSONL dataset (`config.model.hf_path`, `config.dataset`; see
  `rlcore.agents.grpo.tasks`).

  Args:
    config: see `rlcore.agents.grpo.default_config`.
    constrain_batch: unused (a host agent has no environment batch to shard).

  Returns:
    A `GRPOAgent`.
  """
  del constrain_batch
  config_lib.validate_config(config)
  reward_settings = rewards.settings(config)
  task = tasks_lib.make_task(config)
  lm_config = task.lm_config
  sampler = rollout_lib.Sampler(task, int(config.max_completion_len), float(config.top_p))
  settings = update_lib.UpdateSettings.from_config(config, lm_config, task.prompt_len)
  shaping = rewards.make_shaping(config)
  monitored = config_lib.monitored_index(config)
  P, G = int(config.prompts_per_step), int(config.group_size)
  # The reference's log-probs feed the KL term, the occupancy penalty and, with
  # `reference_diagnostics`, the kl and occupancy_* metrics; without any of them (and
  # with one on-policy step per batch) neither they nor the old log-probs are computed:
  # two forward passes fewer per update, as TRL at β = 0 and num_iterations = 1.
  needs_reference = (float(config.kl_coef) > 0 or config.occupancy.kind != "none"
                     or bool(config.reference_diagnostics))
  needs_old = needs_reference or config.inner_epochs * config.num_minibatches > 1
  logprobs = lambda params, batch: update_lib.completion_logprobs(
      params, batch["tokens"], batch["mask"], lm_config=lm_config,
      prompt_len=settings.prompt_len)

  mesh = lm.sharding.device_mesh() if config.model.shard_params else None

  def place(state):
    """With `model.shard_params`: parameters, reference and optimiser state split over
    every device (`rlcore.lm.sharding`; a no-op for a state already placed)."""
    if mesh is None:
      return state
    return state._replace(**lm.sharding.place(
        dict(params=state.params, opt_state=state.opt_state, ref_params=state.ref_params),
        mesh))

  def init(key, hparams=None, *, seed=0):
    check_hparams(hparams, {})   # no traced hyperparameters: refuses any key
    params = task.initial_params()
    return place(GRPOState(params=params, opt_state=update_lib.init_optimizer(settings, params),
                           ref_params=params, shaping_state=shaping.init(), key=key,
                           step=jnp.zeros((), jnp.int32), seed=jnp.asarray(seed, jnp.int32)))

  def monitor(state):
    """LASER-D's monitor pass: M train prompts × G samples -> updated shaping state."""
    rng = np.random.default_rng([int(state.seed), int(state.step), 7])
    M = int(config.shaping.monitor_prompts)
    r = rollout_lib.rollout(sampler, state.params, task.train_problems(rng, M),
                            jax.random.fold_in(state.key, MONITOR_KEY_SALT), group_size=G,
                            temperature=config.temperature)
    stats = rlcore.laser_monitor_statistics(
        jnp.asarray(np.asarray(r.sample.lengths).reshape(M, G)),
        jnp.asarray(r.correct.reshape(M, G)), rewards.laser_thresholds(config))
    return state._replace(shaping_state=shaping.update(state.shaping_state, stats))

  def train_step(state):
    t0 = time.perf_counter()
    step = int(state.step)
    if monitored is not None and step % config.shaping.monitor_every == 0:
      state = monitor(state)
    rng = np.random.default_rng([int(state.seed), step])
    problems = task.train_problems(rng, P)
    key, sample_key, update_key = jax.random.split(state.key, 3)
    r = rollout_lib.rollout(sampler, state.params, problems, sample_key, group_size=G,
                            temperature=config.temperature)
    out = r.sample
    jax.block_until_ready(out)
    t_sample = time.perf_counter()
    scored, steps = rollout_lib.score(config, r, task, rng, num_prompts=P, group_size=G)
    t_score = time.perf_counter()
    loss_mask = out.response_mask
    if config.mask_truncated:
      loss_mask = loss_mask * out.finished[:, None].astype(jnp.float32)
    batch = update_lib.trim(dict(tokens=out.tokens, mask=r.mask, loss_mask=loss_mask,
                                 response_mask=out.response_mask), out.lengths,
                            prompt_len=settings.prompt_len, max_len=sampler.max_new_tokens)
    # Old and reference log-probs first: the occupancy penalty of the rewards reads them.
    # Both are skipped where nothing reads them (see `needs_reference`).
    response_mask = batch.pop("response_mask")
    if needs_old:
      batch["old_logprobs"] = logprobs(state.params, batch)
    if needs_reference:
      batch["ref_logprobs"] = logprobs(state.ref_params, batch)
      seq_log_ratio = sequence_log_ratio(batch["old_logprobs"], batch["ref_logprobs"],
                                         response_mask).reshape(P, G)
    else:
      seq_log_ratio = jnp.zeros((P, G), jnp.float32)
    adv, shaped, shaping_state, adv_stats = rewards.jitted_advantages(
        reward_settings, scored, out.response_mask, state.shaping_state, seq_log_ratio)
    batch["advantages"] = adv[:, :batch["loss_mask"].shape[1]]
    jax.block_until_ready(adv)
    t_adv = time.perf_counter()
    params, opt_state, aux = update_lib.update(state.params, state.opt_state, batch,
                                               update_key, settings)
    jax.block_until_ready(params)
    t_update = time.perf_counter()

    metrics = _training_metrics(config, task, r, scored, steps, shaped, aux, adv_stats)
    if not needs_reference:     # no reference log-probs: its statistics are not measured
      metrics.update({k: float("nan") for k in metrics if k.startswith("occupancy_")})
    metrics.update(time_sample=t_sample - t0, time_score=t_score - t_sample,
                   time_advantages=t_adv - t_score, time_update=t_update - t_adv)
    if monitored is not None:
      targets = np.asarray(shaping_state[monitored].target_lengths)
      metrics.update({f"target_length_{n}": float(t)
                      for n, t in zip(DIFFICULTY_NAMES, targets)})
    new = GRPOState(params=params, opt_state=opt_state, ref_params=state.ref_params,
                    shaping_state=shaping_state, key=key, step=state.step + 1,
                    seed=state.seed)
    return new, metrics

  def evaluate_held_out(state):
    """Pass@1 on `eval_problems` held-out problems, sampled at `eval_temperature`
    with a fixed key (0 = greedy): accuracy and lengths, overall and by difficulty."""
    problems = task.held_out_problems(int(config.eval_problems))
    r = rollout_lib.rollout(sampler, state.params, problems, jax.random.key(EVAL_SEED),
                            group_size=1, temperature=float(config.eval_temperature))
    lengths = np.asarray(r.sample.lengths, np.float64)
    out = dict(eval_accuracy=float(r.correct.mean()), eval_length=float(lengths.mean()))
    if task.has_difficulty:
      out.update(_by_difficulty("eval_", problems, lengths, r.correct))
    return out

  def run_chunk(state, n):
    state = place(state)      # e.g. a state restored from a checkpoint onto one device
    records = []
    for _ in range(n):
      state, m = train_step(state)
      step = int(state.step)
      if step % config.eval_every == 0 or step == config.num_updates:
        m.update(evaluate_held_out(state))
      m["env_steps"] = step * P * G
      records.append(m)
    keys = sorted({k for r in records for k in r})
    return state, {k: np.array([r.get(k, np.nan) for r in records], np.float64)
                   for k in keys}

  return GRPOAgent(init=init, run_chunk=run_chunk, num_updates=int(config.num_updates),
                   steps_per_update=P * G, default_hparams=dict,
                   plot_metrics=PLOT_METRICS,
                   finite_metrics=("loss", "pg_loss") + (("kl",) if needs_reference else ()),
                   vectorized=False, evaluate=None,
                   evaluate_held_out=evaluate_held_out, lm_config=lm_config, task=task)
