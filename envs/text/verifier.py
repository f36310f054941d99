"""Outcome verifier and step parser for the chained-arithmetic task.

Grammar of a well-formed completion (EOS not part of the string):

    completion := (step ";")* "#" int
    step       := int op uint "=" int        arithmetic step, e.g. "22*2=44"
                | "ok"                        filler
                | "so " int                   restatement, e.g. "so 22"
                | "check " int "=" int        restatement, e.g. "check 22=22"
    int        := "-"? digits

Anything after the answer (even a trailing ";" or space) makes it not well formed.
"""

from __future__ import annotations

import re
from typing import Sequence, Union

import numpy as np

from rlcore.envs.text.arithmetic import FILLER_PREFIXES, Problem

_INT = r"-?\d+"
_STEP_BODY = rf"{_INT}[-+*]\d+={_INT}|ok|so {_INT}|check {_INT}={_INT}"
_WELL_FORMED = re.compile(rf"(?:(?:{_STEP_BODY});)*#({_INT})", re.ASCII)
_STEP = re.compile(
    r"(?P<a>-?\d+)(?P<op>[-+*])(?P<b>\d+)=(?P<c>-?\d+)"
    r"|(?P<ok>ok)"
    r"|so (?P<so>-?\d+)"
    r"|check (?P<x>-?\d+)=(?P<y>-?\d+)"
    r"|#(?P<ans>-?\d+)", re.ASCII)

# Step kinds returned by `parse_step`.
OP, FILLER, RESTATE, ANSWER, JUNK = "op", "filler", "restate", "answer", "junk"


def parse_step(text: str):
  """Classifies one step (text between separators).

  Args:
    text: the step text, without the ";".

  Returns:
    (kind, values): ("op", (a, op, b, c)), ("filler", ()), ("restate", (x, y)) with
    y = x for "so x", ("answer", (value,)), or ("junk", ()).
  """
  m = _STEP.fullmatch(text)
  if m is None:
    return JUNK, ()
  g = m.groupdict()
  if g["op"] is not None:
    return OP, (int(g["a"]), g["op"], int(g["b"]), int(g["c"]))
  if g["ok"] is not None:
    return FILLER, ()
  if g["so"] is not None:
    v = int(g["so"])
    return RESTATE, (v, v)
  if g["x"] is not None:
    return RESTATE, (int(g["x"]), int(g["y"]))
  return ANSWER, (int(g["ans"]),)


def count_filler_steps(completion: str) -> int:
  """Steps of `completion` that start like a filler ("ok", "so ...", "check ...").

  Counts by prefix (`FILLER_PREFIXES`), so a malformed filler such as "so" or "okk"
  counts too: the measure of padding the GRPO experiments log as `filler_steps`.

  Args:
    completion: decoded completion string.

  Returns:
    The number of ";"-separated steps starting with a filler word.
  """
  return sum(1 for step in completion.split(";") if step.startswith(FILLER_PREFIXES))


def split_steps(completion: str) -> list[tuple[str, int]]:
  """Splits a completion into steps with the token index where each step ends.

  Every ";" ends a step (an empty step between two ";" is a step); the text after the
  last ";" is the final step if non-empty, ending at its last character. An empty
  completion is one empty step ending at index 0 (the EOS position when the policy
  emitted EOS immediately), so every completion has at least one step. Since the
  tokenizer is character-level, indices are token indices in `encode(completion)`.

  Args:
    completion: decoded completion string.

  Returns:
    list of (step_text, end_index); end_index is the index of the ";" or of the last
    character of the final step.
  """
  if not completion:
    return [("", 0)]
  out = []
  start = 0
  while True:
    j = completion.find(";", start)
    if j < 0:
      break
    out.append((completion[start:j], j))
    start = j + 1
  if start < len(completion):
    out.append((completion[start:], len(completion) - 1))
  return out


def _answer_of(p: Union[Problem, int]) -> int:
  return p if isinstance(p, (int, np.integer)) else p.answer


def verify(problem: Union[Problem, int], completion: str) -> tuple[bool, bool]:
  """Checks a completion's format and final answer.

  Args:
    problem: the `Problem` (or its integer answer).
    completion: decoded completion (EOS stripped, as `CharTokenizer.decode` gives).

  Returns:
    (correct, well_formed): well_formed iff the completion matches the grammar above
    (steps, then "#<int>", nothing after); correct iff well formed and the answer
    equals the problem's answer.

  Example:
    >>> p = generate(0, 1)[0]   # doctest: +SKIP
    >>> verify(p, solution(p))  # doctest: +SKIP
    (True, True)
  """
  m = _WELL_FORMED.fullmatch(completion)
  if m is None:
    return False, False
  return int(m.group(1)) == _answer_of(problem), True


def verify_batch(problems: Sequence[Union[Problem, int]],
                 completions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
  """`verify` over a batch.

  Args:
    problems: N problems (or integer answers).
    completions: N decoded completions.

  Returns:
    (correct [N] bool, well_formed [N] bool).
  """
  if len(problems) != len(completions):
    raise ValueError(f"verify_batch: {len(problems)} problems but {len(completions)} "
                     "completions.")
  n = len(completions)
  correct = np.zeros(n, bool)
  well_formed = np.zeros(n, bool)
  match = _WELL_FORMED.fullmatch
  for i, (p, c) in enumerate(zip(problems, completions)):
    m = match(c)
    if m is not None:
      well_formed[i] = True
      correct[i] = int(m.group(1)) == _answer_of(p)
  return correct, well_formed
