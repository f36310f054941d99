"""Tables of results/td_jepa.md from the TD-JEPA, oracle and shaping workdirs.

    python experiments/td_jepa_report.py --family=pointmass \\
        --zero_shot=runs/td_jepa_pointmass --oracle=runs/td_jepa_oracle_pointmass
    python experiments/td_jepa_report.py --family=gridworld \\
        --zero_shot=runs/td_jepa_gridworld --oracle=runs/td_jepa_oracle_gridworld
    python experiments/td_jepa_report.py --shaping=runs/td_jepa_shaping_random_start \\
        --png=results/td_jepa_shaping_random_start.png

Zero-shot: every task's return per seed (the runner's final `evaluate`: the policy of the
inferred or goal latent from the fixed start, `final_eval_episodes` episodes), for the
asymmetric and symmetric groups, next to a uniformly random policy's and to the PPO
oracle's: each oracle run's final policy, acting greedily (its mean action), on the same
rollout (fixed start, horizon 100). `fraction` is mean zero-shot / mean oracle return.
Gridworld tables add the exact optimum (`gridworld.optimal_return`).

Shaping: per seed, the final return (mean episode return over the last 10% of updates;
the final episode length is that mean over the seeds too) and the env steps at which the episode return (a running mean over 5 updates) first
reaches 90% of that seed's final return.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np


def mean_se(xs) -> str:
  xs = np.asarray(xs, float)
  se = xs.std(ddof=1) / np.sqrt(len(xs)) if len(xs) > 1 else 0.0
  return f"{xs.mean():.1f} ± {se:.1f}"


def per_seed(xs) -> str:
  return ", ".join(f"{x:.0f}" if abs(x) >= 10 else f"{x:.2f}" for x in xs)


def zero_shot_evaluations(workdir: str) -> dict:
  """group -> {metric: per-seed list} from each group's summary.json."""
  out = {}
  for group in sorted(os.listdir(workdir)):
    path = os.path.join(workdir, group, "summary.json")
    if not os.path.exists(path):
      continue
    with open(path) as f:
      summary = json.load(f)
    ev = summary["points"]["default"]["evaluation"]
    out[group] = {k[:-len("_per_seed")]: v for k, v in ev.items() if k.endswith("_per_seed")}
  return out


def oracle_returns(workdir: str, family: str) -> dict:
  """task -> per-seed greedy return of the PPO oracle's final policy."""
  import jax
  import jax.numpy as jnp

  from rlcore import envs, experiment
  config = experiment.load_config(os.path.join(os.path.dirname(__file__), "..", "configs",
                                               "td_jepa_oracle.py"), family)
  out = {}
  for point in config.sweep_points:
    task = point["_name"]
    states, agent, _ = experiment.load(config, workdir, task)
    env = envs.make(f"{family}/{task}")
    horizon = env.horizon

    def returns(params):
      s = env.reset(jax.random.PRNGKey(0))

      def step(carry, _):
        s, ret, alive = carry
        a = agent.policy(params, s.obs[None])[0]
        s = env.step(s, a)
        ret = ret + jnp.where(alive, s.reward, 0.0)
        return (s, ret, alive & ~(s.terminated | s.truncated)), None

      (_, ret, _), _ = jax.lax.scan(step, (s, jnp.zeros(()), jnp.ones((), bool)), None,
                                    horizon)
      return ret

    out[task] = np.asarray(jax.jit(jax.vmap(returns))(states.params)).tolist()
  return out


