"""GRPO's tasks: where the prompts, the tokenizer, the first policy and the scores come from.

Two tasks share the agent's loop (`rlcore.agents.grpo.agent`), the reward pipeline and
the update:

* `ArithmeticTask` (the default): the built-in chained-arithmetic problems of
  `rlcore.envs.text`, its character tokenizer, the SFT warm start of
  `rlcore.agents.sft`, its verifier and its process reward model.
* `DatasetTask` (`config.task = "dataset"`, with `model.hf_path` and `dataset.path`): a local
  Hugging Face Llama / Qwen2 checkpoint (`rlcore.lm.load_hf`) and its tokenizer, the
  prompts of a JSONL file (`rlcore.envs.text.datasets`) rendered with the tokenizer's
  chat template (`rlcore.lm.chat_template`, as transformers renders it), answers checked
  by `rlcore.envs.text.answers` (GSM8K's `####`, MATH's `\\boxed{}`), and two hooks:
  `dataset.reward_fn` (a user's score per completion: in place of the verifier's with
  `reward = "outcome"`, the reward model's with `reward = "pointwise_rm"`, which
  Pref-GRPO's judges compare) and
  `dataset.step_scorer` (a user's score per reasoning step, for `reward = "process"`,
  the steps split at `dataset.step_separator` as PURE splits them).

Both score a completion as the text task does: 1 if its answer is right and it
finished, -0.5 if it has an answer that is wrong, -1 if it has none or was truncated
(LASER's R); `correct` is what LASER's shaping and the accuracy metrics read.

Every task has the same methods (`make_task` picks one): `initial_params`,
`train_problems`, `held_out_problems`, `encode_prompts`, `decode`, `verify`,
`verifier_scores`, `pointwise_scores`, `process_scores`, `text_metrics`, and the
attributes `lm_config`, `prompt_len`, `eos_id`, `pad_id` and `has_difficulty`.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import lm
from rlcore.agents import sft
from rlcore.envs import text
from rlcore.envs.text import answers, datasets, steps as steps_lib

EVAL_SEED = 12345     # the arithmetic task's held-out problems


def _verifier_scores(correct: np.ndarray, well_formed: np.ndarray) -> np.ndarray:
  return np.where(correct, 1.0, np.where(well_formed, -0.5, -1.0)).astype(np.float32)


class ArithmeticTask:
  """The built-in arithmetic task (see `rlcore.envs.text`)."""

  has_difficulty = True

  def __init__(self, config):
    self.config = config
    self.tokenizer = text.CharTokenizer()
    self.sft_config = sft.lm_config(config, self.tokenizer.vocab_size)   # float32
    self.lm_config = self.sft_config.replace(param_dtype=str(config.model.param_dtype),
                                             remat=bool(config.model.remat),
                                             scan_layers=bool(config.model.scan_layers))
    self.prompt_len = text.TASK_MAX_PROMPT_LEN
    self.eos_id, self.pad_id = self.tokenizer.eos_id, self.tokenizer.pad_id
    self.difficulties = tuple(config.difficulties)
    from rlcore.agents.grpo import config as config_lib
    self.prm = text.ProcessRewardModel(flaws=config_lib.prm_flaws(config),
                                       noise=float(config.process.prm_noise))

  def initial_params(self):
    """The SFT warm start (trained once in float32, then read from its cache), in
    `model.param_dtype`."""
    dtype = jnp.dtype(self.lm_config.param_dtype)
    return jax.tree.map(lambda x: jnp.asarray(x, dtype), sft.warm_start(self.config)[0])

  def train_problems(self, rng: np.random.Generator, n: int) -> list:
    return text.generate(rng, n, self.difficulties)

  def held_out_problems(self, n: int) -> list:
    return text.generate(EVAL_SEED, n, self.difficulties, split="held_out")

  def encode_prompts(self, problems: Sequence) -> tuple[np.ndarray, np.ndarray]:
    return self.tokenizer.batch_encode_prompts([p.prompt for p in problems], self.prompt_len)

  def decode(self, response: np.ndarray) -> list[str]:
    return self.tokenizer.batch_decode(response)

  def verify(self, problems: Sequence, texts: Sequence[str]):
    return text.verify_batch(problems, texts)

  def verifier_scores(self, problems, texts, correct, well_formed) -> np.ndarray:
    del problems, texts
    return _verifier_scores(correct, well_formed)

  def pointwise_scores(self, problems, texts, correct, rng: np.random.Generator):
    """The simulated pointwise reward model: base + signal · correct + N(0, noise²)
    (drawn every step, whatever `config.reward`, so runs stay reproducible)."""
    del problems, texts
    pw = self.config.pointwise
    return (pw.base + pw.signal * correct + pw.noise * rng.standard_normal(len(correct))
            ).astype(np.float32)

  def process_scores(self, problems, texts, response: np.ndarray, lengths: np.ndarray):
    """(scores, mask, ends) [B, K] of the PRM, and the separator tokens [B, N]."""
    del lengths
    scores, mask, ends = self.prm.score_batch(problems, texts, int(response.shape[1]))
    return (scores, mask, ends), response == self.tokenizer.step_id

  def text_metrics(self, texts: Sequence[str]) -> dict:
    return {"filler_steps": float(np.mean([text.count_filler_steps(t) for t in texts]))}


class DatasetProblem(NamedTuple):
  """A dataset example with its prompt rendered and tokenised for the model."""
  prompt: str       # the text the model sees (chat template applied)
  question: str     # the dataset's prompt field
  answer: str       # the reference answer (extracted per `dataset.answer_format`)
  line: int         # its line in the JSONL file
  ids: tuple = ()   # the prompt's token ids


class HFTokenizer:
  """A Hugging Face `tokenizers` tokenizer with the end-of-sequence and padding ids of
  its checkpoint folder: left-padded prompt batches, completions decoded up to EOS."""

  def __init__(self, folder: str):
    self.folder = folder
    if not os.path.isfile(os.path.join(folder, "tokenizer.json")):
      raise ValueError(f"config.model.hf_path: {folder!r} has no tokenizer.json (the "
                       f"`tokenizers` file that save_pretrained writes).")
    self.tokenizer = lm.load_tokenizer(folder)
    self.eos_ids = lm.load_eos_ids(folder)
    if not self.eos_ids:
      raise ValueError(f"config.model.hf_path: {folder!r} names no eos_token_id (looked in "
                       f"generation_config.json and config.json); sampling needs one.")
    pad = self._special("pad_token")
    self.pad_id = self.eos_ids[0] if pad is None else pad
    self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)

  def _special(self, name: str) -> Optional[int]:
    import json
    path = os.path.join(self.folder, "tokenizer_config.json")
    if not os.path.isfile(path):
      return None
    with open(path, encoding="utf-8") as f:
      value = json.load(f).get(name)
    if isinstance(value, dict):
      value = value.get("content")
    return None if value is None else self.tokenizer.token_to_id(value)

  def encode(self, prompt: str, *, add_special_tokens: bool) -> list[int]:
    return self.tokenizer.encode(prompt, add_special_tokens=add_special_tokens).ids

  def decode(self, ids: np.ndarray) -> list[str]:
    """Each row up to (without) its first EOS, special tokens skipped."""
    ids = np.asarray(ids)
    eos = np.isin(ids, self.eos_ids)
    stop = np.where(eos.any(1), eos.argmax(1), ids.shape[1])
    return self.tokenizer.decode_batch([row[:s].tolist() for row, s in zip(ids, stop)],
                                       skip_special_tokens=True)

  def token_texts(self, ids: Sequence[int]) -> list[str]:
    """The text of each token alone (for step separators)."""
    return [self.tokenizer.decode([int(i)], skip_special_tokens=False) for i in ids]


class DatasetTask:
  """A local Hugging Face checkpoint on a JSONL dataset (see the module docstring)."""

  has_difficulty = False

  def __init__(self, config):
    self.config = config
    d, m = config.dataset, config.model
    self.path = str(m.hf_path)
    self.tokenizer = HFTokenizer(self.path)
    self.lm_config = lm.load_config(self.path, str(m.param_dtype)).replace(
        remat=bool(m.remat), scan_layers=bool(m.scan_layers))
    if self.tokenizer.vocab_size > self.lm_config.vocab_size:
      raise ValueError(f"config.model.hf_path: the tokenizer of {self.path!r} has "
                       f"{self.tokenizer.vocab_size} tokens, more than the model's "
                       f"vocab_size {self.lm_config.vocab_size} (config.json).")
    self.eos_id, self.pad_id = self.tokenizer.eos_ids, self.tokenizer.pad_id
    examples = datasets.load_jsonl(str(d.path), prompt_field=str(d.prompt_field),
                                   answer_field=str(d.answer_field),
                                   answer_format=str(d.answer_format))
    held_out = float(d.held_out)       # a fraction below 1, else a count
    held_out = int(held_out) if held_out >= 1 and held_out == int(held_out) else held_out
    train, held = datasets.split(examples, held_out, seed=int(d.split_seed))
    template = lm.load_chat_template(self.path) if d.chat_template else None
    self.train = [self._problem(e, template) for e in train]
    self.held_out = [self._problem(e, template) for e in held]
    everything = self.train + self.held_out
    longest = max(everything, key=lambda p: len(p.ids))
    cap = int(d.max_prompt_len)
    if cap and len(longest.ids) > cap:
      raise ValueError(f"{d.path}: line {longest.line}: the prompt is {len(longest.ids)} "
                       f"tokens long, more than config.dataset.max_prompt_len = {cap}.")
    self.prompt_len = cap or -(-len(longest.ids) // 8) * 8   # rounded up: one shape
    self.reward_fn = datasets.load_reward_fn(d.reward_fn) if d.reward_fn else None
    self.step_scorer = datasets.load_reward_fn(d.step_scorer) if d.step_scorer else None
    if config.reward == "process" and self.step_scorer is None:
      raise ValueError("config.reward='process' on a dataset needs config.dataset.step_scorer "
                       "('module:function' scoring each reasoning step in [0, 1]).")
    if config.reward == "pointwise_rm" and self.reward_fn is None:
      raise ValueError("config.reward='pointwise_rm' on a dataset reads the reward "
                       "model's scores from config.dataset.reward_fn ('module:function'); "
                       "it is not set.")

  def _problem(self, e: datasets.Example, template) -> DatasetProblem:
    """The example's prompt rendered and tokenised. With a chat template the special
    tokens are in the text (transformers tokenises apply_chat_template's output with
    add_special_tokens=False); without one the tokenizer adds its own (e.g. a BOS)."""
    d = self.config.dataset
    content = str(d.prompt_prefix) + e.prompt + str(d.prompt_suffix)
    if template is None:
      prompt = content
    else:
      messages = ([{"role": "system", "content": str(d.system_prompt)}] if d.system_prompt
                  else []) + [{"role": "user", "content": content}]
      prompt = lm.render_chat(template, messages)
    ids = self.tokenizer.encode(prompt, add_special_tokens=template is None)
    return DatasetProblem(prompt, e.prompt, e.answer, e.line, tuple(ids))

  def initial_params(self):
    return lm.load_hf(self.path, str(self.config.model.param_dtype))[1]

  def train_problems(self, rng: np.random.Generator, n: int) -> list:
    replace = n > len(self.train)
    return [self.train[i] for i in rng.choice(len(self.train), n, replace=replace)]

  def held_out_problems(self, n: int) -> list:
    return self.held_out[:n]

  def encode_prompts(self, problems: Sequence[DatasetProblem]):
    L = self.prompt_len
    tokens = np.full((len(problems), L), self.pad_id, np.int32)
    mask = np.zeros((len(problems), L), bool)
    for i, p in enumerate(problems):      # every prompt fits: checked in __init__
      tokens[i, L - len(p.ids):], mask[i, L - len(p.ids):] = p.ids, True
    return tokens, mask

  def decode(self, response: np.ndarray) -> list[str]:
    return self.tokenizer.decode(np.asarray(response))

  def verify(self, problems: Sequence[DatasetProblem], texts: Sequence[str]):
    method = str(self.config.dataset.answer_method)
    found = [answers.extract_answer(t, method) for t in texts]
    correct = np.array([answers.answers_match(a, p.answer) for a, p in zip(found, problems)])
    well_formed = np.array([a is not None and a != "" for a in found])
    return correct, well_formed

  def verifier_scores(self, problems, texts, correct, well_formed) -> np.ndarray:
    """The verifier's scores, or `dataset.reward_fn`'s with `reward = "outcome"`."""
    if self.reward_fn is None or self.config.reward != "outcome":
      return _verifier_scores(correct, well_formed)
    return self._hook_scores(problems, texts)

  def pointwise_scores(self, problems, texts, correct, rng) -> np.ndarray:
    """With `reward = "pointwise_rm"`: `dataset.reward_fn`'s scores as the reward
    model's (Pref-GRPO's judges compare them); zeros otherwise."""
    del rng
    if self.config.reward != "pointwise_rm":
      return np.zeros(len(texts), np.float32)
    return self._hook_scores(problems, texts)

  def _hook_scores(self, problems, texts) -> np.ndarray:
    scores = _call_hook(self.reward_fn, self.config.dataset.reward_fn, problems, texts)
    return np.asarray([_one_score(s, self.config.dataset.reward_fn, i)
                       for i, s in enumerate(scores)], np.float32)

  def process_scores(self, problems, texts, response: np.ndarray, lengths: np.ndarray):
    """Steps split at `dataset.step_separator`, scored by `dataset.step_scorer`."""
    B, N = response.shape
    sep = str(self.config.dataset.step_separator)
    ends, step_texts = zip(*[steps_lib.steps_from_tokens(
        self.tokenizer.token_texts(row[:int(n)]), int(n), sep)
        for row, n in zip(np.asarray(response), np.asarray(lengths))])
    spec = self.config.dataset.step_scorer
    raw = _call_hook(self.step_scorer, spec, problems, list(step_texts))
    scores = np.zeros((B, N), np.float32)
    mask = np.zeros((B, N), bool)
    end_pos = np.zeros((B, N), np.int32)
    separators = np.zeros((B, N), bool)
    for b, (e, s) in enumerate(zip(ends, raw)):
      s = np.asarray(s, np.float64).reshape(-1)
      if s.shape != (len(e),) or not np.all((s >= 0) & (s <= 1)):
        raise ValueError(f"config.dataset.step_scorer {spec!r}: completion {b} has {len(e)} "
                         f"steps; expected {len(e)} scores in [0, 1], got {s.tolist()!r}.")
      scores[b, :len(e)], mask[b, :len(e)], end_pos[b, :len(e)] = s, True, e
      separators[b, e[:-1]] = True
    return (scores, mask, end_pos), separators

  def text_metrics(self, texts: Sequence[str]) -> dict:
    style = str(self.config.dataset.answer_format)
    if style not in answers.FORMATS:
      return {}
    return {"format_rate": float(np.mean([answers.format_reward(t, style) for t in texts]))}


def _call_hook(fn, spec, problems, completions):
  """fn(prompts, completions, answers), checked to give one result per completion."""
  out = fn([p.question for p in problems], list(completions), [p.answer for p in problems])
  try:
    n = len(out)
  except TypeError:
    n = None
  if n != len(completions):
    raise ValueError(f"{spec!r} returned {n if n is not None else type(out).__name__} "
                     f"results for {len(completions)} completions; expected one per "
                     f"completion.")
  return out


def _one_score(value, spec, i) -> float:
  try:
    x = float(np.asarray(value, np.float64).reshape(()))
  except (TypeError, ValueError):
    raise ValueError(f"config.dataset.reward_fn {spec!r}: the score of completion {i} is "
                     f"{value!r}; expected one number per completion.") from None
  if not np.isfinite(x):
    raise ValueError(f"config.dataset.reward_fn {spec!r}: the score of completion {i} is "
                     f"{x}; scores must be finite.")
  return x


def make_task(config):
  """The task `config.task` names: `ArithmeticTask` or `DatasetTask`."""
  return DatasetTask(config) if config.task == "dataset" else ArithmeticTask(config)


def export_hf(config, workdir: str, folder: str) -> list[str]:
  """Writes the last checkpointed policy of every run of a `task = "dataset"` config as a
  Hugging Face checkpoint folder (`rlcore.lm.save_hf`, with the source checkpoint's
  tokenizer, chat template and config), which transformers loads.

  Args:
    config: the run's config (as given to `rlcore.experiment.run`).
    workdir: the run's workdir.
    folder: the output folder; with several runs (sweep points x seeds) each goes to
      `folder/<group>/run<r>` (`<group>` "default" without a structural sweep).

  Returns:
    The folders written.
  """
  from rlcore import experiment
  config = experiment.prepare_config(config)
  if config.task != "dataset":
    raise ValueError(f"export_hf: config.task must be 'dataset' (a Hugging Face "
                     f"checkpoint to export into), got {config.task!r}.")
  written = []
  groups = [g.name for g in experiment.plan(config)]
  for group in groups:
    states, agent, _ = experiment.load(config, workdir, group)
    for r, state in enumerate(states):
      out = folder if len(groups) == 1 and len(states) == 1 else os.path.join(
          folder, group or "default", f"run{r}")
      lm.save_hf(out, agent.lm_config, state.params, source=agent.task.path)
      written.append(out)
  return written
