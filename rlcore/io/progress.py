"""The runner's progress bar: tqdm, updated between chunks."""

from __future__ import annotations

import sys


def progress_bar(total: int, desc: str = "", *, initial: int = 0, disable: bool = False,
                 unit: str = "update"):
  """A `tqdm` bar over `total` units, starting at `initial`, on stderr.

  On a terminal it redraws in place; elsewhere (logs, CI, captured notebook streams)
  it writes a line at most every 30 s, so log files stay short.

  Args:
    total: units at completion (updates).
    desc: label before the bar.
    initial: units already done (a resumed run).
    disable: no output at all.
    unit: the unit name in the rate.

  Returns:
    The `tqdm.tqdm` instance (`update`, `set_postfix`, `close`).
  """
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
  return tqdm(total=total, desc=desc, initial=initial, disable=disable, unit=unit,
              file=sys.stderr, dynamic_ncols=True, mininterval=0.1 if tty else 30.0)
