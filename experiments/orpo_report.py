r"""Tables and the coefficient plot of an ORPO tomato sweep.

Reads the workdir that `experiments/main.py --config=configs/orpo_tomato.py` wrote (one
group per regulariser, one point per coefficient λ = `reg_coef`, the exact evaluation of
every seed in `points/<point>.json`) and prints markdown tables over the seeds: exact
true and proxy return (mean ± standard error), the fraction of seeds whose true return
is at least the reference's, the median exact occupancy χ² to the reference, then every
seed's exact true return. Writes a PNG of true and proxy return against λ, one line per
regulariser (unregularised PPO and the reference as horizontal lines).

    python experiments/orpo_report.py --workdir=runs/orpo_tomato --png=results/orpo_tomato.png
"""

import argparse
import json
import os
import sys

import numpy as np

ORDER = ("none", "action_kl", "kl", "chi2", "sqrt_chi2")
COLORS = dict(zip(ORDER, ("black", "tab:orange", "tab:green", "tab:red", "tab:purple")))
LABELS = {"none": "no regularisation", "action_kl": "action-distribution KL",
          "kl": "occupancy KL", "chi2": "occupancy χ²", "sqrt_chi2": "occupancy sqrt-χ²"}


def load(workdir: str):
  """{regulariser: {λ: {exact metric: [seeds] array}}} of the finished groups."""
  out = {}
  for group in sorted(os.listdir(workdir)):
    gdir = os.path.join(workdir, group)
    summary = os.path.join(gdir, "summary.json")
    if not os.path.isdir(gdir) or group == "reference":
      continue
    if not os.path.exists(summary):
      print(f"{group}: not finished (no summary.json); left out", file=sys.stderr)
      continue
    with open(summary) as f:
      s = json.load(f)
    reg = s["config"]["regularizer"]
    for name in s["points"]:
      with open(os.path.join(gdir, "points", f"{name}.json")) as f:
        p = json.load(f)
      coef = float(p["overrides"].get("reg_coef", s["config"]["reg_coef"]))
      ev = p["evaluation"]
      out.setdefault(reg, {})[coef] = {k[:-len("_per_seed")]: np.asarray(v, np.float64)
                                       for k, v in ev.items() if k.endswith("_per_seed")}
  if not out:
    raise SystemExit(f"no finished groups under {workdir!r}")
  return out


def _mse(x):
  se = x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
  return f"{x.mean():.2f} ± {se:.2f}"


def tables(runs) -> str:
  ref = next(iter(next(iter(runs.values())).values()))["reference_exact_true_return"][0]
  lines = [f"Reference policy (ε = 0.1 random actions): exact true return {ref:.2f}.", "",
           "| regulariser | λ | true return | proxy return | seeds with true ≥ reference | "
           "median χ²(μ_π‖μ_ref) |", "|---|---|---|---|---|---|"]
  per_seed = ["", "| regulariser | λ | exact true return per seed |", "|---|---|---|"]
  for reg in [r for r in ORDER if r in runs] + sorted(set(runs) - set(ORDER)):
    for coef in sorted(runs[reg]):
      e = runs[reg][coef]
      t, p, c = e["exact_true_return"], e["exact_proxy_return"], e["exact_chi2"]
      lam = "-" if reg == "none" else f"{coef:g}"
      lines.append(f"| {LABELS.get(reg, reg)} | {lam} | {_mse(t)} | {_mse(p)} | "
                   f"{int((t >= ref - 1e-6).sum())}/{len(t)} | {np.median(c):.3g} |")
      per_seed.append(f"| {LABELS.get(reg, reg)} | {lam} | "
                      f"{', '.join(f'{x:.2f}' for x in t)} |")
  return "\n".join(lines + per_seed)


def plot(runs, path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
  ref = next(iter(next(iter(runs.values())).values()))["reference_exact_true_return"][0]
  coefs = sorted({c for reg in runs if reg != "none" for c in runs[reg]}) or [1e-3, 1.0]
  for ax, key, title in zip(axes, ("exact_true_return", "exact_proxy_return"),
                            ("true return", "proxy return")):
    for reg in ORDER:
      if reg not in runs:
        continue
      xs = sorted(runs[reg])
      m = np.array([runs[reg][c][key].mean() for c in xs])
      se = np.array([runs[reg][c][key].std(ddof=1) / np.sqrt(len(runs[reg][c][key]))
                     for c in xs])
      if reg == "none":
        ax.axhline(m[0], color=COLORS[reg], ls="--", label=LABELS[reg])
        ax.axhspan(m[0] - se[0], m[0] + se[0], color=COLORS[reg], alpha=0.1)
        continue
      ax.errorbar(xs, m, yerr=se, marker="o", capsize=3, color=COLORS[reg], label=LABELS[reg])
    if key == "exact_true_return":
      ax.axhline(ref, color="tab:blue", ls=":", label="reference (ε = 0.1)")
    ax.set_xscale("log")
    ax.set_xlim(min(coefs) / 2, max(coefs) * 2)
    ax.set_xlabel("coefficient λ")
    ax.set_title(f"exact {title} (mean ± s.e. over seeds)")
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--png", default="")
  args = parser.parse_args(argv)
  runs = load(args.workdir)
  print(tables(runs))
  if args.png:
    plot(runs, args.png)
    print(f"\nwrote {args.png}", file=sys.stderr)


if __name__ == "__main__":
  main()
