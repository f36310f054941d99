r"""Tables and learning curves of a BARFI sweep, over a chosen range of seed indices.

Reads the workdir that `experiments/main.py --config=configs/barfi_<task>.py` wrote
(one group per heuristic x method, per-seed `episode_return`, `goal_rate`, `gamma` and
`aux_weight` in each group's metrics.jsonl) and prints markdown tables of the reporting
seeds: final return (mean of the last 10% of updates), area under the curve (mean over
all updates), final termination rate (GridWorld: the goal; CartPole: a fall), final
learned discount and auxiliary weight, each as mean ± standard error, then every
seed's final return. Writes one PNG per task with a
row per heuristic and columns return, learned discount, learned weight (mean ± s.e.
band over the reporting seeds).

    python experiments/barfi_report.py --workdir=runs/barfi_gw --seeds=5:25 \
        --png=results/barfi_gridworld.png > /tmp/gw_tables.md
"""

import argparse
import collections
import json
import os
import sys

import numpy as np

METHOD_ORDER = ("primary_only", "naive", "potential", "barfi_first_order", "barfi_neumann")
COLORS = dict(zip(METHOD_ORDER, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")))
SMOOTH = 10   # updates in the curves' moving average
KEYS = ("episode_return", "goal_rate", "gamma", "aux_weight")


def load(workdir: str, seeds: slice):
  """{(aux, method): {key: [updates, seeds] array}} and each group's overrides."""
  runs, overrides = {}, {}
  for group in sorted(os.listdir(workdir)):
    path = os.path.join(workdir, group, "metrics.jsonl")
    if not os.path.exists(path):
      continue
    if not os.path.exists(os.path.join(workdir, group, "summary.json")):
      print(f"{group}: not finished (no summary.json); left out", file=sys.stderr)
      continue
    with open(os.path.join(workdir, group, "summary.json")) as f:
      over = json.load(f)["overrides"]
    aux, method = group.split("_", 1)[0].split("=")[1], group.split("_", 1)[1]
    series = collections.defaultdict(list)
    with open(path) as f:
      for line in f:
        rec = json.loads(line)
        for k in KEYS:
          series[k].append(rec[f"{k}_per_seed"])
    available = len(series["episode_return"][0])
    if not 0 <= seeds.start < seeds.stop <= available:
      raise SystemExit(f"--seeds={seeds.start}:{seeds.stop}: group {group} has seed indices "
                       f"0-{available - 1}; pick a range inside them.")
    runs[aux, method] = {k: np.asarray(v, np.float64)[:, seeds] for k, v in series.items()}
    overrides[aux, method] = over
  if not runs:
    raise SystemExit(f"no groups with metrics.jsonl under {workdir!r}")
  return runs, overrides


def mean_se(x):
  x = np.asarray(x, np.float64)
  return x.mean(), x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")


def fmt(x, digits=1):
  m, s = mean_se(x)
  return f"{m:.{digits}f} ± {s:.{digits}f}"


def tables(runs, overrides, seeds: slice) -> str:
  auxes = list(dict.fromkeys(a for a, _ in runs))
  out = []
  n = next(iter(runs.values()))["episode_return"].shape[1]
  out.append(f"Seed indices {seeds.start}-{seeds.stop - 1} ({n} seeds); final = mean of the "
             "last 10% of updates; AUC = mean over all updates.\n")
  out.append("| heuristic | method | final return | AUC | final termination rate | final γ | final w |")
  out.append("|---|---|---:|---:|---:|---:|---:|")
  finals = {}
  for aux in auxes:
    for method in METHOD_ORDER:
      if (aux, method) not in runs:
        continue
      r = runs[aux, method]
      u = r["episode_return"].shape[0]
      tail = slice(u - max(u // 10, 1), u)
      final = r["episode_return"][tail].mean(0)
      finals[aux, method] = final
      learned = method.startswith("barfi")      # the baselines' φ is never trained
      gamma = fmt(r["gamma"][-1], 3) if learned else "—"
      weight = fmt(r["aux_weight"][-1], 2) if learned else "—"
      out.append(f"| {aux} | {method} | {fmt(final)} | {fmt(r['episode_return'].mean(0))} | "
                 f"{fmt(r['goal_rate'][tail].mean(0), 2)} | {gamma} | {weight} |")
  out.append("\nPer-seed final return (seed indices in order):\n")
  out.append("| heuristic | method | per seed |")
  out.append("|---|---|---|")
  for (aux, method), final in finals.items():
    out.append(f"| {aux} | {method} | {' '.join(f'{v:.1f}' for v in final)} |")
  out.append("\nSettings per group (overrides of the config):\n")
  for (aux, method), over in overrides.items():
    out.append(f"* {aux} / {method}: `{json.dumps(over, sort_keys=True)}`")
  return "\n".join(out)


def figure(runs, path: str, title: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  auxes = list(dict.fromkeys(a for a, _ in runs))
  cols = ("episode_return", "gamma", "aux_weight")
  labels = {"episode_return": "primary return", "gamma": "learned discount γ_φ",
            "aux_weight": "learned weight w_φ (mean over visited states)"}
  fig, axes = plt.subplots(len(auxes), 3, figsize=(15, 3.2 * len(auxes)), squeeze=False)
  for i, aux in enumerate(auxes):
    for j, key in enumerate(cols):
      ax = axes[i, j]
      for method in METHOD_ORDER:
        if (aux, method) not in runs:
          continue
        if key != "episode_return" and not method.startswith("barfi"):
          continue
        y = runs[aux, method][key]
        if key == "episode_return" and len(y) > SMOOTH:     # per seed, then mean ± s.e.
          kernel = np.ones(SMOOTH) / SMOOTH
          y = np.stack([np.convolve(col, kernel, "valid") for col in y.T], 1)
        m, s = y.mean(1), y.std(1, ddof=1) / np.sqrt(y.shape[1])
        x = np.arange(len(m)) + 1 + (len(runs[aux, method][key]) - len(m))
        ax.plot(x, m, label=method, lw=1.2, color=COLORS[method])
        ax.fill_between(x, m - s, m + s, alpha=0.2, color=COLORS[method])
      smooth = f" ({SMOOTH}-update moving average)" if key == "episode_return" else ""
      ax.set_title(f"{aux}: {labels[key]}{smooth}", fontsize=10)
      ax.set_xlabel("update (one per δ episodes)")
      ax.grid(alpha=0.3)
  handles, names = axes[0, 0].get_legend_handles_labels()
  fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False)
  fig.suptitle(title or "BARFI sweep (mean ± s.e. over the reporting seeds)")
  fig.tight_layout(rect=(0, 0.04, 1, 0.97))
  fig.savefig(path, dpi=90)


def main(argv=None):
  # argparse, not absl flags: importing this module (the tests do) must not register
  # global flags that experiments/main.py defines too.
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="the sweep's workdir")
  p.add_argument("--seeds", default="5:25", help="reporting seed indices, start:stop")
  p.add_argument("--png", default="", help="where to write the learning-curve figure")
  p.add_argument("--title", default="", help="the figure's title")
  args = p.parse_args(argv)
  try:
    start, stop = (int(v) for v in args.seeds.split(":"))
  except ValueError:
    p.error(f"--seeds must be start:stop (integers), got {args.seeds!r}")
  seeds = slice(start, stop)
  runs, overrides = load(args.workdir, seeds)
  print(tables(runs, overrides, seeds))
  if args.png:
    figure(runs, args.png, args.title)


if __name__ == "__main__":
  main()
