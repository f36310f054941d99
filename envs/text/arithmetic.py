"""Chained arithmetic problems with step-by-step solutions, generated from a seed.

Prompt format: a start number followed by a chain of `<op><operand>` terms and "=",
e.g. "17+5*2-9=". The chain is evaluated strictly LEFT TO RIGHT (no operator
precedence): "17+5*2-9" means ((17 + 5) * 2) - 9 = 35.

Numbers are small by construction: the start is in `start_range` (default 1..20),
operands are 1..9 (2..9 for "*"), and every intermediate value stays in
[0, max_value] (default 99), so each step is at most "dd+d=dd".

Difficulty sets the number of operations: 0 easy = 1-2, 1 medium = 3-4, 2 hard = 5-6.

Solution format (the completion a policy must produce, EOS not included here):

    17+5=22;22*2=44;44-9=35;#35

steps "a<op>b=c" separated by ";", then "#" and the answer. `solution(..., verbosity=v)`
inserts v filler steps ("ok", "so 22", "check 22=22", restating the running value) at
random gaps after real steps; `slip=True` makes one step's result wrong by 1-2 and
propagates it (the later steps are correct arithmetic on the wrong value); `skip=k`
leaves out the last k steps and writes the answer straight after the last step kept,
a shortcut that is shorter but asks the policy to do k operations without writing them.

Held-out split: a prompt belongs to "held_out" iff crc32(prompt) falls in the first
`held_out_fraction` of the hash range, otherwise to "train"; the split is a function
of the prompt alone, so the two splits can never share a problem.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Optional, Sequence, Union

import numpy as np

from rlcore.envs.text.tokenizer import ANSWER_CHAR, STEP_CHAR

DIFFICULTY_OPS = {0: (1, 2), 1: (3, 4), 2: (5, 6)}
MAX_OPS = 6
MAX_VERBOSITY = 8  # TASK_MAX_COMPLETION_LEN (96) fits <= 3; each more needs 12 tokens
DEFAULT_MAX_VALUE = 99
DEFAULT_START_RANGE = (1, 20)
HELD_OUT_FRACTION = 0.1
FILLER_TEMPLATES = ("ok", "so {v}", "check {v}={v}")
# The first word of each filler template: a step starting with one is counted as filler.
FILLER_PREFIXES = tuple(t.split(" ")[0] for t in FILLER_TEMPLATES)
_CHUNK = 256  # candidates drawn per round; fixed so generate(s, n)[:m] == generate(s, m)

Seed = Union[int, np.random.Generator, None]


@dataclasses.dataclass(frozen=True)
class Problem:
  """One chained-arithmetic problem.

  Attributes:
    prompt: e.g. "17+5*2-9=" (evaluated left to right).
    answer: the value of the chain.
    difficulty: 0 easy, 1 medium, 2 hard.
    num_ops: number of operations.
    steps: the correct intermediate steps, e.g. ["17+5=22", "22*2=44", "44-9=35"].
    start: the start number.
    ops: the operations as ((op, operand), ...), e.g. (("+", 5), ("*", 2), ("-", 9)).
  """
  prompt: str
  answer: int
  difficulty: int
  num_ops: int
  steps: list
  start: int
  ops: tuple


def apply_op(a: int, op: str, b: int) -> int:
  """One operation of the chain.

  Args:
    a: left operand (the running value).
    op: "+", "-" or "*".
    b: right operand.

  Returns:
    a <op> b.
  """
  if op == "+":
    return a + b
  if op == "-":
    return a - b
  if op == "*":
    return a * b
  raise ValueError(f"unknown op {op!r}")


def _as_rng(seed: Seed) -> np.random.Generator:
  if isinstance(seed, np.random.Generator):
    return seed
  return np.random.default_rng(seed)


def in_held_out(prompt: str, held_out_fraction: float = HELD_OUT_FRACTION) -> bool:
  """Whether `prompt` belongs to the held-out split (a pure function of the prompt).

  Args:
    prompt: problem prompt.
    held_out_fraction: fraction of the crc32 hash range that is held out.

  Returns:
    True for held-out prompts.
  """
  return zlib.crc32(prompt.encode()) < held_out_fraction * 2**32


def _pick(u: float, n: int) -> int:
  return min(int(u * n), n - 1)


def _build(row: np.ndarray, difficulties: Sequence[int], max_value: int,
           start_range: tuple[int, int]) -> Problem:
  d = difficulties[_pick(row[0], len(difficulties))]
  lo, hi = DIFFICULTY_OPS[d]
  num_ops = lo + _pick(row[1], hi - lo + 1)
  v = start_range[0] + _pick(row[2], start_range[1] - start_range[0] + 1)
  start = v
  ops, steps = [], []
  prompt = [str(v)]
  for i in range(num_ops):
    feasible = []
    if v + 1 <= max_value:
      feasible.append(("+", 1, min(9, max_value - v)))
    if v >= 1:
      feasible.append(("-", 1, min(9, v)))
    if v >= 1 and 2 * v <= max_value:
      feasible.append(("*", 2, min(9, max_value // v)))
    op, blo, bhi = feasible[_pick(row[3 + 2 * i], len(feasible))]
    b = blo + _pick(row[4 + 2 * i], bhi - blo + 1)
    c = apply_op(v, op, b)
    steps.append(f"{v}{op}{b}={c}")
    ops.append((op, b))
    prompt.append(f"{op}{b}")
    v = c
  prompt.append("=")
  return Problem(prompt="".join(prompt), answer=v, difficulty=d, num_ops=num_ops,
                 steps=steps, start=start, ops=tuple(ops))


def generate(seed: Seed, n: int, difficulties: Sequence[int] = (0, 1, 2), *,
             split: str = "train", held_out_fraction: float = HELD_OUT_FRACTION,
             unique: bool = False, max_value: int = DEFAULT_MAX_VALUE,
             start_range: tuple[int, int] = DEFAULT_START_RANGE) -> list[Problem]:
  """Generates `n` problems, deterministically for an int seed.

  Each problem's difficulty is drawn uniformly from `difficulties`. Candidates are
  drawn in fixed-size chunks and kept if they belong to `split`, so
  `generate(s, m) == generate(s, n)[:m]` for m <= n.

  Args:
    seed: int seed, or a numpy Generator (advanced in place: successive calls give
      fresh problems, e.g. one batch per RL step).
    n: number of problems.
    difficulties: difficulty levels to draw from (subset of 0, 1, 2).
    split: "train" or "held_out" (disjoint by a hash of the prompt).
    held_out_fraction: fraction of the prompt-hash range that is held out.
    unique: drop repeated prompts (easy problems repeat often otherwise).
    max_value: every intermediate value stays in [0, max_value].
    start_range: inclusive range of the start number.

  Returns:
    list of `Problem`.

  Raises:
    ValueError: for a bad split/difficulty, or when `unique` cannot find n problems.

  Example:
    >>> generate(0, 1, (2,))[0].prompt   # doctest: +SKIP
    '12+8-3*4+9-7='
  """
  if split not in ("train", "held_out"):
    raise ValueError(f"generate: split must be 'train' or 'held_out', got {split!r}.")
  difficulties = tuple(int(d) for d in difficulties)
  if not difficulties or any(d not in DIFFICULTY_OPS for d in difficulties):
    raise ValueError(f"generate: difficulties must be a non-empty subset of (0, 1, 2), "
                     f"got {difficulties}.")
  want_held = split == "held_out"
  rng = _as_rng(seed)
  out: list[Problem] = []
  seen: set[str] = set()
  rounds = 0
  while len(out) < n:
    rounds += 1
    if rounds > 10_000 + 100 * n:
      raise ValueError(f"generate: could not find {n} problems (unique={unique}, "
                       f"split={split!r}, difficulties={difficulties}).")
    for row in rng.random((_CHUNK, 3 + 2 * MAX_OPS)):
      p = _build(row, difficulties, max_value, start_range)
      if in_held_out(p.prompt, held_out_fraction) != want_held:
        continue
      if unique:
        if p.prompt in seen:
          continue
        seen.add(p.prompt)
      out.append(p)
      if len(out) == n:
        break
  return out


def _slipped_values(problem: Problem, rng: np.random.Generator) -> Optional[list[int]]:
  """Claimed step results with one wrong step (by +-1 or +-2), propagated."""
  true = [int(s.rsplit("=", 1)[1]) for s in problem.steps]
  bound = max(DEFAULT_MAX_VALUE, max(true + [problem.start]))
  for j in rng.permutation(problem.num_ops):
    for delta in rng.permutation(np.array([-2, -1, 1, 2])):
      vals = true[:j] + [true[j] + int(delta)]
      for op, b in problem.ops[j + 1:]:
        vals.append(apply_op(vals[-1], op, b))
      if all(0 <= x <= bound for x in vals[j:]):
        return vals
  return None


def solution(problem: Problem, verbosity: int = 0, rng: Seed = None, *,
             slip: bool = False, skip: int = 0) -> str:
  """A worked solution string (without EOS).

  Args:
    problem: the problem.
    verbosity: number of filler steps inserted (0 = minimal solution). Each filler is
      one of "ok", "so V", "check V=V" with V the running value, placed at a random
      gap after a real step (several may share a gap).
    rng: Generator or int seed for filler placement and slips; None derives a seed
      from the prompt and verbosity (deterministic).
    slip: make one arithmetic step wrong (result off by 1 or 2) and propagate the
      error to the answer (falls back to a correct solution in the rare case where no
      slip keeps values in range).
    skip: leave out the last `skip` steps (0..num_ops) and the fillers after them; the
      answer is still the chain's value (the slipped value with `slip`), so the policy
      must do those operations unwritten. `skip = num_ops` answers at once.

  Returns:
    e.g. "17+5=22;so 22;22*2=44;44-9=35;#35", or with skip=2 "17+5=22;#35".
  """
  if verbosity < 0:
    raise ValueError(f"solution: verbosity must be >= 0, got {verbosity}.")
  if not 0 <= skip <= problem.num_ops:
    raise ValueError(f"solution: skip must be in [0, num_ops={problem.num_ops}], got {skip}.")
  if rng is None:
    rng = zlib.crc32(f"{problem.prompt}|{verbosity}|{slip}".encode())
  rng = _as_rng(rng)
  vals = [int(s.rsplit("=", 1)[1]) for s in problem.steps]
  if slip:
    vals = _slipped_values(problem, rng) or vals
  steps = []
  prev = problem.start
  for (op, b), c in zip(problem.ops, vals):
    steps.append(f"{prev}{op}{b}={c}")
    prev = c
  gaps = [[] for _ in range(problem.num_ops)]  # fillers after real step i
  if verbosity:
    where = rng.integers(0, problem.num_ops, size=verbosity)
    kinds = rng.integers(0, len(FILLER_TEMPLATES), size=verbosity)
    for g, k in zip(where, kinds):
      gaps[g].append(FILLER_TEMPLATES[k].format(v=vals[g]))
  keep = problem.num_ops - skip
  parts = []
  for s, extra in zip(steps[:keep], gaps[:keep]):
    parts.append(s)
    parts.extend(extra)
  parts.append(f"{ANSWER_CHAR}{prev}")
  return STEP_CHAR.join(parts)


def sft_corpus(seed: Seed, n: int, verbosity_probs: Sequence[float] = (0.4, 0.3, 0.2, 0.1),
               slip_rate: Union[float, Sequence[float]] = 0.1,
               difficulties: Sequence[int] = (0, 1, 2), *,
               split: str = "train", skip_rate: float = 0.0, max_skip: int = 2,
               return_problems: bool = False):
  """Supervised warm-start data: (prompt, completion) pairs with mixed verbosity.

  Verbosity v (0..len(verbosity_probs)-1) is drawn per example with
  `verbosity_probs`, so a warm-started policy has a spread of lengths for LASER to
  act on; a fraction `slip_rate` of the examples contains one propagated arithmetic
  slip (wrong answer), so the policy's pass rate is moderate rather than perfect.
  With one slip rate per verbosity, careful (verbose) solutions can be made to slip
  less often than terse ones, so that length and accuracy are correlated in the
  warm-started policy, as they are for chain-of-thought models. A fraction `skip_rate`
  of the examples leave out their last 1..`max_skip` steps (`solution(skip=k)`): the
  shortcut a length penalty can push a policy towards, at a cost in accuracy that the
  policy's own arithmetic decides (the examples themselves are correct).

  Args:
    seed: int seed or Generator.
    n: number of examples.
    verbosity_probs: probabilities of verbosity 0, 1, ...; at most MAX_VERBOSITY + 1
      entries. `TASK_MAX_COMPLETION_LEN` (96) fits verbosity <= 3; each filler more
      needs up to 12 tokens ("check dd=dd;"), so a hard problem at verbosity v needs
      52 + 12 v tokens with EOS.
    slip_rate: probability that an example contains a slip, or a sequence of them,
      one per verbosity level (same length as `verbosity_probs`).
    difficulties: difficulty levels to draw from.
    split: "train" (default) or "held_out".
    skip_rate: probability that an example leaves out its last steps (0: none; the
      random stream, and so the corpus, is then the same as without the argument).
    max_skip: most steps left out (the count is uniform in 1..min(max_skip, num_ops)).
    return_problems: also return the list of `Problem`.

  Returns:
    list of (prompt, completion) pairs (completions without EOS), or
    (pairs, problems) if `return_problems`.
  """
  probs = np.asarray(verbosity_probs, np.float64)
  if probs.ndim != 1 or len(probs) > MAX_VERBOSITY + 1 or np.any(probs < 0) or probs.sum() <= 0:
    raise ValueError(f"sft_corpus: verbosity_probs must be 1..{MAX_VERBOSITY + 1} "
                     f"non-negative weights, got {verbosity_probs}.")
  rates = np.broadcast_to(np.asarray(slip_rate, np.float64), probs.shape) \
      if np.ndim(slip_rate) == 0 or len(slip_rate) == len(probs) else None
  if rates is None or np.any(rates < 0) or np.any(rates > 1):
    raise ValueError(f"sft_corpus: slip_rate must be in [0, 1], or one such rate per "
                     f"verbosity level ({len(probs)}), got {slip_rate}.")
  if not 0.0 <= skip_rate <= 1.0 or max_skip < 1:
    raise ValueError(f"sft_corpus: skip_rate must be in [0, 1] and max_skip >= 1, got "
                     f"skip_rate={skip_rate}, max_skip={max_skip}.")
  rng = _as_rng(seed)
  problems = generate(rng, n, difficulties, split=split)
  verb = rng.choice(len(probs), size=n, p=probs / probs.sum())
  slips = rng.random(n) < rates[verb]
  skips = np.zeros(n, np.int64)
  if skip_rate > 0:  # drawn only when used, so corpora without skips are unchanged
    most = np.minimum(max_skip, [p.num_ops for p in problems])
    skips = np.where(rng.random(n) < skip_rate,
                     1 + np.floor(rng.random(n) * most).astype(np.int64), 0)
  pairs = [(p.prompt, solution(p, int(v), rng, slip=bool(s), skip=int(k)))
           for p, v, s, k in zip(problems, verb, slips, skips)]
  return (pairs, problems) if return_problems else pairs
