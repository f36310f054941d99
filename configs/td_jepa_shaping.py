"""PPO on a sparse point-mass goal, with and without a TD-JEPA potential.

The task `pointmass/sparse_goal_center_top`: reward 1 on entering the disc of radius 0.1
around (0, 0.7), which ends the episode; 0 otherwise; start (−0.7, −0.7), horizon 100, the
wall in the middle below y = 0.4. Three groups of 10 seeds each (vmapped):

* `none`: no shaping;
* `zero`: potential-based shaping with Φ ≡ 0 (a control: F ≡ 0, the same runs as `none`
  up to the shaping code path);
* `td_jepa`: potential-based shaping (F = γ Φ(s') − Φ(s), Φ = 0 at the terminal goal, as
  Grześ's correction) with Φ the zero-shot value V_z of the asymmetric TD-JEPA model of
  `configs/td_jepa_pointmass.py` (run 0 of its `asymmetric` group, trained first in
  `runs/td_jepa_pointmass` unless finished), z the latent of the goal `center_top`,
  normalised to [0, 1] over the dataset's states (`rlcore.agents.td_jepa.load_potential`).

Potential-based shaping leaves the optimal policies unchanged (Ng et al. 1999), so the
final returns must agree; what may change is how fast PPO gets there. The report
(`experiments/td_jepa_report.py --shaping`) gives env steps to 90% of the final return.

Launch:

    python experiments/main.py --config=configs/td_jepa_shaping.py \\
        --workdir=runs/td_jepa_shaping

Runtime on this 2-core CPU (2026-12-04): 2 min 43 s (none and zero 25 s each; td_jepa
1 min 41 s, the potential's networks run at every step), after the TD-JEPA run.

Results: results/td_jepa.md
"""

import ml_collections

from rlcore import experiment
from rlcore.agents import ppo

GOAL = "center_top"
GROUPS = ("none", "zero", "td_jepa")


def get_config(arg=None):
  if arg not in (None, ""):
    raise ValueError(f"configs/td_jepa_shaping.py takes no argument, got {arg!r}.")
  c = experiment.with_runner_defaults(ppo.default_config())
  c.env_name = f"pointmass/sparse_goal_{GOAL}"
  c.num_envs = 16
  c.num_steps = 100
  c.total_timesteps = 400_000
  c.update_epochs = 4
  c.num_minibatches = 8
  c.lr = 3e-4
  c.gamma = 0.99
  c.gae_lambda = 0.95
  c.ent_coef = 0.0
  c.hidden_sizes = (64, 64)
  c.num_seeds = 10
  c.seed = 200
  c.chunk_updates = 25
  c.shaping.scale = 1.0
  c.shaping.td_jepa = ml_collections.ConfigDict(dict(
      workdir="runs/td_jepa_pointmass", config="configs/td_jepa_pointmass.py",
      group="asymmetric", run=0, task=f"goal_{GOAL}"))
  c.sweep_points = [
      {"shaping.chain": "", "_name": "none"},
      {"shaping.chain": "potential_based", "shaping.potential": "zero", "_name": "zero"},
      {"shaping.chain": "potential_based", "shaping.potential": "td_jepa", "_name": "td_jepa"},
  ]
  return c
