r"""Per-seed tables of GRPO sweeps run one seed per workdir.

Reads `<root>/seed<N>/<point>/metrics.jsonl` (one `experiments/main.py` run of a GRPO
config per seed, e.g. `configs/grpo_occupancy.py`) and prints markdown tables:

* per point and seed: held-out accuracy at the first evaluation -> its peak -> the last,
  the mean of the last five evaluations, filler steps per answer and the PRM's step-score
  sum (first 10 -> last 10 training steps), the last-10 token KL to the reference and the
  last-10 batch χ̂² of the sequence occupancy ratio (`occupancy_chi2`);
* per point: the last-five accuracy and last-10 filler as mean ± standard error over the
  seeds given by `--seeds` (e.g. the fresh seeds only).

    python experiments/grpo_report.py --root=runs/grpo_occupancy --seeds=2,3,4
    python experiments/grpo_report.py --root=runs/a,runs/b --seeds=2,3,4   # several roots
"""

import argparse
import os

import numpy as np

from rlcore.io import read_jsonl   # tolerates the torn last line of a run in progress


def _stats(rows):
  ev = [r["eval_accuracy"] for r in rows if "eval_accuracy" in r]
  train = [r for r in rows if "filler_steps" in r]
  first, last = train[:10], train[-10:]

  def mean(rs, k):
    return float(np.mean([r[k] for r in rs])) if rs and k in rs[0] else float("nan")

  return dict(first=ev[0], peak=max(ev), last=ev[-1], last5=float(np.mean(ev[-5:])),
              filler0=mean(first, "filler_steps"), filler1=mean(last, "filler_steps"),
              prm0=mean(first, "prm_sum"), prm1=mean(last, "prm_sum"),
              kl=mean(last, "kl"), chi2=mean(last, "occupancy_chi2"))


def load(roots):
  """{point: {seed: stats}} of every finished run (metrics.jsonl present) under the roots.

  Args:
    roots: a root directory, or several separated by commas (runs of extra points
      in workdirs of their own); a point and seed found twice is an error.
  """
  out = {}
  for root in roots.split(","):
    _load_root(root, out)
  if not out:
    raise SystemExit(f"no runs under {roots!r} (expected seed<N>/<point>/metrics.jsonl)")
  return out


def _load_root(root, out):
  for d in sorted(os.listdir(root)):
    if not d.startswith("seed"):
      continue
    seed = int(d[len("seed"):])
    for point in sorted(os.listdir(os.path.join(root, d))):
      path = os.path.join(root, d, point, "metrics.jsonl")
      if os.path.exists(path):
        if seed in out.get(point, {}):
          raise SystemExit(f"{point} seed {seed} is found twice (second: {path})")
        out.setdefault(point, {})[seed] = _stats(read_jsonl(path))


def _mse(x):
  x = np.asarray(x, np.float64)
  se = x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
  return f"{x.mean():.3f} ± {se:.3f}"


def tables(runs, seeds, order=None):
  points = [p for p in (order or []) if p in runs] + sorted(set(runs) - set(order or []))
  lines = ["| point | seed | held-out accuracy (first -> peak -> last) | last five | "
           "filler | PRM sum | token KL | occupancy χ̂² |", "|---|---:|---|---:|---|---|---:|---:|"]
  for p in points:
    for s, st in sorted(runs[p].items()):
      lines.append(f"| {p} | {s} | {st['first']:.3f} -> {st['peak']:.3f} -> {st['last']:.3f} "
                   f"| {st['last5']:.3f} | {st['filler0']:.2f} -> {st['filler1']:.2f} | "
                   f"{st['prm0']:.2f} -> {st['prm1']:.2f} | {st['kl']:.3g} | {st['chi2']:.3g} |")
  lines += ["", f"Seeds {', '.join(map(str, seeds))} (mean ± standard error):", "",
            "| point | last-five held-out accuracy | last held-out accuracy | filler (last 10) |",
            "|---|---|---|---|"]
  for p in points:
    got = [runs[p][s] for s in seeds if s in runs[p]]
    if len(got) < len(seeds):
      lines.append(f"| {p} | missing seeds | | |")
      continue
    lines.append(f"| {p} | {_mse([g['last5'] for g in got])} | {_mse([g['last'] for g in got])}"
                 f" | {_mse([g['filler1'] for g in got])} |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--root", required=True, help="root dir(s), comma-separated")
  parser.add_argument("--seeds", required=True, help="comma-separated seeds to aggregate")
  parser.add_argument("--order", default="", help="comma-separated point order")
  args = parser.parse_args(argv)
  seeds = [int(s) for s in args.seeds.split(",")]
  print(tables(load(args.root), seeds, [p for p in args.order.split(",") if p]))


if __name__ == "__main__":
  main()
