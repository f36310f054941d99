"""Prompt / answer datasets from JSONL files, split into train and held-out, and the
hook that loads a user's reward function.

File format: one JSON object per line (blank lines skipped), each with a prompt field
and an answer field (names configurable, default `question` / `answer` as GSM8K's
files). The answer field holds either the bare answer or a whole reference solution;
`answer_format` says how to read it:

* "gsm8k": the number after the solution's last `####` (GSM8K's `#### 1,200`);
* "boxed": the last `\\boxed{...}` (MATH's solutions);
* "plain": the field itself, stripped (any JSON scalar, turned into a string).

Every error names the file, the line and the field. The split into train and
held-out is by a seeded permutation, so it is the same for every run with the same
seed and file, and it never depends on the order the file is read in beyond that.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Callable, NamedTuple, Sequence

import numpy as np

from rlcore.envs.text import answers

ANSWER_FORMATS = ("gsm8k", "boxed", "plain")


class Example(NamedTuple):
  """One problem: its prompt, the answer to check against, and where it came from."""
  prompt: str
  answer: str
  line: int              # 1-based line of the file


def load_jsonl(path: str, *, prompt_field: str = "question", answer_field: str = "answer",
               answer_format: str = "gsm8k") -> list[Example]:
  """Reads a JSONL dataset of prompts and answers.

  Args:
    path: the .jsonl file.
    prompt_field: key of the prompt (a non-empty string).
    answer_field: key of the answer or reference solution.
    answer_format: how to read the answer field, one of `ANSWER_FORMATS`.

  Returns:
    The examples in file order.

  Raises:
    ValueError: naming the file, line and field, for an unreadable line, a missing or
      empty field, or an answer that cannot be extracted; or for an empty file.
  """
  if answer_format not in ANSWER_FORMATS:
    raise ValueError(f"load_jsonl: `answer_format` must be one of "
                     f"{', '.join(ANSWER_FORMATS)}, got {answer_format!r}.")
  if not os.path.isfile(path):
    raise ValueError(f"load_jsonl: no dataset file {path!r}.")
  out = []
  with open(path, encoding="utf-8") as f:
    for number, raw in enumerate(f, 1):
      if not raw.strip():
        continue
      where = f"{path}, line {number}"
      try:
        record = json.loads(raw)
      except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON ({e.msg}).") from None
      if not isinstance(record, dict):
        raise ValueError(f"{where}: a JSON object with fields {prompt_field!r} and "
                         f"{answer_field!r} expected, got {type(record).__name__}.")
      for field in (prompt_field, answer_field):
        if field not in record:
          raise ValueError(f"{where}: missing field {field!r} (fields present: "
                           f"{', '.join(map(repr, record)) or 'none'}).")
      prompt = record[prompt_field]
      if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{where}: field {prompt_field!r} must be a non-empty string, "
                         f"got {prompt!r}.")
      out.append(Example(prompt, _read_answer(record[answer_field], answer_format,
                                              f"{where}, field {answer_field!r}"), number))
  if not out:
    raise ValueError(f"load_jsonl: {path!r} holds no examples.")
  return out


def _read_answer(value, answer_format: str, where: str) -> str:
  if isinstance(value, bool) or not isinstance(value, (str, int, float)):
    raise ValueError(f"{where}: the answer must be a string or a number, got {value!r}.")
  text = str(value)
  if answer_format == "plain":
    found = text.strip()
  else:
    found = answers.extract_answer(text, answer_format)
  if not found:
    kind = {"gsm8k": "a final '#### <number>' line", "boxed": "a closed \\boxed{...}",
            "plain": "a non-empty answer"}[answer_format]
    raise ValueError(f"{where}: cannot parse the answer: {kind} expected for "
                     f"answer_format={answer_format!r}, got {text[-80:]!r}.")
  return found


def split(examples: Sequence[Example], held_out: float | int, seed: int = 0
          ) -> tuple[list[Example], list[Example]]:
  """(train, held-out) by a seeded permutation.

  Args:
    examples: the dataset.
    held_out: a fraction in (0, 1) of the examples, or a count (int >= 1), held out.
    seed: the permutation's seed.

  Returns:
    Two lists, each in file order; together every example once.
  """
  n = len(examples)
  if isinstance(held_out, bool) or not isinstance(held_out, (int, float)):
    raise ValueError(f"split: `held_out` must be a fraction in (0, 1) or a count, got "
                     f"{held_out!r}.")
  if isinstance(held_out, float):
    if not 0.0 < held_out < 1.0:
      raise ValueError(f"split: a fractional `held_out` must lie in (0, 1), got {held_out}.")
    k = max(1, int(round(held_out * n)))
  else:
    k = held_out
  if not 1 <= k < n:
    raise ValueError(f"split: `held_out` = {held_out!r} leaves {n - k} of {n} examples for "
                     f"training; hold out between 1 and {n - 1}.")
  chosen = np.zeros(n, bool)
  chosen[np.random.default_rng(seed).permutation(n)[:k]] = True
  return ([e for e, c in zip(examples, chosen) if not c],
          [e for e, c in zip(examples, chosen) if c])


def load_reward_fn(spec: str) -> Callable:
  """A user's reward function from `"package.module:function"`.

  The function is called as `fn(prompts, completions, answers)` with three equal-length
  lists of strings and returns one score per completion (a sequence of floats), or,
  for process rewards, one sequence of step scores per completion.

  Args:
    spec: "module:function"; the module is imported (it must be on `sys.path`).

  Raises:
    ValueError: for a malformed spec, a module that does not import, or a missing or
      non-callable attribute, naming which.
  """
  module_name, sep, attr = str(spec).partition(":")
  if not sep or not module_name or not attr:
    raise ValueError(f"load_reward_fn: expected 'module:function', got {spec!r}.")
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ValueError(f"load_reward_fn: cannot import module {module_name!r} of {spec!r} "
                     f"({e}).") from None
  fn = getattr(module, attr, None)
  if fn is None or not callable(fn):
    raise ValueError(f"load_reward_fn: {module_name!r} has no callable {attr!r} "
                     f"(from {spec!r}).")
  return fn


def correctness_rewards(completions: Sequence[str], references: Sequence[str],
                        method: str = "auto") -> np.ndarray:
  """1.0 where a completion's extracted answer matches its reference, else 0.0.

  Args:
    completions: N decoded completions.
    references: N reference answers (as `load_jsonl` returns them).
    method: `answers.extract_answer`'s method for the completions.

  Returns:
    [N] float32.
  """
  if len(completions) != len(references):
    raise ValueError(f"correctness_rewards: {len(completions)} completions but "
                     f"{len(references)} references.")
  return np.array([float(answers.answers_match(answers.extract_answer(c, method), r))
                   for c, r in zip(completions, references)], np.float32)
