"""Reading a PNG plot back: does it draw a curve where it should?

Lines are drawn in matplotlib's colour cycle ("C0" = #1f77b4, "C1" = #ff7f0e, ...);
background, axes, text and grid are greys, and seed bands are pale (alpha 0.2) tints.
A curve is there when pixels of its colour cover most of the panel's width and more
than a few rows (a flat line or a legend handle alone covers neither).
"""

from __future__ import annotations

import numpy as np

CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


def _rgb(hex_color: str) -> np.ndarray:
  return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], np.float64) / 255.0


def read_rgb(path) -> np.ndarray:
  """[H, W, 3] float RGB of a PNG."""
  from matplotlib import image  # pylint: disable=import-outside-toplevel
  return np.asarray(image.imread(str(path)), np.float64)[..., :3]


def color_mask(rgb: np.ndarray, hex_color: str, tol: float = 0.1) -> np.ndarray:
  """[H, W] bool: pixels within `tol` (max channel difference) of `hex_color`."""
  return np.abs(rgb - _rgb(hex_color)).max(-1) < tol


def curve_extent(path, hex_color: str = CYCLE[0], columns=(0.0, 1.0)):
  """(fraction of the region's pixel columns, fraction of the image's rows) holding
  pixels of `hex_color`, in the horizontal region `columns` (fractions of the width)."""
  rgb = read_rgb(path)
  h, w = rgb.shape[:2]
  lo, hi = int(columns[0] * w), int(columns[1] * w)
  mask = color_mask(rgb, hex_color)[:, lo:hi]
  return mask.any(0).mean(), mask.any(1).sum() / h


def assert_draws_curve(path, hex_color: str = CYCLE[0], columns=(0.0, 1.0),
                       min_width: float = 0.5, min_height: float = 0.05):
  width, height = curve_extent(path, hex_color, columns)
  assert width > min_width and height > min_height, (
      f"{path}: no curve of colour {hex_color} in columns {columns}: it covers "
      f"{width:.0%} of the width and {height:.0%} of the rows")
