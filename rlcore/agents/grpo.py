"""GRPO-style training of a causal LM on verifiable step-by-step text tasks.

One step:

1. sample G completions for each of P prompts (`rlcore.lm.sample`, KV cache);
2. score on the host: the verifier (`envs.text.verify_batch`) and, if configured, the
   process reward model (`envs.text.ProcessRewardModel`) or a noisy pointwise reward
   model;
3. rewards in the order DESIGN.md §4 fixes: verifier score → shaping (LASER,
   LASER-D, LASER-DE or another length reward; PURE credit assignment of process
   rewards; Pref-GRPO win rates) → group baseline and normalisation (any advantage
   of `rlcore.group` by name) → broadcast to tokens with the response mask;
4. `inner_epochs` epochs of minibatch updates of the token-level clipped loss with
   separate lower/upper clip (`rlcore.ppo_clip_loss`) on stored old log-probs, plus
   β · KL to a frozen reference (`rlcore.kl_estimate`, k1/k2/k3), aggregated by
   `config.aggregation`; optionally truncated completions are masked out.

LASER-D / LASER-DE run their monitor pass (`monitor_prompts` prompts × G samples)
at step 0 and every `monitor_every` steps; their state is part of the checkpoint.

Reward modes (`config.reward`):

* "outcome": the verifier score s ∈ {1 correct, −0.5 wrong but well formed, −1
  malformed or truncated} (LASER's R), then the length-shaping chain and the group
  advantage `config.advantage`;
* "process": PURE — step rewards 2·PRM − 1 ∈ [−1, 1], credit assignment
  `config.process.credit` ("sum", "min" (softmax, T = `min_form_temperature`),
  "strict_min") with weight `prm_coef`, PURE's leave-one-out token baseline, plus the
  verifiable reward VR = correct − 1 with a leave-one-out baseline on the last token
  with weight `verifier_coef`; return-to-go, separators 0, whitening
  (`rlcore.pure_advantages`). The PRM is `envs.text.ProcessRewardModel` with the
  flaws `process.flaws` and, with `process.prm_noise` > 0, a fixed deterministic
  uniform error of that half-width on every step score (an imperfect judge, as a
  learned PRM is);
* "pointwise_rm": a pointwise reward model whose scores differ by tiny amounts plus
  noise, `base + signal · correct + N(0, noise²)`, normalised by the group advantage,
  or, with `config.pref.enabled`, replaced by Pref-GRPO win rates from a judge
  (`config.pref.judge`): "pointwise" compares the same noisy scores with a tie margin
  (`pref.margin`); "pairwise" is a pairwise judge that sees both completions and
  prefers the better one, P(i ≻ j) = sigmoid((q_i − q_j) / `pref.judge_temperature`)
  with q the verifier score. The pairwise judge makes explicit the assumption
  Pref-GRPO rests on (a judge comparing two samples discerns quality that a pointwise
  model's tiny score gaps do not); its temperature sets how sharp it is.

KL spikes. `approx_kl` (k3 of the stored old log-probs against the current ones,
token mean, averaged over the update's minibatch steps) can jump to 1-1000 in a
single update and fall back at the next. Two such updates were traced (configs/
grpo_length.py LASER seed 7 update 5; configs/grpo_prm.py min-form seed 6 update
53): in each, one sampled token with a negative advantage, a digit the model copies
(an answer from the last step, an operand from the prompt), lost about 5 nats of
log-prob in one Adam step whose largest parameter change was at most 1.4e-4, and 8.6
and 12.4 nats by the end of the update, while 99% of the batch's tokens moved by
less than 0.3 nats (in the second case the token sat in several identical
completions of one group). In the first case that one step turned the next-token
distribution after "67;#6" from '7' (p = 0.55) to '2' (p = 0.81): the warm-started
model is that sharp at some positions. The ratio clip cannot stop this: it cuts a
token's gradient only after its ratio has left [1 - clip_low, 1 + clip_high].
`lr_warmup_steps` removes the worst case, at update 1 (see `_make_agent`).

This is a host loop (sampling and updates are jitted; scoring is Python), so the
runner executes its sweep points one after another (`HOST_LOOP = True`). A run is
deterministic for its seed: problems and reward noise come from
`numpy.random.default_rng([seed, step])`, sampling from the checkpointed key.

See "DeepSeekMath" (GRPO), Shao et al. 2024 (https://arxiv.org/abs/2402.03300);
LASER, Liu et al. 2025 (https://arxiv.org/abs/2505.15612); PURE, Cheng et al. 2025
(https://arxiv.org/abs/2504.15275); Pref-GRPO, Wang et al. 2025
(https://arxiv.org/abs/2508.20751).
"""

