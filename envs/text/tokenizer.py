"""A fixed character-level tokenizer for the verifiable text tasks.

One character is one token, so a character index in a completion string is also its
token index in `encode(completion)`; the process reward model relies on this to map
step rewards onto tokens. The vocabulary is tiny and fixed:

    0 <pad>   1 <bos>   2 <eos>   then  0123456789 + - * = ; # (space) c e h k o s

`;` separates steps (`step_id`), `#` marks the final answer (`answer_id`), and the
letters are exactly those of the filler steps ("ok", "so 22", "check 22=22").
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
STEP_CHAR = ";"
ANSWER_CHAR = "#"
FILLER_LETTERS = "cehkos"
CHARS = "0123456789+-*=" + STEP_CHAR + ANSWER_CHAR + " " + FILLER_LETTERS
_NUM_SPECIAL = 3


class CharTokenizer:
  """Character tokenizer over the fixed task alphabet.

  Attributes:
    pad_id: 0, used for padding (skipped by `decode`).
    bos_id: begin-of-sequence id (prepended to prompts by `batch_encode_prompts`).
    eos_id: end-of-sequence id (`decode` stops there).
    step_id: id of the step separator ";".
    answer_id: id of the answer marker "#".
    vocab_size: number of ids (26).

  Example:
    >>> tok = CharTokenizer()
    >>> tok.decode(tok.encode("17+5=22;#22", add_eos=True) + [0, 0])
    '17+5=22;#22'
  """

  def __init__(self):
    self.chars = CHARS
    self.pad_id = PAD_ID
    self.bos_id = BOS_ID
    self.eos_id = EOS_ID
    self._ids = {c: i + _NUM_SPECIAL for i, c in enumerate(CHARS)}
    self.step_id = self._ids[STEP_CHAR]
    self.answer_id = self._ids[ANSWER_CHAR]
    # id -> text; special ids decode to "" (eos is handled separately).
    self._table = np.array([""] * _NUM_SPECIAL + list(CHARS), dtype=object)

  @property
  def vocab_size(self) -> int:
    """Number of token ids, specials included."""
    return _NUM_SPECIAL + len(CHARS)

  def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
    """Encodes a string, one id per character.

    Args:
      text: string over the task alphabet.
      add_bos: prepend `bos_id`.
      add_eos: append `eos_id`.

    Returns:
      list of int ids.

    Raises:
      ValueError: naming the first character outside the vocabulary.
    """
    ids = self._ids
    try:
      out = [ids[c] for c in text]
    except KeyError as e:
      raise ValueError(f"CharTokenizer: unknown character {e.args[0]!r} in {text!r}; "
                       f"the vocabulary is {CHARS!r}.") from None
    if add_bos:
      out.insert(0, BOS_ID)
    if add_eos:
      out.append(EOS_ID)
    return out

  def decode(self, ids: Iterable[int]) -> str:
    """Decodes ids to a string: stops at the first EOS, skips PAD and BOS.

    Args:
      ids: sequence (or 1-D array) of ids.

    Returns:
      the decoded text.

    Raises:
      ValueError: for an id outside [0, vocab_size).
    """
    out = []
    n = self.vocab_size
    for i in ids:
      i = int(i)
      if i == EOS_ID:
        break
      if not 0 <= i < n:
        raise ValueError(f"CharTokenizer.decode: id {i} outside [0, {n}).")
      out.append(self._table[i])
    return "".join(out)

  def batch_decode(self, ids) -> list[str]:
    """Decodes a batch of rows, each as `decode` does (fast path for rollouts).

    Args:
      ids: [B, L] integer array.

    Returns:
      list of B strings.

    Raises:
      ValueError: for an id outside [0, vocab_size).
    """
    arr = np.asarray(ids)
    if arr.ndim != 2:
      raise ValueError(f"CharTokenizer.batch_decode: expected [B, L] ids, got shape {arr.shape}.")
    if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
      raise ValueError(f"CharTokenizer.batch_decode: ids must lie in [0, {self.vocab_size}).")
    is_eos = arr == EOS_ID
    stop = np.where(is_eos.any(axis=1), is_eos.argmax(axis=1), arr.shape[1])
    text = self._table[arr]
    return ["".join(row[:s]) for row, s in zip(text, stop)]

  def batch_encode_prompts(self, texts: Sequence[str], length: int, *,
                           add_bos: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Encodes prompts LEFT-padded to a fixed length (generation starts at the right).

    Args:
      texts: B prompt strings.
      length: static row length L (e.g. `TASK_MAX_PROMPT_LEN`).
      add_bos: prepend `bos_id` to each prompt (counts towards L).

    Returns:
      (tokens [B, L] int32, mask [B, L] bool True on real tokens).

    Raises:
      ValueError: if a prompt does not fit in `length` or has an unknown character.
    """
    return self._pad(texts, length, "batch_encode_prompts", "prompt", left=True,
                     add_bos=add_bos)

  def batch_encode_completions(self, texts: Sequence[str], length: int, *,
                               add_eos: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Encodes completions RIGHT-padded (token t of row b is character t of text b).

    Args:
      texts: B completion strings.
      length: static row length L (e.g. `TASK_MAX_COMPLETION_LEN`).
      add_eos: append `eos_id` (counts towards L).

    Returns:
      (tokens [B, L] int32, mask [B, L] bool True on real tokens, EOS included).

    Raises:
      ValueError: if a completion does not fit or has an unknown character.
    """
    return self._pad(texts, length, "batch_encode_completions", "completion", left=False,
                     add_eos=add_eos)

  def _pad(self, texts, length, fn, what, *, left, **encode_kw):
    """Encodes `texts` into [B, length] int32 + bool mask, padded on the left or right."""
    tokens = np.full((len(texts), length), PAD_ID, np.int32)
    mask = np.zeros((len(texts), length), bool)
    for b, t in enumerate(texts):
      ids = self.encode(t, **encode_kw)
      if len(ids) > length:
        raise ValueError(f"CharTokenizer.{fn}: {what} {t!r} needs {len(ids)} tokens > "
                         f"length {length}.")
      if ids:
        where = slice(length - len(ids), length) if left else slice(0, len(ids))
        tokens[b, where] = ids
        mask[b, where] = True
    return tokens, mask
