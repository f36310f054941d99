"""A dependency-free progress bar for the host loop between jitted chunks.

On a terminal it redraws one line with a carriage return:

    ppo cartpole:  45%|#########           | 225280/500000 [00:12<00:14, 18.8k steps/s] return=212.4

Elsewhere (logs, CI, notebooks' captured streams) it prints a plain line each time
progress crosses another 10% (and on `close` if the last state was not printed),
so log files stay short.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO


def _format_time(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(round(seconds))
  h, rest = divmod(seconds, 3600)
  m, s = divmod(rest, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _format_number(x: float) -> str:
  for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
    if abs(x) >= threshold:
      return f"{x / threshold:.1f}{suffix}"
  return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def _format_value(v: Any) -> str:
  if hasattr(v, "item") and getattr(v, "size", 1) == 1:
    v = v.item()  # numpy / JAX scalar
  if isinstance(v, bool) or isinstance(v, int):
    return str(v)
  if isinstance(v, float):
    return f"{v:.4g}"
  return str(v)


class ProgressBar:
  """Progress of a long run, updated by the host between chunks.

  Args:
    total: the number of units at completion (e.g. env steps).
    desc: a label printed before the bar.
    stream: where to write (default `sys.stderr` at construction time).
    unit: the unit name for the rate.
    width: bar width in characters (terminal mode).
    min_interval: least seconds between terminal redraws (the final state is
      always drawn).
  """

  def __init__(self, total: int, desc: str = "", stream: TextIO | None = None, *,
               unit: str = "it", width: int = 20, min_interval: float = 0.1):
    if total < 0:
      raise ValueError(f"ProgressBar: total must be >= 0, got {total}.")
    self.total = int(total)
    self.desc = desc
    self.stream = sys.stderr if stream is None else stream
    self.unit = unit
    self.width = width
    self.min_interval = min_interval
    self.n = 0
    self.postfix: dict[str, Any] = {}
    self._start = time.monotonic()
    self._last_draw = -math.inf
    self._last_len = 0
    self._printed_decile = 0
    self._dirty = False
    self._closed = False
    try:
      self._tty = bool(self.stream.isatty())
    except (AttributeError, ValueError):
      self._tty = False

  def _fraction(self) -> float:
    return 1.0 if self.total == 0 else min(self.n / self.total, 1.0)

  def format(self) -> str:
    """The current status line (without carriage return or newline)."""
    elapsed = time.monotonic() - self._start
    rate = self.n / elapsed if elapsed > 0 else math.nan
    eta = (self.total - self.n) / rate if rate > 0 else math.nan
    frac = self._fraction()
    head = f"{self.desc}: " if self.desc else ""
    bar = ""
    if self._tty:
      filled = int(frac * self.width)
      bar = "|" + "#" * filled + " " * (self.width - filled) + "|"
    rate_s = _format_number(rate) if math.isfinite(rate) else "?"
    line = (f"{head}{100 * frac:3.0f}%{bar} {self.n}/{self.total} "
            f"[{_format_time(elapsed)}<{_format_time(max(eta, 0.0))}, {rate_s} {self.unit}/s]")
    if self.postfix:
      line += " " + " ".join(f"{k}={_format_value(v)}" for k, v in self.postfix.items())
    return line

  def update(self, n: int = 1, **postfix: Any) -> None:
    """Advances by `n` units and sets the postfix fields (e.g. `return=212.4`)."""
    self.n += int(n)
    if postfix:
      self.postfix.update(postfix)
    self._dirty = True
    if self._tty:
      now = time.monotonic()
      if now - self._last_draw >= self.min_interval or self.n >= self.total:
        self._draw_tty()
        self._last_draw = now
    else:
      decile = int(10 * self._fraction() + 1e-9)
      if decile > self._printed_decile:
        self._printed_decile = decile
        self._print_line()

  def _draw_tty(self) -> None:
    line = self.format()
    pad = max(self._last_len - len(line), 0)
    self.stream.write("\r" + line + " " * pad)
    self.stream.flush()
    self._last_len = len(line)
    self._dirty = False

  def _print_line(self) -> None:
    self.stream.write(self.format() + "\n")
    self.stream.flush()
    self._dirty = False

  def close(self) -> None:
    """Draws the final state and ends the line."""
    if self._closed:
      return
    self._closed = True
    if self._tty:
      if self._dirty:
        self._draw_tty()
      self.stream.write("\n")
      self.stream.flush()
    elif self._dirty:
      self._print_line()

  def __enter__(self) -> "ProgressBar":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