from __future__ import annotations

import functools
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rlcore
from rlcore import lm
from rlcore.agents import sft

HOST_LOOP = True
HPARAMS = ()   # nothing is vmapped: every sweep key is a separate run
PLOT_METRICS = ("accuracy", "mean_length", "eval_accuracy", "eval_length", "kl")

REWARDS = ("outcome", "process", "pointwise_rm")
JUDGES = ("pointwise", "pairwise")
CREDITS = ("sum", "min", "strict_min")
LENGTH_SHAPINGS = ("laser", "laser_d", "laser_de", "group_length_penalty", "kimi",
                   "l1_exact", "truncation", "dapo_overlong", "cosine")
ADVANTAGES = ("grpo", "drgrpo", "grpo_batch", "rloo", "gpg", "opo", "passk")


def default_config():
  """Every GRPO config key with defaults sized for the 2-core CPU text task.

  Returns:
    ConfigDict (see the module docstring; `configs/grpo_*.py` set the experiments).
  """
  import ml_collections as mlc
  c = mlc.ConfigDict()
  c.agent = "grpo"
  c.difficulties = (0, 1, 2)
  c.model = mlc.ConfigDict(dict(hidden_size=128, intermediate_size=256, num_layers=2,
                                num_heads=4, num_kv_heads=2))
  c.sft = mlc.ConfigDict(dict(seed=0, corpus_size=20000, verbosity_probs=(0.1, 0.2, 0.3, 0.4),
                              slip_rate=0.25, slip_by_verbosity=(), skip_rate=0.0, max_skip=2,
                              steps=1500, batch_size=64,
                              lr=3e-3, cache_dir=""))
  c.max_completion_len = 96     # N sampled tokens (text.TASK_MAX_COMPLETION_LEN fits
                                # verbosity <= 3; verbose SFT corpora need more)
  c.num_updates = 100           # GRPO steps
  c.prompts_per_step = 16       # P
  c.group_size = 8              # G
  c.temperature = 1.0
  c.top_p = 1.0
  c.lr = 1e-4
  c.lr_warmup_steps = 0         # optimizer steps of linear warm-up from 0 to lr (0: none)
  c.max_grad_norm = 1.0
  c.clip_low = 0.2
  c.clip_high = 0.28
  c.kl_coef = 0.001
  c.kl_kind = "k3"
  c.aggregation = "token-mean"
  c.inner_epochs = 2
  c.num_minibatches = 2
  c.mask_truncated = False
  c.reward = "outcome"
  c.advantage = "grpo"
  c.shaping = mlc.ConfigDict(dict(
      chain="", alpha=0.5, target_length=48, laser_lower=16, laser_upper=96,
      laser_interval=8, monitor_every=20, monitor_prompts=32, round_method="floor",
      group_alpha=0.4))
  c.process = mlc.ConfigDict(dict(credit="min", min_form_temperature=0.1, prm_coef=1.0,
                                  verifier_coef=0.0, flaws="filler_bonus,restate_bonus",
                                  whiten=True, prm_noise=0.0))
  c.pointwise = mlc.ConfigDict(dict(base=0.7, signal=0.002, noise=0.004))
  c.pref = mlc.ConfigDict(dict(enabled=False, judge="pointwise", margin=0.01,
                               judge_temperature=0.5))
  c.eval_every = 10
  c.eval_problems = 384
  c.eval_temperature = 1.0
  return c


class GRPOState(NamedTuple):
  """A GRPO run's state (checkpointed whole)."""
  params: Any
  opt_state: Any
  ref_params: Any
  shaping_state: Any     # LASER-D/DE state, or ()
  key: jax.Array
  step: jax.Array        # [] int32


class Agent(NamedTuple):
  init: Any              # (key) -> GRPOState
  run_steps: Any         # (state, n, seed) -> (state, metrics dict of [n] arrays)
  num_updates: int
  steps_per_update: int  # completions per step (P·G)
  evaluate: Any          # (state) -> dict of held-out metrics
  lm_config: lm.LMConfig


def _check(name, value, allowed):
  if value not in allowed:
    raise ValueError(f"config.{name}: {value!r} is not allowed; choose one of "
                     f"{', '.join(map(str, allowed))}.")


