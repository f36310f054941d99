"""Learning-curve plots written as PNG files.

matplotlib is imported inside the function, so `import rlcore.io` stays light. The
figure is drawn with matplotlib's object-oriented API on an Agg canvas
(`matplotlib.figure.Figure` + `FigureCanvasAgg`) rather than through `pyplot`, so it
works headless and never switches the process-wide backend (which would break the
inline plots of a notebook that calls it). The PNG is written atomically.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rlcore.io.atomic import PathLike, atomic_open

BANDS = ("minmax", "std", "none")


def learning_curve_png(path: PathLike,
                       curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                       xlabel: str = "env steps", ylabel: str = "return",
                       title: str | None = None, *, band: str = "minmax",
                       dpi: int = 100, figsize: tuple[float, float] = (6.4, 4.0)) -> None:
  """Plots one or more learning curves and writes them to `path` as PNG.

  A 1-D `y` is drawn as a line. A 2-D `y` of shape `[num_seeds, num_points]` is
  drawn as its mean over seeds with a shaded band: the min-max range over seeds
  (`band="minmax"`) or mean +- one standard deviation (`band="std"`).

  Args:
    path: the PNG file; written atomically (temp file then `os.replace`).
    curves: label -> `(x, y)` with x `[num_points]` and y `[num_points]` or
      `[num_seeds, num_points]` (numpy, JAX or lists).
    xlabel: x-axis label.
    ylabel: y-axis label.
    title: figure title (None for none).
    band: "minmax", "std" or "none" for 2-D `y`.
    dpi: resolution.
    figsize: figure size in inches.

  Raises:
    ValueError: on bad shapes or an unknown `band`.
  """
  if band not in BANDS:
    raise ValueError(f"learning_curve_png: band must be one of {BANDS}, got {band!r}.")
  prepared = []
  for label, (x, y) in curves.items():
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1:
      raise ValueError(f"learning_curve_png: x of {label!r} must be 1-D, got {x.shape}.")
    if y.ndim not in (1, 2) or y.shape[-1] != x.shape[0]:
      raise ValueError(f"learning_curve_png: y of {label!r} must be [{x.shape[0]}] or "
                       f"[num_seeds, {x.shape[0]}], got {y.shape}.")
    prepared.append((label, x, y))

  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=import-outside-toplevel
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  fig = Figure(figsize=figsize, dpi=dpi)
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  for label, x, y in prepared:
    if y.ndim == 1:
      ax.plot(x, y, label=label)
      continue
    mean = y.mean(axis=0)
    (line,) = ax.plot(x, mean, label=f"{label} (n={y.shape[0]})")
    if band == "minmax":
      lo, hi = y.min(axis=0), y.max(axis=0)
    elif band == "std":
      std = y.std(axis=0)
      lo, hi = mean - std, mean + std
    else:
      continue
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  if prepared:
    ax.legend(loc="best")
  ax.grid(True, alpha=0.3)
  fig.tight_layout()
  with atomic_open(path, "wb") as f:
    fig.savefig(f, format="png")