def zero_shot_tables(family: str, zero_shot: str, oracle: str | None) -> str:
  evals = zero_shot_evaluations(zero_shot)
  groups = [g for g in ("asymmetric", "symmetric") if g in evals] or sorted(evals)
  first = evals[groups[0]]
  tasks = [k[len("return/"):] for k in first if k.startswith("return/")]
  orc = oracle_returns(oracle, family) if oracle else {}
  exact = {}
  if family == "gridworld":
    from rlcore.envs import gridworld
    exact = {t: gridworld.optimal_return(t) for t in tasks}
  head = ["task"] + [f"{g} (5 seeds)" for g in groups] + ["random"]
  head += ["PPO oracle"] * bool(orc) + ["exact optimum"] * bool(exact)
  head += [f"fraction of oracle, {g}" for g in groups] * bool(orc)
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  fractions = {g: [] for g in groups}
  for t in tasks:
    row = [t] + [mean_se(evals[g][f"return/{t}"]) for g in groups]
    row.append(mean_se(first[f"random_return/{t}"]))
    if orc:
      row.append(mean_se(orc[t]))
    if exact:
      row.append(f"{exact[t]:.1f}")
    if orc:
      for g in groups:
        f = np.mean(evals[g][f"return/{t}"]) / max(np.mean(orc[t]), 1e-9)
        fractions[g].append(f)
        row.append(f"{f:.2f}")
    lines.append("| " + " | ".join(row) + " |")
  out = ["\n".join(lines), ""]
  if orc:
    out.append("Mean fraction of the oracle over the tasks: " + ", ".join(
        f"{g} {np.mean(fractions[g]):.2f}" for g in groups) + ".")
  goal_tasks = [t for t in tasks if t.startswith("goal_")]
  if goal_tasks:
    out.append("")
    out.append("Goal success (reached the goal within 100 steps), per seed:")
    out.append("")
    out.append("| goal | " + " | ".join(groups) + " | random |")
    out.append("|---|" + "---|" * (len(groups) + 1))
    for t in goal_tasks:
      cells = [f"{np.mean(evals[g][f'success/{t}']):.2f} ({per_seed(evals[g][f'success/{t}'])})"
               for g in groups]
      out.append(f"| {t} | " + " | ".join(cells)
                 + f" | {np.mean(first[f'random_success/{t}']):.2f} |")
  out.append("")
  out.append("Per-seed zero-shot returns:")
  out.append("")
  for g in groups:
    out.append(f"- {g}: " + "; ".join(f"{t} [{per_seed(evals[g][f'return/{t}'])}]"
                                       for t in tasks))
  if orc:
    out.append("- PPO oracle: " + "; ".join(f"{t} [{per_seed(orc[t])}]" for t in tasks))
  return "\n".join(out)


def shaping_table(workdir: str, png: str = "") -> str:
  from rlcore.io import read_jsonl
  rows, curves = [], {}
  head = ("| group | final return | final episode length | env steps to 90% of final | "
          "per-seed final | per-seed steps to 90% |\n|---|---|---|---|---|---|")
  for group in ("none", "zero", "td_jepa"):
    path = os.path.join(workdir, group, "metrics.jsonl")
    if not os.path.exists(path):
      continue
    recs = [r for r in read_jsonl(path) if r.get("episode_return_per_seed") is not None]
    steps = np.array([r["env_steps"] for r in recs])
    ret = np.array([r["episode_return_per_seed"] for r in recs], float)   # [T, seeds]
    curves[group] = (steps, ret)
    tail = max(1, len(steps) // 10)
    final = ret[-tail:].mean(0)
    length = np.mean([r["episode_length"] for r in recs[-tail:]])   # over seeds too
    smooth = np.stack([np.convolve(ret[:, s], np.ones(5) / 5, mode="full")[:len(steps)]
                       for s in range(ret.shape[1])], 1)
    reach = []
    for s in range(ret.shape[1]):
      hit = np.flatnonzero(smooth[:, s] >= 0.9 * final[s]) if final[s] > 0 else []
      reach.append(float(steps[hit[0]]) if len(hit) else float("nan"))
    reach = np.array(reach)
    ok = reach[np.isfinite(reach)]
    rows.append(f"| {group} | {mean_se(final)} | {length:.1f} | "
                f"{mean_se(ok / 1e3) + ' k' if len(ok) else 'n/a'} "
                f"({len(ok)}/{len(reach)} seeds) | {per_seed(final)} | "
                + ", ".join("—" if not np.isfinite(x) else f"{x / 1e3:.0f}k" for x in reach)
                + " |")
  if png and curves:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for group, (steps, ret) in curves.items():
      m = ret.mean(1)
      se = ret.std(1, ddof=1) / np.sqrt(ret.shape[1])
      ax.plot(steps, m, label=group)
      ax.fill_between(steps, m - se, m + se, alpha=0.25)
    ax.set_xscale("log")   # the learning happens in the first tenth of the run
    ax.set_xlabel("env steps (log scale)")
    ax.set_ylabel("episode return (success)")
    ax.set_title(f"PPO on the sparse point-mass goal, {ret.shape[1]} seeds (± s.e.)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
  return head + "\n" + "\n".join(rows)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--family", default="pointmass")
  p.add_argument("--zero_shot", default="")
  p.add_argument("--oracle", default="")
  p.add_argument("--shaping", default="")
  p.add_argument("--png", default="")
  a = p.parse_args()
  if a.zero_shot:
    print(zero_shot_tables(a.family, a.zero_shot, a.oracle or None))
  if a.shaping:
    print(shaping_table(a.shaping, a.png))


if __name__ == "__main__":
  main()
