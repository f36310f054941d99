"""GRPO's config: every key with its default, the allowed values, and validation."""

from __future__ import annotations

import rlcore
from rlcore.agents.validation import check_choice, check_number, require_int

TASKS = ("arithmetic", "dataset")
REWARDS = ("outcome", "process", "pointwise_rm")
JUDGES = ("pointwise", "pairwise")
CREDITS = ("sum", "min", "strict_min")
LENGTH_SHAPINGS = ("laser", "laser_d", "laser_de", "group_length_penalty", "kimi",
                   "l1_exact", "truncation", "dapo_overlong", "cosine")
MONITORED_SHAPINGS = ("laser_d", "laser_de")   # stateful: updated by a monitor pass
ADVANTAGES = ("grpo", "drgrpo", "grpo_batch", "rloo", "gpg", "opo", "passk")
OCCUPANCY_KINDS = ("none", "kl", "chi2", "sqrt_chi2")


def default_config():
  """Every GRPO config key with defaults sized for the 2-core CPU text task.

  Returns:
    ConfigDict (see `rlcore.agents.grpo`; `configs/grpo_*.py` set the experiments).
  """
  import ml_collections as mlc
  c = mlc.ConfigDict()
  c.agent = "grpo"              # the agent family
  c.task = "arithmetic"         # arithmetic (built-in) or dataset (model.hf_path, dataset.path)
  c.difficulties = (0, 1, 2)    # problem difficulties trained and evaluated on (0 easy .. 2 hard)
  c.model = mlc.ConfigDict()    # the policy: a Llama-layout causal LM
  c.model.hidden_size = 128     # residual width
  c.model.intermediate_size = 256  # SwiGLU width
  c.model.num_layers = 2        # transformer blocks
  c.model.num_heads = 4         # query heads
  c.model.num_kv_heads = 2      # key/value heads (grouped-query attention)
  # task = "dataset": a local Hugging Face Llama / Qwen2 checkpoint folder (config.json,
  # safetensors, tokenizer.json, its chat template); the sizes above and `sft` are unused.
  c.model.hf_path = ""          # task = dataset: the local HF checkpoint folder
  c.model.param_dtype = "float32"  # the policy's parameters: float32 or bfloat16 (then
                                   # trained through a float32 master copy and Adam state)
  c.model.remat = False         # rematerialise each block in the update (less memory)
  c.model.scan_layers = False   # nn.scan over the blocks in the update (LMConfig.scan_layers:
                                # faster for large models, the loop for small ones)
  c.model.shard_params = False  # split parameters and optimiser state over all devices
  # task = "dataset": prompts and answers (rlcore.agents.grpo.tasks.DatasetTask).
  c.dataset = mlc.ConfigDict()
  c.dataset.path = ""           # JSONL file, one {prompt_field, answer_field} object per line
  c.dataset.prompt_field = "question"  # key of the prompt
  c.dataset.answer_field = "answer"    # key of the answer or reference solution
  c.dataset.answer_format = "gsm8k"    # how to read it: gsm8k (####), boxed (MATH), plain
  c.dataset.answer_method = "auto"     # how to find a completion's answer (answers.METHODS)
  c.dataset.held_out = 0.1      # held-out examples: a fraction (< 1) or a count
  c.dataset.split_seed = 0      # seed of the train / held-out split
  c.dataset.chat_template = True  # render prompts with the tokenizer's chat template
  c.dataset.system_prompt = ""  # a system message before the prompt ("": none)
  c.dataset.prompt_prefix = ""  # text before each prompt, in the user message
  c.dataset.prompt_suffix = ""  # text after it (e.g. an instruction on the answer format)
  c.dataset.max_prompt_len = 0  # prompt tokens (0: the longest prompt, rounded up to 8)
  c.dataset.reward_fn = ""      # "module:function" scoring completions in place of the
                                # verifier: fn(prompts, completions, answers) -> [B] floats
  c.dataset.step_scorer = ""    # "module:function" for reward = "process": fn(prompts,
                                # step texts per completion, answers) -> scores in [0, 1]
  c.dataset.step_separator = "\n\n"  # PURE's step separator (a token ending in it ends a step)
  # The supervised warm start (rlcore.agents.sft), cached by a hash of these keys.
  c.sft = mlc.ConfigDict()
  c.sft.seed = 0                # seed of the SFT corpus and training
  c.sft.corpus_size = 20000     # (prompt, solution) pairs
  c.sft.verbosity_probs = (0.1, 0.2, 0.3, 0.4)  # P(k filler steps), k = 0, 1, ...
  c.sft.slip_rate = 0.25        # fraction of solutions with an arithmetic slip
  c.sft.slip_by_verbosity = ()  # slip rate per verbosity level (empty: slip_rate for all)
  c.sft.skip_rate = 0.0         # fraction of solutions that leave out their last steps
  c.sft.max_skip = 2            # most steps such a solution leaves out
  c.sft.steps = 1500            # SFT optimizer steps
  c.sft.batch_size = 64         # SFT batch size
  c.sft.lr = 3e-3               # SFT peak learning rate (warm-up, cosine decay)
  c.sft.cache_dir = ""          # warm-start cache ("": ~/.cache/rlcore/sft)
  c.max_completion_len = 96     # N sampled tokens (text.TASK_MAX_COMPLETION_LEN fits
                                # verbosity <= 3; verbose SFT corpora need more)
  c.num_updates = 100           # GRPO steps
  c.prompts_per_step = 16       # P prompts per update
  c.group_size = 8              # G completions per prompt
  c.temperature = 1.0           # sampling temperature of training rollouts
  c.top_p = 1.0                 # nucleus mass of training rollouts (1: off)
  c.lr = 1e-4                   # Adam learning rate
  c.lr_warmup_steps = 0         # optimizer steps of linear warm-up from 0 to lr (0: none)
  c.max_grad_norm = 1.0         # global gradient-norm clip
  c.clip_low = 0.2              # lower ratio clip: ρ >= 1 - clip_low
  c.clip_high = 0.28            # upper ratio clip: ρ <= 1 + clip_high
  c.kl_coef = 0.001             # β of the KL penalty to the reference (warm start)
  c.kl_kind = "k3"              # KL estimator: k1, k2 or k3
  c.reference_diagnostics = True  # at kl_coef = 0 without an occupancy penalty, still log
                                  # kl and occupancy_* (one more forward pass per update)
  c.aggregation = "token-mean"  # token aggregation of the loss (rlcore.losses.AGGREGATIONS)
  c.inner_epochs = 2            # epochs over each batch
  c.num_minibatches = 2         # minibatches per epoch
  c.microbatches = 1            # each minibatch's gradient summed over this many parts (the
                                # same gradient; less memory, faster on CPUs, see update.py)
  c.mask_truncated = False      # drop truncated completions from the loss
  c.reward = "outcome"          # outcome (verifier), process (PURE) or pointwise_rm
  c.advantage = "grpo"          # group advantage: grpo, drgrpo, grpo_batch, rloo, gpg, opo, passk
  c.shaping = mlc.ConfigDict()  # length shaping of verifier scores (reward = outcome)
  c.shaping.chain = ""          # length rewards in order (LENGTH_SHAPINGS, comma-separated)
  c.shaping.alpha = 0.5         # LASER's bonus for a correct answer within the target
  c.shaping.target_length = 48  # LASER's L_T, and the target of truncation/L1/DAPO rewards
  c.shaping.laser_lower = 16    # LASER-D's shortest candidate target
  c.shaping.laser_upper = 96    # LASER-D's longest candidate target
  c.shaping.laser_interval = 8  # LASER-D's candidate spacing
  c.shaping.monitor_every = 20  # updates between LASER-D's monitor passes
  c.shaping.monitor_prompts = 32  # prompts of a monitor pass
  c.shaping.round_method = "floor"  # LASER-D's rounding of the required correct count
  c.shaping.group_alpha = 0.4   # the group-based length penalty's weight
  c.process = mlc.ConfigDict()  # process rewards (reward = process, PURE)
  c.process.credit = "min"      # credit assignment: sum, min (softmax) or strict_min
  c.process.min_form_temperature = 0.1  # min-form's softmax temperature
  c.process.prm_coef = 1.0      # weight of the PRM's step rewards
  c.process.verifier_coef = 0.0  # weight of the verifiable reward on the last token
  c.process.flaws = "filler_bonus,restate_bonus"  # the PRM's flaws (envs.text.prm.FLAWS)
  c.process.whiten = True       # whiten the token advantages over the batch
  c.process.prm_noise = 0.0     # half-width of a fixed error on every PRM step score
  c.pointwise = mlc.ConfigDict()  # the noisy pointwise reward model (reward = pointwise_rm)
  c.pointwise.base = 0.7        # score of a wrong answer
  c.pointwise.signal = 0.002    # extra score of a correct answer
  c.pointwise.noise = 0.004     # standard deviation of the score noise
  c.pref = mlc.ConfigDict()     # Pref-GRPO win rates instead of pointwise scores
  c.pref.enabled = False        # use win rates
  c.pref.judge = "pointwise"    # judge: pointwise (noisy scores, tie margin) or pairwise
  c.pref.margin = 0.01          # score gap below which the pointwise judge calls a tie
  c.pref.judge_temperature = 0.5  # sharpness of the pairwise judge
  # ORPO's occupancy regulariser to the frozen reference (the warm start), an alternative
  # to the token KL (kl_coef): each response's score becomes score − λ·distance before
  # the group advantage, with d = log π_old(y|x) − log π_ref(y|x) the exact log occupancy
  # ratio of a contextual bandit (see rlcore.agents.grpo.rewards.sequence_penalty).
  # Both may be on at once; set kl_coef = 0 to compare the two regularisers alone.
  c.occupancy = mlc.ConfigDict()
  c.occupancy.kind = "none"     # none, kl (d), chi2 (e^d − 1), sqrt_chi2 ((e^d − 1)/sqrt(χ̂²))
  c.occupancy.coef = 0.1        # λ >= 0, in units of the sequence reward
  c.occupancy.clip = 10.0       # bound on |λ·distance| per response (> 0)
  c.occupancy.max_logit = 20.0  # cap on d (nats) before exp (> 0; e^20 ≈ 4.9e8)
  c.eval_every = 10             # held-out evaluation every this many updates (and the last)
  c.eval_problems = 384         # held-out problems per evaluation (a dataset's: at most all)
  c.eval_temperature = 1.0      # sampling temperature of evaluations (0: greedy)
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
  check_number(config, "lr", 0.0, low_open=True)
  check_number(config, "max_grad_norm", 0.0, low_open=True)
  for name in ("clip_low", "clip_high", "kl_coef", "temperature", "eval_temperature"):
    check_number(config, name, 0.0)
  check_number(config, "top_p", 0.0, 1.0, low_open=True)
  check_number(config.sft, "lr", 0.0, low_open=True, prefix="sft.")
  for n in ("steps", "batch_size", "corpus_size"):
    require_int(config.sft, n, 1, prefix="sft.")
  require_int(config, "eval_problems", 1)
  s = config.shaping
  for n in ("target_length", "laser_lower", "laser_interval", "monitor_every",
            "monitor_prompts"):
    require_int(s, n, 1, prefix="shaping.")
  if s.laser_upper < s.laser_lower:
    raise ValueError(f"config.shaping.laser_upper ({s.laser_upper}) must be >= "
                     f"shaping.laser_lower ({s.laser_lower}).")
  check_number(s, "alpha", prefix="shaping.")
  check_number(s, "group_alpha", 0.0, prefix="shaping.")
  check_number(config.process, "min_form_temperature", 0.0, low_open=True, prefix="process.")
  for n in ("prm_coef", "verifier_coef"):
    check_number(config.process, n, prefix="process.")
  check_number(config.pointwise, "noise", 0.0, prefix="pointwise.")
  check_number(config.pref, "margin", 0.0, prefix="pref.")
  noise = config.process.prm_noise
  if isinstance(noise, bool) or not 0.0 <= float(noise) <= 1.0:
    raise ValueError(f"config.process.prm_noise must be in [0, 1] (the half-width of the "
                     f"PRM's step-score error; scores are in [0, 1]), got {noise!r}.")
  n = config.prompts_per_step * config.group_size
  if n % config.num_minibatches:
    raise ValueError(f"prompts_per_step * group_size = {n} is not divisible by "
                     f"num_minibatches = {config.num_minibatches}.")
  require_int(config, "microbatches", 1)
  if (n // config.num_minibatches) % config.microbatches:
    raise ValueError(f"config.microbatches = {config.microbatches} does not divide the "
                     f"minibatch of prompts_per_step * group_size / num_minibatches = "
                     f"{n // config.num_minibatches} sequences.")
  if config.group_size < 2:
    raise ValueError(f"config.group_size must be >= 2 for group baselines, got "
                     f"{config.group_size}.")
  for d in config.difficulties:
    check_choice("difficulties", d, (0, 1, 2))
  _validate_dataset(config)
  o = config.occupancy
  check_choice("occupancy.kind", o.kind, OCCUPANCY_KINDS)
  check_number(o, "coef", 0.0, prefix="occupancy.")
  check_number(o, "clip", 0.0, low_open=True, prefix="occupancy.")
  check_number(o, "max_logit", 0.0, low_open=True, prefix="occupancy.")
  if o.kind != "none" and config.reward != "process" and config.advantage == "passk":
    raise ValueError(f"config.occupancy.kind={o.kind!r} needs an advantage that reads the "
                     f"rewards; advantage='passk' uses only correctness, so the penalty "
                     f"would be ignored (choose one of "
                     f"{', '.join(a for a in ADVANTAGES if a != 'passk')}).")
  chain = length_chain(config)
  if chain and config.reward != "outcome":
    raise ValueError(f"config.shaping.chain={config.shaping.chain!r} needs reward='outcome' "
                     f"(length shaping acts on verifier scores), got {config.reward!r}.")
  if sum(n in MONITORED_SHAPINGS for n in chain) > 1:
    raise ValueError("config.shaping.chain: at most one of laser_d, laser_de.")


def _validate_dataset(config) -> None:
  """The keys of `model.hf_path` and `dataset` (files are checked when they are read)."""
  m, d = config.model, config.dataset
  check_choice("task", config.task, TASKS)
  if config.task == "dataset":
    missing = [k for k, v in (("model.hf_path", m.hf_path), ("dataset.path", d.path)) if not v]
    if missing:
      raise ValueError(f"config.task='dataset' needs {' and '.join(missing)}: a local Hugging "
                       f"Face checkpoint folder (model.hf_path) and a JSONL file "
                       f"(dataset.path).")
  elif m.hf_path or d.path:
    raise ValueError(f"config.model.hf_path / config.dataset.path are set "
                     f"({m.hf_path!r}, {d.path!r}) but config.task is 'arithmetic', which "
                     f"does not read them; set config.task='dataset'.")
  check_choice("model.param_dtype", m.param_dtype, ("float32", "bfloat16"))
  from rlcore.envs.text import answers, datasets
  check_choice("dataset.answer_format", d.answer_format, datasets.ANSWER_FORMATS)
  check_choice("dataset.answer_method", d.answer_method, answers.METHODS)
  held = d.held_out
  if isinstance(held, bool) or not (0.0 < float(held) < 1.0 or (
      float(held) >= 1.0 and float(held) == int(held))):
    raise ValueError(f"config.dataset.held_out must be a fraction in (0, 1) or a count "
                     f"(an integer >= 1), got {held!r}.")
  require_int(d, "max_prompt_len", 0, prefix="dataset.")
  if not str(d.step_separator):
    raise ValueError("config.dataset.step_separator must be a non-empty string.")
  for name in ("reward_fn", "step_scorer"):
    spec = str(d[name])
    if spec and spec.count(":") != 1:
      raise ValueError(f"config.dataset.{name} must be 'module:function', got {spec!r}.")
