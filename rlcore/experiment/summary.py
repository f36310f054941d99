"""What a group's run leaves behind besides checkpoints: metric records, summary, plot."""

from __future__ import annotations

import math
import os

import jax
import numpy as np

from rlcore import io as rio
from rlcore.experiment.configs import config_json


def records(metrics: dict, names: list, num_seeds: int, first_update: int, log_every: int,
            *, per_seed_keys, always_keys=(), **common) -> list[dict]:
  """One record per logged update and point: seed means, plus per-seed lists.

  Args:
    metrics: name -> [R, n] values of n updates for R = points x seeds runs.
    names: the points' names (run r belongs to point r // num_seeds).
    num_seeds: seeds per point.
    first_update: updates done before this chunk.
    log_every: keep every n-th update (and the chunk's last).
    per_seed_keys: metrics whose per-seed values are kept (`<key>_per_seed`).
    always_keys: metrics that must stay finite (losses): written at every update with
      their per-seed values; their mean is null (NaN) when any seed's is non-finite.
    **common: fields added to every record (steps per second, wall time).

  Returns:
    The records. Any other metric that is NaN for every seed of an update (not
    measured then, e.g. an evaluation between evaluations) is left out of that
    record; its mean is over the seeds where it was measured.
  """
  n = np.shape(metrics["env_steps"])[1]
  out = []
  for k in range(n):
    update = first_update + k + 1
    if update % log_every and k != n - 1:
      continue
    for p, name in enumerate(names):
      rows = slice(p * num_seeds, (p + 1) * num_seeds)
      rec = dict(update=update, point=name, env_steps=int(metrics["env_steps"][0][k]),
                 **common)
      for key, value in metrics.items():
        if key == "env_steps":
          continue
        v = np.asarray(value[rows, k], np.float64)
        if key in always_keys:      # null (NaN) in the mean as soon as one seed is
          rec[key] = float(v.mean())
          rec[key + "_per_seed"] = v.tolist()
          continue
        if np.all(np.isnan(v)):
          continue
        rec[key] = float(np.nanmean(v))
        if key in per_seed_keys:
          rec[key + "_per_seed"] = v.tolist()
      out.append(rec)
  return out


def nonfinite(metrics: dict, keys, names: list, num_seeds: int, first_update: int) -> list:
  """Where the must-be-finite `keys` are NaN or infinite in a chunk's metrics [R, n]:
  one dict (metric, value, update, point, seed index) per occurrence, in update order."""
  out = []
  for key in keys:
    if key not in metrics:
      continue
    values = np.asarray(metrics[key], np.float64)
    for r, k in zip(*np.nonzero(~np.isfinite(values))):
      out.append(dict(metric=key, value=float(values[r, k]), update=first_update + int(k) + 1,
                      point=names[r // num_seeds], seed=int(r % num_seeds)))
  return sorted(out, key=lambda b: b["update"])


def last_values(recs: list[dict]) -> dict:
  """The last finite value of every numeric metric over a point's records."""
  last = {}
  for r in recs:
    for k, v in r.items():
      if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        last[k] = v
  return last


def summarise(group, config, recs, names, evaluations, timing: dict, plot_metrics=()) -> dict:
  """The group's summary.json: per point its final record, the last value of every
  metric, its evaluation; the timings, versions, device and config."""
  points = {}
  for p, name in enumerate(names):
    mine = [r for r in recs if r["point"] == name]
    final = mine[-1] if mine else {}
    points[name] = dict(point=name, overrides=group.points[p], final=final,
                        last=last_values(mine), env_steps=final.get("env_steps"))
    if evaluations is not None:
      per_seed = evaluations[p * config.num_seeds:(p + 1) * config.num_seeds]
      points[name]["evaluation"] = {
          **{k: float(np.mean([e[k] for e in per_seed])) for k in per_seed[0]},
          **{k + "_per_seed": [e[k] for e in per_seed] for k in per_seed[0]}}
  return dict(group=group.name or "default", overrides=group.overrides, points=points,
              plot_metrics=list(plot_metrics), **timing, jax_version=jax.__version__,
              device=str(jax.devices()[0].device_kind), num_devices=jax.device_count(),
              backend=jax.default_backend(), config=config_json(config))


def plot(recs, names, plot_metrics, path, title: str, *, labels=None) -> None:
  """A PNG with one panel per plot metric and one mean line and seed band per point.

  Args:
    recs: metric records (of one group, or of several with `point` made unique).
    names: the points to draw.
    plot_metrics: the metrics, one panel each (those with per-seed values).
    path: the PNG.
    title: the figure's title.
    labels: the legend label of each point (default: its name).
  """
  panels = {}
  for key in plot_metrics:
    curves = {}
    for i, name in enumerate(names):
      mine = [r for r in recs if r["point"] == name and key + "_per_seed" in r]
      if mine:
        x = np.array([r["env_steps"] for r in mine])
        y = np.array([r[key + "_per_seed"] for r in mine], np.float64).T
        curves[labels[i] if labels else name] = (x, y)
    if curves:
      panels[key.replace("_", " ")] = curves
  if panels:
    rio.learning_curves_png(path, panels, xlabel="env steps", title=title)


def plot_sweep(workdir, summaries, title: str) -> None:
  """`sweep_curve.png`: every group's points in one figure, one panel per metric."""
  recs, names, labels, metrics = [], [], [], []
  for s in summaries:
    gdir = os.path.join(workdir, s["group"]) if s["group"] != "default" else workdir
    for r in rio.read_jsonl(os.path.join(gdir, "metrics.jsonl")):
      recs.append(dict(r, point=f"{s['group']}/{r['point']}"))
    for name in s["points"]:
      names.append(f"{s['group']}/{name}")
      labels.append(s["group"] if len(s["points"]) == 1 else f"{s['group']}/{name}")
    metrics += [m for m in s.get("plot_metrics", []) if m not in metrics]
  plot(recs, names, metrics, os.path.join(workdir, "sweep_curve.png"), title, labels=labels)


def write_point_files(gdir, summary) -> None:
  """`points/<name>.json` for every point (the files that mark it finished)."""
  for name, point in summary["points"].items():
    rio.write_json_atomic(os.path.join(gdir, "points", f"{name}.json"), point)