def _names(value) -> tuple[str, ...]:
  """The names of a comma-separated config string, spaces and empty entries dropped."""
  return tuple(n.strip() for n in str(value).split(",") if n.strip())


def prm_flaws(config) -> tuple[str, ...]:
  """The PRM flaw names of `config.process.flaws` (parsed as `shaping.chain`; empty:
  honest PRM)."""
  return _names(config.process.flaws)


def length_chain(config) -> tuple[str, ...]:
  names = _names(config.shaping.chain)
  for n in names:
    _check("shaping.chain", n, LENGTH_SHAPINGS)
  return names


def validate_config(config) -> None:
  """ValueError naming the offending value for bad choices and sizes."""
  _check("reward", config.reward, REWARDS)
  _check("advantage", config.advantage, ADVANTAGES)
  _check("aggregation", config.aggregation, rlcore.losses.AGGREGATIONS)
  _check("kl_kind", config.kl_kind, rlcore.losses.KL_KINDS)
  _check("process.credit", config.process.credit, CREDITS)
  _check("pref.judge", config.pref.judge, JUDGES)
  slips, verbs = tuple(config.sft.slip_by_verbosity), tuple(config.sft.verbosity_probs)
  if slips and (len(slips) != len(verbs) or not all(0.0 <= x <= 1.0 for x in slips)):
    raise ValueError(f"config.sft.slip_by_verbosity: {slips} must be empty or hold one rate "
                     f"in [0, 1] per verbosity level ({len(verbs)}: {verbs}).")
  skip, most = config.sft.skip_rate, config.sft.max_skip
  if isinstance(skip, bool) or not 0.0 <= float(skip) <= 1.0:
    raise ValueError(f"config.sft.skip_rate must be in [0, 1] (the fraction of SFT examples "
                     f"that leave out their last steps), got {skip!r}.")
  if isinstance(most, bool) or int(most) != most or most < 1:
    raise ValueError(f"config.sft.max_skip must be a positive integer, got {most!r}.")
  from envs.text import prm as prm_lib
  for flaw in prm_flaws(config):
    _check("process.flaws", flaw, prm_lib.FLAWS)
  if not float(config.pref.judge_temperature) > 0:
    raise ValueError(f"config.pref.judge_temperature: must be > 0, got "
                     f"{config.pref.judge_temperature!r}.")
  integers = [(n, 1, "a positive") for n in (
      "max_completion_len", "num_updates", "prompts_per_step", "group_size",
      "inner_epochs", "num_minibatches", "eval_every")]
  for n, least, kind in integers + [("lr_warmup_steps", 0, "a non-negative")]:
    v = config[n]
    if isinstance(v, bool) or int(v) != v or v < least:
      raise ValueError(f"config.{n} must be {kind} integer, got {v!r}.")
  noise = config.process.prm_noise
  if isinstance(noise, bool) or not 0.0 <= float(noise) <= 1.0:
    raise ValueError(f"config.process.prm_noise must be in [0, 1] (the half-width of the "
                     f"PRM's step-score error; scores are in [0, 1]), got {noise!r}.")
  n = config.prompts_per_step * config.group_size
  if n % config.num_minibatches:
    raise ValueError(f"prompts_per_step * group_size = {n} is not divisible by "
                     f"num_minibatches = {config.num_minibatches}.")
  if config.group_size < 2:
    raise ValueError(f"config.group_size must be >= 2 for group baselines, got "
                     f"{config.group_size}.")
  for d in config.difficulties:
    _check("difficulties", d, (0, 1, 2))
  chain = length_chain(config)
  if chain and config.reward != "outcome":
    raise ValueError(f"config.shaping.chain={config.shaping.chain!r} needs reward='outcome' "
                     f"(length shaping acts on verifier scores), got {config.reward!r}.")
  if sum(n in ("laser_d", "laser_de") for n in chain) > 1:
    raise ValueError("config.shaping.chain: at most one of laser_d, laser_de.")


# --------------------------------------------------------------------------------------
# Rewards and advantages (pure JAX, jitted once per config).


def _length_transform(name, config):
  """A ShapingTransform over [P, G] scores with a SequenceContext."""
  s = config.shaping
  if name in ("laser_d", "laser_de"):
    thresholds = rlcore.laser_d_thresholds(int(s.laser_lower), int(s.laser_upper),
                                           int(s.laser_interval))
    fn = rlcore.laser_d if name == "laser_d" else rlcore.laser_de
    return fn(thresholds, alpha=s.alpha, round_method=s.round_method)
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


# --------------------------------------------------------------------------------------
# The agent.


