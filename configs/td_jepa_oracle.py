"""The oracles of the TD-JEPA comparison: PPO trained per task with the true reward.

One group per evaluation task of `configs/td_jepa_pointmass.py` (argument `pointmass`,
the default) or `configs/td_jepa_gridworld.py` (`gridworld`): the dense tasks and the
non-terminating goal tasks, from the same fixed start cell/position and horizon (100)
the zero-shot policies are evaluated on, 5 seeds vmapped per group. The report
(`experiments/td_jepa_report.py`) runs each final PPO policy greedily with the same
evaluation rollout as TD-JEPA's and divides the zero-shot return by it.

Launch:

    python experiments/main.py --config=configs/td_jepa_oracle.py:pointmass \\
        --workdir=runs/td_jepa_oracle_pointmass
    python experiments/main.py --config=configs/td_jepa_oracle.py:gridworld \\
        --workdir=runs/td_jepa_oracle_gridworld

Runtime on this 2-core CPU (2026-12-04): point mass 2.4 min, four rooms 5.1 min
(9 groups of 5 x 400k steps, about 4 s compile each).

Results: results/td_jepa.md
"""

from rlcore import experiment
from rlcore.agents import ppo

ARGS = ("pointmass", "gridworld")


def tasks(family: str) -> tuple[str, ...]:
  import importlib
  suite = importlib.import_module(f"rlcore.envs.{family}")
  return tuple(suite.DENSE_TASKS) + tuple(f"goal_{g}" for g in suite.GOALS)


def get_config(arg=None):
  family = arg or "pointmass"
  if family not in ARGS:
    raise ValueError(f"configs/td_jepa_oracle.py: unknown argument {arg!r}; allowed: "
                     f"{', '.join(repr(a) for a in ARGS)}.")
  c = experiment.with_runner_defaults(ppo.default_config())
  c.env_name = f"{family}/{tasks(family)[0]}"
  c.num_envs = 16
  c.num_steps = 100
  c.total_timesteps = 400_000
  c.update_epochs = 4
  c.num_minibatches = 8
  c.lr = 3e-4 if family == "pointmass" else 1e-3
  c.gamma = 0.99
  c.gae_lambda = 0.95
  c.ent_coef = 0.0 if family == "pointmass" else 0.01
  c.hidden_sizes = (64, 64)
  c.num_seeds = 5
  c.seed = 100
  c.chunk_updates = 50
  c.sweep_points = [{"env_name": f"{family}/{t}", "_name": t} for t in tasks(family)]
  return c
