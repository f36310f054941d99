"""Append-only JSONL metric logs (and optional TensorBoard scalars).

One JSON object per line. Each `write`/`write_many` call issues a single `write` of
whole lines followed by flush and fsync, so after a crash the file holds every
record of the calls that returned, plus at most one torn last line, which
`read_jsonl` ignores and `MetricsWriter` removes when it reopens the file.

Values are converted by `rlcore.io.atomic.to_jsonable`: numpy/JAX scalars become
numbers and **non-finite floats become `null`**.

On resume, `truncate_after("env_steps", step_of_checkpoint)` drops the records the
killed run wrote after its last checkpoint, which the resumed run writes again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from typing import Iterable

from rlcore.io.atomic import PathLike, atomic_open, dumps

_log = logging.getLogger(__name__)
_warned_no_tensorboard = False


def _parse_lines(data: bytes, path: str) -> tuple[list[dict], int]:
  """Parses JSONL bytes; returns (records, byte length of the valid prefix).

  A last line that is unterminated and does not parse is a torn write and is
  dropped; a malformed line anywhere else raises ValueError.
  """
  records, pos = [], 0
  lines = data.split(b"\n")
  for i, line in enumerate(lines):
    last = i == len(lines) - 1
    if last and not line:  # The file ended with "\n".
      break
    try:
      text = line.decode("utf-8").strip()
      if text:
        records.append(json.loads(text))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      if last:  # Torn final write.
        break
      raise ValueError(f"{path}: line {i + 1} is not valid JSON: {e}") from e
    pos += len(line) + (0 if last else 1)
  return records, pos


def read_jsonl(path: PathLike) -> list[dict]:
  """Reads a JSONL file, ignoring a torn (partially written) last line.

  Args:
    path: the file.

  Returns:
    The records in file order.

  Raises:
    FileNotFoundError: if the file does not exist.
    ValueError: if a line other than the last is not valid JSON.
  """
  path = os.fspath(path)
  with open(path, "rb") as f:
    data = f.read()
  return _parse_lines(data, path)[0]


def _numeric_scalars(record: dict) -> dict[str, float]:
  out = {}
  for k, v in record.items():
    if isinstance(v, bool) or not isinstance(v, (int, float)):
      continue
    if math.isfinite(v):
      out[k] = float(v)
  return out


class MetricsWriter:
  """Appends metric records to `<workdir>/<filename>` as JSON lines.

  Args:
    workdir: the run directory (created if missing).
    filename: the JSONL file name inside `workdir`.
    tensorboard: also write numeric fields as TensorBoard scalars (to
      `<workdir>/tensorboard`) with `record[step_key]` as the step; if tensorboardX
      is not installed, warn once and continue without it.
    step_key: the record field used as TensorBoard step.
    fsync: fsync after each `write`/`write_many` call.
  """

  def __init__(self, workdir: PathLike, filename: str = "metrics.jsonl",
               tensorboard: bool = False, *, step_key: str = "env_steps",
               fsync: bool = True):
    self.workdir = os.fspath(workdir)
    os.makedirs(self.workdir, exist_ok=True)
    self.path = os.path.join(self.workdir, filename)
    self.step_key = step_key
    self._fsync = fsync
    self._tensorboard = tensorboard and self._tensorboard_available()
    self._tb_writer = None
    self._tb_purge_step: int | None = None
    self._warned_no_step = False
    self._repair_tail()
    self._file = open(self.path, "a", encoding="utf-8")

  @staticmethod
  def _tensorboard_available() -> bool:
    global _warned_no_tensorboard
    try:
      import tensorboardX  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
      return True
    except ImportError:
      if not _warned_no_tensorboard:
        warnings.warn("MetricsWriter: tensorboardX is not installed; writing JSONL only.",
                      stacklevel=3)
        _warned_no_tensorboard = True
      return False

  def _repair_tail(self) -> None:
    """Drops a torn last line (or terminates a complete one) before appending."""
    try:
      with open(self.path, "rb") as f:
        data = f.read()
    except FileNotFoundError:
      return
    if not data or data.endswith(b"\n"):
      return
    _, valid = _parse_lines(data, self.path)
    with open(self.path, "r+b") as f:
      if valid == len(data):  # Complete record missing only its newline.
        f.seek(0, os.SEEK_END)
        f.write(b"\n")
      else:
        _log.warning("MetricsWriter: dropping a torn last line of %s.", self.path)
        f.truncate(valid)
      f.flush()
      os.fsync(f.fileno())

  def write(self, record: dict) -> None:
    """Appends one record (flushed and fsync-ed before returning)."""
    self.write_many([record])

  def write_many(self, records: Iterable[dict]) -> None:
    """Appends several records with one write, flush and fsync."""
    records = list(records)
    if not records:
      return
    text = "".join(dumps(r) + "\n" for r in records)
    self._file.write(text)
    self._file.flush()
    if self._fsync:
      os.fsync(self._file.fileno())
    if self._tensorboard:
      self._write_tensorboard(records)

  def _write_tensorboard(self, records: list[dict]) -> None:
    if self._tb_writer is None:
      from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
      # tensorboardX names event files by the second and opens them with "wb": a
      # unique suffix keeps a writer reopened within the same second (after
      # truncate_after, or a quick resume) from overwriting the earlier file.
      self._tb_writer = SummaryWriter(
          os.path.join(self.workdir, "tensorboard"), purge_step=self._tb_purge_step,
          filename_suffix=f".{os.getpid()}.{time.time_ns()}")
    for record in records:
      step = record.get(self.step_key)
      if step is None:
        if not self._warned_no_step:
          _log.warning("MetricsWriter: record without %r, not sent to TensorBoard.",
                       self.step_key)
          self._warned_no_step = True
        continue
      for k, v in _numeric_scalars(json.loads(dumps(record))).items():
        if k != self.step_key:
          self._tb_writer.add_scalar(k, v, global_step=int(step))
    self._tb_writer.flush()

  def truncate_after(self, key: str, value: float) -> int:
    """Atomically rewrites the file keeping records with `record[key] <= value`.

    Records without `key` (or with `null`) are kept. Use it on resume with the
    checkpoint's step so that records the resumed run produces again are not
    duplicated. TensorBoard events with steps above `value` are purged when
    `key` is the step key.

    Args:
      key: the record field to compare, e.g. "env_steps".
      value: the largest value to keep.

    Returns:
      The number of records dropped.
    """
    self._file.close()
    try:
      try:
        records = read_jsonl(self.path)
      except FileNotFoundError:
        records = []
      kept = [r for r in records if r.get(key) is None or r[key] <= value]
      with atomic_open(self.path, "w") as f:
        f.write("".join(dumps(r) + "\n" for r in kept))
    finally:
      self._file = open(self.path, "a", encoding="utf-8")
    if key == self.step_key:
      self._tb_purge_step = int(math.floor(value)) + 1
      if self._tb_writer is not None:
        self._tb_writer.close()
        self._tb_writer = None
    return len(records) - len(kept)

  def close(self) -> None:
    """Closes the file (and the TensorBoard writer)."""
    self._file.close()
    if self._tb_writer is not None:
      self._tb_writer.close()
      self._tb_writer = None

  def __enter__(self) -> "MetricsWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