_AGENTS: dict = {}   # config JSON -> Agent: equal configs share compiled functions


def make_agent(config) -> Agent:
  """Builds the GRPO pieces (the SFT warm start is trained or read from its cache).

  Agents are pure functions of their config, so equal configs get the same `Agent`
  (and its jitted functions compile once per process).

  Args:
    config: see `default_config`.

  Returns:
    An `Agent` whose `run_steps(state, n, seed)` advances n GRPO steps on the host.
  """
  validate_config(config)
  key = config.to_json_best_effort(sort_keys=True)
  if key not in _AGENTS:
    _AGENTS[key] = _make_agent(config)
  return _AGENTS[key]


def _make_agent(config) -> Agent:
  from envs import text
  tok = text.CharTokenizer()
  cfg = sft.lm_config(config, tok.vocab_size)
  prm = text.ProcessRewardModel(flaws=prm_flaws(config),
                                noise=float(config.process.prm_noise))
  P, G = config.prompts_per_step, config.group_size
  PL, N = text.TASK_MAX_PROMPT_LEN, int(config.max_completion_len)
  K = N  # every step has >= 1 token, so no step of a completion that fits is dropped
  difficulties = tuple(config.difficulties)
  # Adam's first steps are sign steps of size lr on every parameter; at lr = 1e-4 they
  # can move one token's log-prob by 10+ nats within the first update (measured: k3
  # approx_kl 42.6 at update 1 of grpo_length seed 2, 6e-5 at lr = 1e-5). A linear
  # warm-up (`lr_warmup_steps` optimizer steps, i.e. updates x inner_epochs x
  # num_minibatches) avoids that; 0 keeps the plain constant lr.
  warmup = int(config.lr_warmup_steps)
  lr = (optax.linear_schedule(0.0, float(config.lr), warmup) if warmup
        else config.lr)
  opt = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr))
  shaping = make_shaping(config)
  uses_monitor = any(n in ("laser_d", "laser_de") for n in length_chain(config))
  sample_kw = dict(max_new_tokens=N, eos_id=tok.eos_id, pad_id=tok.pad_id)

  def init(key):
    params, _ = sft.warm_start(config)
    return GRPOState(params=params, opt_state=opt.init(params), ref_params=params,
                     shaping_state=shaping.init(), key=key,
                     step=jnp.zeros((), jnp.int32))

  @functools.partial(jax.jit, static_argnames=("temperature",))
  def rollout(params, prompts, pmask, key, temperature):
    out = lm.sample(params, cfg, prompts, pmask, key, temperature=temperature,
                    top_p=config.top_p, **sample_kw)
    full_mask = jnp.concatenate([pmask.astype(jnp.float32), out.response_mask], 1)
    return out, full_mask

  @jax.jit
  def logprobs(params, tokens, mask):
    return lm.token_logprobs(params, cfg, tokens, mask)[:, PL:]

  @jax.jit
  def compute_advantages(scored, response_mask, shaping_state):
    return advantages(config, scored, response_mask, shaping_state)

  def loss_fn(params, mb):
    lp = lm.token_logprobs(params, cfg, mb["tokens"], mb["mask"])[:, PL:]
    pg, st = rlcore.ppo_clip_loss(lp, mb["old_logprobs"], mb["advantages"], mb["loss_mask"],
                                  clip_low=config.clip_low, clip_high=config.clip_high,
                                  aggregation=config.aggregation)
    kl_tok = rlcore.kl_estimate(lp, mb["ref_logprobs"], config.kl_kind)
    kl = rlcore.aggregate_tokens(kl_tok, mb["loss_mask"], config.aggregation)
    return pg + config.kl_coef * kl, dict(st, pg_loss=pg, kl=kl)

  def trim(batch, lengths):
    """Drops right padding past the longest response (rounded up to 16 tokens):
    fewer shapes to compile, much less work when responses are short."""
    width = min(N, int(-(-int(np.max(np.asarray(lengths))) // 16) * 16) or 16)
    return {k: (v[:, :PL + width] if k in ("tokens", "mask") else v[:, :width])
            for k, v in batch.items()}

  @jax.jit
  def update(params, opt_state, batch, key):
    n = batch["tokens"].shape[0]
    mb_size = n // config.num_minibatches

    def epoch(carry, k):
      perm = jax.random.permutation(k, n)
      mbs = jax.tree.map(lambda x: x[perm].reshape((config.num_minibatches, mb_size)
                                                   + x.shape[1:]), batch)

      def sgd(carry, mb):
        p, o = carry
        (loss, aux), g = jax.value_and_grad(loss_fn, has_aux=True)(p, mb)
        u, o = opt.update(g, o, p)
        return (optax.apply_updates(p, u), o), dict(aux, loss=loss)

      return jax.lax.scan(sgd, carry, mbs)

    (params, opt_state), aux = jax.lax.scan(epoch, (params, opt_state),
                                            jax.random.split(key, config.inner_epochs))
    return params, opt_state, jax.tree.map(jnp.mean, aux)

  def score(problems, response, lengths, finished, rng):
    """Host scoring of [P·G] completions -> Scored ([P, G] layout)."""
    texts = tok.batch_decode(np.asarray(response))
    correct, well_formed = text.verify_batch(problems, texts)
    finished = np.asarray(finished)
    correct &= finished
    well_formed &= finished
    vscore = np.where(correct, 1.0, np.where(well_formed, -0.5, -1.0)).astype(np.float32)
    if config.reward == "process":
      steps, smask, ends = prm.score_batch(problems, texts, K)
    else:
      steps = np.zeros((len(texts), 1), np.float32)
      smask = np.zeros((len(texts), 1), bool)
      ends = np.zeros((len(texts), 1), np.int32)
    pw = config.pointwise
    pointwise = (pw.base + pw.signal * correct + pw.noise * rng.standard_normal(len(texts)))
    separators = np.asarray(response) == tok.step_id
    shape = (P, G)
    return Scored(
        verifier_score=jnp.asarray(vscore.reshape(shape)),
        correct=jnp.asarray(correct.reshape(shape)),
        well_formed=jnp.asarray(well_formed.reshape(shape)),
        lengths=jnp.asarray(np.asarray(lengths, np.float32).reshape(shape)),
        pointwise=jnp.asarray(pointwise.astype(np.float32).reshape(shape)),
        step_scores=jnp.asarray(steps.reshape(P, G, -1)),
        step_mask=jnp.asarray(smask.reshape(P, G, -1)),
        step_ends=jnp.asarray(ends.reshape(P, G, -1)),
        separators=jnp.asarray(separators.reshape(P, G, -1))), texts, steps, smask

  def monitor(state, seed):
    """LASER-D's monitor pass: M train prompts × G samples -> updated shaping state."""
    rng = np.random.default_rng([seed, int(state.step), 7])
    M = config.shaping.monitor_prompts
    problems = text.generate(rng, M, difficulties)
    prompts, pmask = tok.batch_encode_prompts([p.prompt for p in problems], PL)
    rep = lambda x: np.repeat(x, G, axis=0)
    key = jax.random.fold_in(state.key, 1_000_003)
    out, _ = rollout(state.params, rep(prompts), rep(pmask), key, config.temperature)
    texts = tok.batch_decode(np.asarray(out.response))
    correct, _ = text.verify_batch([p for p in problems for _ in range(G)], texts)
    correct &= np.asarray(out.finished)
    s = config.shaping
    thresholds = rlcore.laser_d_thresholds(int(s.laser_lower), int(s.laser_upper),
                                           int(s.laser_interval))
    stats = rlcore.laser_monitor_statistics(
        jnp.asarray(np.asarray(out.lengths).reshape(M, G)), jnp.asarray(correct.reshape(M, G)),
        thresholds)
    return state._replace(shaping_state=shaping.update(state.shaping_state, stats))

  def one_step(state, seed):
    t0 = time.perf_counter()
    step = int(state.step)
    if uses_monitor and step % config.shaping.monitor_every == 0:
      state = monitor(state, seed)
    rng = np.random.default_rng([seed, step])
    problems = text.generate(rng, P, difficulties)
    prompts, pmask = tok.batch_encode_prompts([p.prompt for p in problems], PL)
    rep = lambda x: np.repeat(x, G, axis=0)
    key, sample_key, update_key = jax.random.split(state.key, 3)
    out, full_mask = rollout(state.params, rep(prompts), rep(pmask), sample_key,
                             config.temperature)
    jax.block_until_ready(out)
    t_sample = time.perf_counter()
    problems_rep = [p for p in problems for _ in range(G)]
    scored, texts, steps, smask = score(problems_rep, out.response, out.lengths,
                                        out.finished, rng)
    t_score = time.perf_counter()
    response_mask = out.response_mask
    adv, shaped, shaping_state, adv_stats = compute_advantages(scored, response_mask,
                                                               state.shaping_state)
    jax.block_until_ready(adv)
    t_adv = time.perf_counter()
    loss_mask = response_mask
    if config.mask_truncated:
      loss_mask = loss_mask * out.finished[:, None].astype(jnp.float32)
    batch = trim(dict(tokens=out.tokens, mask=full_mask, advantages=adv, loss_mask=loss_mask),
                 out.lengths)
    batch["old_logprobs"] = logprobs(state.params, batch["tokens"], batch["mask"])
    batch["ref_logprobs"] = logprobs(state.ref_params, batch["tokens"], batch["mask"])
    params, opt_state, aux = update(state.params, state.opt_state, batch, update_key)
    jax.block_until_ready(params)
    t_update = time.perf_counter()

    correct = np.asarray(scored.correct).reshape(-1)
    lengths = np.asarray(out.lengths, np.float64)
    diff = np.array([p.difficulty for p in problems_rep])
    fillers = np.array([sum(1 for st in t.split(";") if st.startswith(("ok", "so", "check")))
                        for t in texts])
    metrics = dict(
        accuracy=correct.mean(), mean_length=lengths.mean(),
        verifier_reward=float(np.asarray(scored.verifier_score).mean()),
        shaped_reward=float(np.asarray(shaped).mean()),
        truncated_rate=1.0 - float(np.asarray(out.finished).mean()),
        filler_steps=fillers.mean(),
        kl=float(aux["kl"]), loss=float(aux["loss"]), pg_loss=float(aux["pg_loss"]),
        clip_fraction=float(aux["clip_fraction"]), approx_kl=float(aux["approx_kl"]),
        time_sample=t_sample - t0, time_score=t_score - t_sample,
        time_advantages=t_adv - t_score, time_update=t_update - t_adv)
    for d in range(3):
      sel = diff == d
      metrics[f"length_d{d}"] = float(lengths[sel].mean()) if sel.any() else float("nan")
      metrics[f"accuracy_d{d}"] = float(correct[sel].mean()) if sel.any() else float("nan")
    if config.reward == "process":
      sc = np.where(smask, steps, np.inf)
      metrics["prm_min"] = float(np.where(smask.any(1), sc.min(1), 0.0).mean())
      metrics["prm_sum"] = float(np.where(smask, steps, 0.0).sum(1).mean())
    for k, v in adv_stats.items():
      metrics[k] = float(v)
    if uses_monitor:
      tl = np.asarray([s for s in shaping_state if hasattr(s, "target_lengths")][0]
                      .target_lengths)
      for d, name in enumerate(("hard", "medium", "easy")):
        metrics[f"target_length_{name}"] = float(tl[d])
    new = GRPOState(params=params, opt_state=opt_state, ref_params=state.ref_params,
                    shaping_state=shaping_state, key=key, step=state.step + 1)
    return new, metrics

  def evaluate(state):
    """Pass@1 on `eval_problems` held-out problems, sampled at `eval_temperature`
    with a fixed key (0 = greedy): accuracy and lengths, overall and by difficulty."""
    problems = text.generate(12345, config.eval_problems, difficulties, split="held_out")
    prompts, pmask = tok.batch_encode_prompts([p.prompt for p in problems], PL)
    out, _ = rollout(state.params, prompts, pmask, jax.random.key(12345),
                     float(config.eval_temperature))
    texts = tok.batch_decode(np.asarray(out.response))
    correct, _ = text.verify_batch(problems, texts)
    correct &= np.asarray(out.finished)
    lengths = np.asarray(out.lengths, np.float64)
    diff = np.array([p.difficulty for p in problems])
    res = dict(eval_accuracy=float(correct.mean()), eval_length=float(lengths.mean()))
    for d in range(3):
      sel = diff == d
      if sel.any():
        res[f"eval_length_d{d}"] = float(lengths[sel].mean())
        res[f"eval_accuracy_d{d}"] = float(correct[sel].mean())
    return res

  def run_steps(state, n, seed):
    records = []
    for _ in range(n):
      state, m = one_step(state, seed)
      step = int(state.step)
      if step % config.eval_every == 0 or step == config.num_updates:
        m.update(evaluate(state))
      m["env_steps"] = step * P * G
      records.append(m)
    keys = sorted({k for r in records for k in r})
    return state, {k: np.array([r.get(k, np.nan) for r in records], np.float64)
                   for k in keys}

  return Agent(init=init, run_steps=run_steps, num_updates=int(config.num_updates),
               steps_per_update=P * G, evaluate=evaluate, lm_config=cfg)
