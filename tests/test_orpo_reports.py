"""experiments/orpo_report.py and experiments/grpo_report.py on generated workdirs."""

import json
import os

import numpy as np
import pytest

from tests.helpers import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name):
  return load_script(os.path.join(ROOT, "experiments", f"{name}.py"), name)


def _write_tomato_group(root, reg, coefs, true_by_coef, ref=9.4):
  gdir = root / reg
  (gdir / "points").mkdir(parents=True)
  points = {}
  for coef in coefs:
    name = f"reg_coef={coef:g}"
    points[name] = {}
    t = np.asarray(true_by_coef[coef])
    ev = {"exact_true_return_per_seed": t.tolist(),
          "exact_proxy_return_per_seed": (t * 2).tolist(),
          "exact_chi2_per_seed": (1.0 / t).tolist(),
          "reference_exact_true_return_per_seed": [ref] * len(t)}
    with open(gdir / "points" / f"{name}.json", "w") as f:
      json.dump({"overrides": {"reg_coef": coef}, "evaluation": ev}, f)
  with open(gdir / "summary.json", "w") as f:
    json.dump({"config": {"regularizer": reg, "reg_coef": coefs[0]}, "points": points}, f)


def test_orpo_report_tables_and_plot(tmp_path):
  report = _script("orpo_report")
  rng = np.random.default_rng(0)
  coefs = [1e-3, 1.0]
  none = rng.uniform(2, 10, size=5)
  _write_tomato_group(tmp_path, "none", [0.0], {0.0: none})   # reg_coef pinned at 0
  sq = {c: rng.uniform(2, 10, size=5) for c in coefs}
  _write_tomato_group(tmp_path, "sqrt_chi2", coefs, sq)
  text = report.tables(report.load(str(tmp_path)))
  lines = text.splitlines()
  # "none": one summary row and one per-seed row, without a λ.
  assert sum(l.startswith("| no regularisation | - |") for l in lines) == 2
  se = lambda x: x.std(ddof=1) / np.sqrt(len(x))
  row = [l for l in lines if l.startswith("| occupancy sqrt-χ² | 1 |")][0]
  t = sq[1.0]
  assert f"| {t.mean():.2f} ± {se(t):.2f} | {2 * t.mean():.2f} ± {2 * se(t):.2f} |" in row
  assert f"| {int((t >= 9.4 - 1e-6).sum())}/5 | {np.median(1 / t):.3g} |" in row
  per_seed = [l for l in lines if l.startswith("| occupancy sqrt-χ² | 0.001 |")][1]
  assert per_seed.endswith(", ".join(f"{x:.2f}" for x in sq[1e-3]) + " |")
  report.plot(report.load(str(tmp_path)), str(tmp_path / "orpo.png"))
  assert (tmp_path / "orpo.png").stat().st_size > 10_000


def _write_grpo_run(path, evals, filler):
  path.mkdir(parents=True)
  with open(path / "metrics.jsonl", "w") as f:
    for u in range(1, len(filler) + 1):
      row = {"update": u, "filler_steps": filler[u - 1], "prm_sum": 2.0 * filler[u - 1],
             "kl": 0.1 * u, "occupancy_chi2": 1.0 + u}
      if u % 10 == 0:
        row["eval_accuracy"] = evals[u // 10 - 1]
      f.write(json.dumps(row) + "\n")


def test_grpo_report_per_seed_and_fresh_seed_means(tmp_path):
  report = _script("grpo_report")
  rng = np.random.default_rng(1)
  data = {}
  for seed in range(3):
    for point in ("a", "b"):
      evals = rng.uniform(0.5, 0.9, size=10)
      filler = rng.uniform(0, 10, size=100)
      data[point, seed] = (evals, filler)
      _write_grpo_run(tmp_path / f"seed{seed}" / point, evals.tolist(), filler.tolist())
  text = report.tables(report.load(str(tmp_path)), [1, 2], ["b", "a"])
  lines = text.splitlines()
  evals, filler = data["a", 0]
  row = [l for l in lines if l.startswith("| a | 0 |")][0]
  assert f"{evals[0]:.3f} -> {evals.max():.3f} -> {evals[-1]:.3f}" in row
  assert f"| {evals[-5:].mean():.3f} |" in row
  assert f"{filler[:10].mean():.2f} -> {filler[-10:].mean():.2f}" in row
  assert f"{2 * filler[:10].mean():.2f} -> {2 * filler[-10:].mean():.2f}" in row
  assert f"| {np.mean(0.1 * np.arange(91, 101)):.3g} | {np.mean(1.0 + np.arange(91, 101)):.3g} |" \
      in row
  # The means use only the seeds asked for (1 and 2), in the order given.
  last5 = np.array([data["b", s][0][-5:].mean() for s in (1, 2)])
  mean_rows = [l for l in lines if l.startswith("| b | ") and "±" in l]
  assert mean_rows[0].startswith(f"| b | {last5.mean():.3f} ± {last5.std(ddof=1) / np.sqrt(2):.3f} |")
  assert lines.index(mean_rows[0]) < lines.index([l for l in lines if l.startswith("| a | ") and "±" in l][0])


def test_grpo_report_joins_roots_and_refuses_a_run_found_twice(tmp_path):
  report = _script("grpo_report")
  evals, filler = [0.5] * 10, [1.0] * 100
  _write_grpo_run(tmp_path / "main" / "seed0" / "a", evals, filler)
  _write_grpo_run(tmp_path / "extra" / "seed0" / "b", evals, filler)
  runs = report.load(f"{tmp_path / 'main'},{tmp_path / 'extra'}")
  assert sorted(runs) == ["a", "b"]
  _write_grpo_run(tmp_path / "again" / "seed0" / "a", evals, filler)
  with pytest.raises(SystemExit, match="found twice"):
    report.load(f"{tmp_path / 'main'},{tmp_path / 'again'}")
