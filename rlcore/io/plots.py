"""Learning-curve plots written as PNG files.

matplotlib is imported inside the functions, so `import rlcore.io` stays light. The
figure is drawn with matplotlib's object-oriented API on an Agg canvas
(`matplotlib.figure.Figure` + `FigureCanvasAgg`) rather than through `pyplot`, so it
works headless and never switches the process-wide backend (which would break the
inline plots of a notebook that calls it). The PNG is written atomically.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np

from rlcore.io.atomic import PathLike, atomic_open

BANDS = ("minmax", "std", "none")
_BAND_WORDS = {"minmax": "min-max", "std": "mean ± std"}

Curves = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def _prepare(curves: Curves):
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
  return prepared


def _draw(ax, prepared, band: str) -> set:
  """Draws mean lines and bands; returns the seed counts of the banded curves. Points
  where no seed has a value (NaN) are gaps."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN points: left as gaps
    return _draw_curves(ax, prepared, band)


def _draw_curves(ax, prepared, band: str) -> set:
  seeds = set()
  for label, x, y in prepared:
    if y.ndim == 1:
      ax.plot(x, y, label=label)
      continue
    mean = np.nanmean(y, axis=0)
    (line,) = ax.plot(x, mean, label=label)
    if band == "none" or y.shape[0] < 2:
      continue
    seeds.add(y.shape[0])
    if band == "minmax":
      lo, hi = np.nanmin(y, axis=0), np.nanmax(y, axis=0)
    else:
      std = np.nanstd(y, axis=0)
      lo, hi = mean - std, mean + std
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
  return seeds


def learning_curves_png(path: PathLike, panels: Mapping[str, Curves],
                        xlabel: str = "env steps", title: str | None = None, *,
                        band: str = "minmax", dpi: int = 100,
                        panel_size: tuple[float, float] = (5.0, 3.2)) -> None:
  """Plots learning curves, one panel per quantity, and writes them to `path` as PNG.

  Each panel's curves share its y axis (the panel's name). A 1-D `y` is drawn as a
  line; a 2-D `y` of shape `[num_seeds, num_points]` as its mean over seeds with a
  shaded band: the min-max range over seeds (`band="minmax"`) or mean ± one standard
  deviation (`band="std"`). The legend sits below the panels, outside the data, and
  says what the band is ("line: mean over 8 seeds; band: min-max").

  Args:
    path: the PNG file; written atomically (temp file then `os.replace`).
    panels: y-axis label -> {curve label -> (x [num_points], y [num_points] or
      [num_seeds, num_points])} (numpy, JAX or lists).
    xlabel: x-axis label of every panel.
    title: figure title (None for none).
    band: "minmax", "std" or "none" for 2-D `y`.
    dpi: resolution.
    panel_size: size of one panel in inches.

  Raises:
    ValueError: on bad shapes, an unknown `band` or no panels.
  """
  if band not in BANDS:
    raise ValueError(f"learning_curve_png: band must be one of {BANDS}, got {band!r}.")
  prepared = {name: _prepare(curves) for name, curves in panels.items()}
  if not prepared:
    raise ValueError("learning_curves_png: `panels` is empty.")

  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=import-outside-toplevel
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  n = len(prepared)
  cols = min(n, 3)
  rows = -(-n // cols)
  fig = Figure(figsize=(panel_size[0] * cols, panel_size[1] * rows + 0.9), dpi=dpi,
               layout="constrained")
  FigureCanvasAgg(fig)
  axes = fig.subplots(rows, cols, squeeze=False).ravel()
  seeds, handles = set(), {}
  for ax, (name, curves) in zip(axes, prepared.items()):
    seeds |= _draw(ax, curves, band)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(name)
    ax.grid(True, alpha=0.3)
    for h, label in zip(*ax.get_legend_handles_labels()):
      handles.setdefault(label, h)
  for ax in axes[n:]:
    ax.set_visible(False)
  if title:
    fig.suptitle(title)
  if handles:
    note = ""
    if seeds:
      count = "/".join(str(s) for s in sorted(seeds))
      note = f"line: mean over {count} seeds; band: {_BAND_WORDS[band]} over seeds"
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncols=min(len(handles), 4), title=note or None, fontsize="small",
               title_fontsize="small")
  with atomic_open(path, "wb") as f:
    fig.savefig(f, format="png")


def learning_curve_png(path: PathLike, curves: Curves, xlabel: str = "env steps",
                       ylabel: str = "return", title: str | None = None, *,
                       band: str = "minmax", dpi: int = 100,
                       figsize: tuple[float, float] = (6.4, 4.0)) -> None:
  """One panel of `learning_curves_png`: the curves share the y axis `ylabel`.

  Args:
    path: the PNG file; written atomically.
    curves: label -> `(x, y)` with x `[num_points]` and y `[num_points]` or
      `[num_seeds, num_points]`.
    xlabel: x-axis label.
    ylabel: y-axis label.
    title: figure title (None for none).
    band: "minmax", "std" or "none" for 2-D `y`.
    dpi: resolution.
    figsize: figure size in inches (the legend adds below it).

  Raises:
    ValueError: on bad shapes or an unknown `band`.
  """
  learning_curves_png(path, {ylabel: curves}, xlabel, title, band=band, dpi=dpi,
                      panel_size=figsize)
