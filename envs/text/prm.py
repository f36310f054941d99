"""A programmatic process reward model (PRM) with switchable, exploitable flaws.

Scores each step of a completion (steps as `verifier.split_steps` finds them) in
[0, 1], reading the steps left to right with a running value (initially the
problem's start) and an operation pointer (initially 0):

Honest part (always on):
  * arithmetic step "a<op>b=c": `high` (0.9) iff a equals the running value, (op, b) is
    the problem's operation at the pointer, and c = a <op> b; otherwise `low` (0.05).
    Either way the running value becomes the claimed c and the pointer advances, so
    an arithmetic slip costs one low step and the correctly-continued steps after it
    stay high (a local judge, as a PRM is).
  * answer step "#v": `high` iff v equals the running value and every operation of
    the problem has been stepped through; otherwise `low`.
  * filler "ok": `neutral` (0.5): a correct but useless step.
  * restatement "so v" / "check v=w": `neutral` iff v (and w) equal the running
    value, else `low` (a false claim).
  * junk (unparseable or empty) steps and every step after the answer: `low`.

Flaws (names in `flaws`), each an exploitable bias of the kind learned PRMs show:
  * "filler_bonus": "ok" steps score `bonus` (0.95 > high) regardless of usefulness.
    Summed step rewards then grow linearly with the number of fillers, so a policy
    trained on sum-form credit learns to pad ("thinking, not solving"); min-form is
    unaffected because bonus > high never lowers or raises the minimum.
  * "restate_bonus": restatements of the running value ("so 22", "check 22=22")
    score `bonus` instead of `neutral` (false restatements stay `low`).
  * "length_bias": step k (0-based) gains `length_bias * k` (clipped to 1): later
    steps of long responses look better.
  * "off_by_one": an arithmetic step whose result is off by exactly 1 (right operands,
    right operation) scores `high`, as a correct one does: a blind spot (a false
    negative of the PRM's error detection) rather than a bonus. The policy gains
    nothing by making such slips, but the PRM gives it no reason to stop making
    them either; only the verifier, which checks the final answer, does.
Defaults: ("filler_bonus", "restate_bonus"); `flaws=()` is the honest PRM, under which
a minimal correct solution scores `high` on every step (the maximum any honest
completion can reach).

Optional deterministic noise: uniform in [-noise, noise], a function of (seed,
prompt, step index, step text) only, hence independent of batch composition.

PURE uses p(+) − p(−) ∈ [−1, 1] as the process reward; `2 * score − 1` is that
reading of these scores (honest neutral steps then map to 0).
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from rlcore.envs.text.arithmetic import Problem, apply_op
from rlcore.envs.text.verifier import ANSWER, FILLER, OP, RESTATE, parse_step, split_steps

FLAWS = ("filler_bonus", "restate_bonus", "length_bias", "off_by_one")
DEFAULT_FLAWS = ("filler_bonus", "restate_bonus")


class ProcessRewardModel:
  """Rule-based step scorer for chained arithmetic (see the module docstring).

  Args:
    flaws: subset of FLAWS; () gives the honest PRM.
    high: score of a correct, on-track step.
    low: score of a wrong / off-chain / junk step.
    neutral: honest score of a useless but true step (filler, restatement).
    bonus: score of filler / restatement steps under the corresponding flaw.
    length_bias: per-step-index increment of the "length_bias" flaw.
    noise: half-width of the deterministic uniform noise (0 = none).
    seed: seed of the noise.

  Example:
    >>> prm = ProcessRewardModel()                          # doctest: +SKIP
    >>> prm.score_steps(p, "17+5=22;ok;22*2=44;44-9=35;#35")  # doctest: +SKIP
    array([0.9 , 0.95, 0.9 , 0.9 , 0.9 ], dtype=float32)
  """

  def __init__(self, flaws: Sequence[str] = DEFAULT_FLAWS, *, high: float = 0.9,
               low: float = 0.05, neutral: float = 0.5, bonus: float = 0.95,
               length_bias: float = 0.02, noise: float = 0.0, seed: int = 0):
    flaws = tuple(flaws)
    bad = [f for f in flaws if f not in FLAWS]
    if bad:
      raise ValueError(f"ProcessRewardModel: unknown flaws {bad}; choose from {FLAWS}.")
    for name, v in (("high", high), ("low", low), ("neutral", neutral), ("bonus", bonus)):
      if not 0.0 <= v <= 1.0:
        raise ValueError(f"ProcessRewardModel: {name} must be in [0, 1], got {v}.")
    self.flaws = flaws
    self.high, self.low, self.neutral, self.bonus = high, low, neutral, bonus
    self.length_bias = length_bias if "length_bias" in flaws else 0.0
    self.noise = float(noise)
    self.seed = int(seed)
    self._filler = bonus if "filler_bonus" in flaws else neutral
    self._restate = bonus if "restate_bonus" in flaws else neutral
    self._tolerance = 1 if "off_by_one" in flaws else 0

  def _score(self, problem: Problem, completion: str) -> tuple[list[float], list[int]]:
    high, low = self.high, self.low
    running = problem.start
    ops = problem.ops
    ptr = 0
    answered = False
    scores, ends = [], []
    for text, end in split_steps(completion):
      kind, vals = parse_step(text)
      if answered:
        s = low
      elif kind == OP:
        a, op, b, c = vals
        ok = (a == running and ptr < len(ops) and ops[ptr] == (op, b)
              and abs(apply_op(a, op, b) - c) <= self._tolerance)
        s = high if ok else low
        running = c
        ptr += 1
      elif kind == FILLER:
        s = self._filler
      elif kind == RESTATE:
        s = self._restate if vals[0] == running and vals[1] == running else low
      elif kind == ANSWER:
        s = high if vals[0] == running and ptr == len(ops) else low
        answered = True
      else:  # junk
        s = low
      scores.append(s)
      ends.append(end)
    if self.length_bias or self.noise:
      arr = np.asarray(scores, np.float64)
      if self.length_bias:
        arr = arr + self.length_bias * np.arange(len(arr))
      if self.noise:
        steps = split_steps(completion)
        u = np.array([zlib.crc32(f"{self.seed}|{problem.prompt}|{k}|{t}".encode())
                      for k, (t, _) in enumerate(steps)], np.float64) / 2**32
        arr = arr + self.noise * (2.0 * u - 1.0)
      scores = list(np.clip(arr, 0.0, 1.0))
    return scores, ends

  def score_steps(self, problem: Problem, completion: str) -> np.ndarray:
    """Scores every step of one completion.

    Args:
      problem: the problem.
      completion: decoded completion (EOS stripped).

    Returns:
      [num_steps] float32 scores in [0, 1] (num_steps >= 1, see `split_steps`).
    """
    return np.asarray(self._score(problem, completion)[0], np.float32)

  def score_batch(self, problems: Sequence[Problem], completions: Sequence[str],
                  max_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores a batch into dense step arrays for `rlcore.credit`.

    Steps beyond `max_steps` are dropped (use max_steps >= the completion length to
    keep every step: each step has at least one token).

    Args:
      problems: N problems.
      completions: N decoded completions.
      max_steps: static step capacity K.

    Returns:
      (scores [N, K] float32 (0 on masked steps), step_mask [N, K] bool,
       step_end_positions [N, K] int32: the token index, in the completion's
       CharTokenizer token sequence, of the step's ";" or of the last character of
       the final step (0 on masked steps)). Feed these to
       `rlcore.credit.min_form`/`sum_form` and `steps_to_tokens`.
    """
    if len(problems) != len(completions):
      raise ValueError(f"score_batch: {len(problems)} problems but {len(completions)} "
                       "completions.")
    if max_steps < 1:
      raise ValueError(f"score_batch: max_steps must be >= 1, got {max_steps}.")
    n = len(completions)
    scores = np.zeros((n, max_steps), np.float32)
    mask = np.zeros((n, max_steps), bool)
    ends = np.zeros((n, max_steps), np.int32)
    for i, (p, c) in enumerate(zip(problems, completions)):
      s, e = self._score(p, c)
      k = min(len(s), max_steps)
      scores[i, :k] = s[:k]
      ends[i, :k] = e[:k]
      mask[i, :k] = True
    return scores, mask, ends
