"""Reasoning steps of free-text completions, for process rewards (PURE's min-form credit).

PURE (Cheng et al. 2025, https://arxiv.org/abs/2504.15275; official code
`CJReinforce/PURE`) splits a response into steps at the tokens whose decoded text
*ends with* the separator `"\\n\\n"` (a tokenizer may merge several newlines, or text
and newlines, into one token); each such token ends a step and carries that step's
process reward, and the last step ends at the response's last token (its EOS when it
has one). `steps_from_tokens` finds those end tokens and the steps' texts (for a step
scorer) from the completion's per-token decoded strings.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

DEFAULT_SEPARATOR = "\n\n"


def steps_from_tokens(token_texts: Sequence[str], length: int | None = None,
                      separator: str = DEFAULT_SEPARATOR) -> tuple[np.ndarray, list[str]]:
  """Step end tokens and step texts of one completion.

  Args:
    token_texts: [T] the decoded text of each completion token (e.g.
      `[tokenizer.decode([t]) for t in ids]`), EOS included if generated.
    length: the completion's length in tokens (<= T; default T); tokens past it
      (padding) are ignored.
    separator: the step separator (non-empty).

  Returns:
    (ends [S] int32, texts [S]): ends are increasing token indices, the last one
    `length - 1`; texts[i] is the concatenated text of the tokens after ends[i-1] up to
    and including ends[i]. A completion of length 0 gives ([0], [""]).
  """
  if not separator:
    raise ValueError("steps_from_tokens: `separator` must be a non-empty string.")
  n = len(token_texts) if length is None else int(length)
  if not 0 <= n <= len(token_texts):
    raise ValueError(f"steps_from_tokens: `length` must lie in [0, {len(token_texts)}], "
                     f"got {length!r}.")
  if n == 0:
    return np.zeros(1, np.int32), [""]
  ends = [i for i in range(n) if token_texts[i].endswith(separator)]
  if not ends or ends[-1] != n - 1:
    ends.append(n - 1)
  starts = [0] + [e + 1 for e in ends[:-1]]
  texts = ["".join(token_texts[s:e + 1]) for s, e in zip(starts, ends)]
  return np.asarray(ends, np.int32), texts
