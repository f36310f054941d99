"""GRPO's config: every key with its default, the allowed values, and validation."""

from __future__ import annotations

import rlcore
from rlcore.agents.validation import check_choice, require_int

REWARDS = ("outcome", "process", "pointwise_rm")
JUDGES = ("pointwise", "pairwise")
CREDITS = ("sum", "min", "strict_min")
LENGTH_SHAPINGS = ("laser", "laser_d", "laser_de", "group_length_penalty", "kimi",
                   "l1_exact", "truncation", "dapo_overlong", "cosine")
MONITORED_SHAPINGS = ("laser_d", "laser_de")   # stateful: updated by a monitor pass
ADVANTAGES = ("grpo", "drgrpo", "grpo_batch", "rloo", "gpg", "opo", "passk")


def default_config():
  """Every GRPO config key with defaults sized for the 2-core CPU text task.

  Returns:
    ConfigDict (see `rlcore.agents.grpo`; `configs/grpo_*.py` set the experiments).
  """
  import ml_collections as mlc
  c = mlc.ConfigDict()
  c.agent = "grpo"
  c.difficulties = (0, 1, 2)    # problem difficulties trained and evaluated on
  c.model = mlc.ConfigDict(dict(hidden_size=128, intermediate_size=256, num_layers=2,
                                num_heads=4, num_kv_heads=2))
  # The supervised warm start (rlcore.agents.sft), cached by a hash of these keys.
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
  c.mask_truncated = False      # drop truncated completions from the loss
  c.reward = "outcome"          # one of REWARDS
  c.advantage = "grpo"          # one of ADVANTAGES
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
  c.eval_every = 10             # held-out evaluation every this many updates (and the last)
  c.eval_problems = 384
  c.eval_temperature = 1.0
  return c


def _names(value) -> tuple[str, ...]:
  """The names of a comma-separated config string, spaces and empty entries dropped."""
  return tuple(n.strip() for n in str(value).split(",") if n.strip())


def prm_flaws(config) -> tuple[str, ...]:
  """The PRM flaw names of `config.process.flaws` (parsed as `shaping.chain`; empty:
  honest PRM)."""
  return _names(config.process.flaws)


def length_chain(config) -> tuple[str, ...]:
  """The length-shaping names of `config.shaping.chain`, validated."""
  names = _names(config.shaping.chain)
  for n in names:
    check_choice("shaping.chain", n, LENGTH_SHAPINGS)
  return names


def monitored_index(config):
  """Index in the shaping chain of its LASER-D / LASER-DE member, or None."""
  chain = length_chain(config)
  hits = [i for i, n in enumerate(chain) if n in MONITORED_SHAPINGS]
  return hits[0] if hits else None


def validate_config(config) -> None:
  """ValueError naming the offending value for bad choices and sizes."""
  check_choice("reward", config.reward, REWARDS)
  check_choice("advantage", config.advantage, ADVANTAGES)
  check_choice("aggregation", config.aggregation, rlcore.losses.AGGREGATIONS)
  check_choice("kl_kind", config.kl_kind, rlcore.losses.KL_KINDS)
  check_choice("process.credit", config.process.credit, CREDITS)
  check_choice("pref.judge", config.pref.judge, JUDGES)
  slips, verbs = tuple(config.sft.slip_by_verbosity), tuple(config.sft.verbosity_probs)
  if slips and (len(slips) != len(verbs) or not all(0.0 <= x <= 1.0 for x in slips)):
    raise ValueError(f"config.sft.slip_by_verbosity: {slips} must be empty or hold one rate "
                     f"in [0, 1] per verbosity level ({len(verbs)}: {verbs}).")
  skip = config.sft.skip_rate
  if isinstance(skip, bool) or not 0.0 <= float(skip) <= 1.0:
    raise ValueError(f"config.sft.skip_rate must be in [0, 1] (the fraction of SFT examples "
                     f"that leave out their last steps), got {skip!r}.")
  require_int(config.sft, "max_skip", 1, prefix="sft.")
  from rlcore.envs.text import prm as prm_lib
  for flaw in prm_flaws(config):
    check_choice("process.flaws", flaw, prm_lib.FLAWS)
  if not float(config.pref.judge_temperature) > 0:
    raise ValueError(f"config.pref.judge_temperature: must be > 0, got "
                     f"{config.pref.judge_temperature!r}.")
  for n in ("max_completion_len", "num_updates", "prompts_per_step", "group_size",
            "inner_epochs", "num_minibatches", "eval_every"):
    require_int(config, n, 1)
  require_int(config, "lr_warmup_steps", 0)
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
    check_choice("difficulties", d, (0, 1, 2))
  chain = length_chain(config)
  if chain and config.reward != "outcome":
    raise ValueError(f"config.shaping.chain={config.shaping.chain!r} needs reward='outcome' "
                     f"(length shaping acts on verifier scores), got {config.reward!r}.")
  if sum(n in MONITORED_SHAPINGS for n in chain) > 1:
    raise ValueError("config.shaping.chain: at most one of laser_d, laser_de.")
