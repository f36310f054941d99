"""PPO on a sparse point-mass goal, with and without a TD-JEPA potential.

The task `pointmass/sparse_goal_center_top`: reward 1 on entering the disc of radius 0.1
around (0, 0.7), which ends the episode; 0 otherwise; horizon 100, the wall in the
middle below y = 0.4; every episode starts uniformly in the free space
(`random_start`). Three groups of 10 seeds each (vmapped):

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

Why random starts: from the fixed start (−0.7, −0.7) (`--config.random_start=False`)
unshaped PPO never reaches the goal on some seeds (5 of 10, seeds 200-209, in
results/td_jepa.md): those seeds see no reward in their first updates, and PPO's
normalised advantages of an all-zero reward are noise that moves the policy away for
good. From random starts every pilot seed finds the goal, so the final returns can be
compared.

The argument picks another goal of `rlcore.envs.pointmass.GOALS` (the potential's task
follows): `configs/td_jepa_shaping.py:top_left`.

Launch:

    python experiments/main.py --config=configs/td_jepa_shaping.py \\
        --workdir=runs/td_jepa_shaping_random_start

Runtime on this 2-core CPU (2026-12-04): 7 min 17 s while the test suite shared the CPU
(none and zero 57 s each, td_jepa 3 min 41 s: the potential's networks run at every
step); 2 min 43 s quiet from the fixed start. The TD-JEPA run comes first if missing.

Results: results/td_jepa.md
"""

import ml_collections

from rlcore import experiment
from rlcore.agents import ppo
from rlcore.envs import pointmass

GOAL = "center_top"
GROUPS = ("none", "zero", "td_jepa")


def get_config(arg=None):
  goal = arg or GOAL
  if goal not in pointmass.GOALS:
    raise ValueError(f"configs/td_jepa_shaping.py: the argument is a point-mass goal, one of "
                     f"{', '.join(pointmass.GOALS)}; got {arg!r}.")
  c = experiment.with_runner_defaults(ppo.default_config())
  c.env_name = f"pointmass/sparse_goal_{goal}"
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
  c.seed = 300
  c.random_start = True
  c.chunk_updates = 25
  c.shaping.scale = 1.0
  c.shaping.td_jepa = ml_collections.ConfigDict(dict(
      workdir="runs/td_jepa_pointmass", config="configs/td_jepa_pointmass.py",
      group="asymmetric", run=0, task=f"goal_{goal}"))
  c.sweep_points = [
      {"shaping.chain": "", "_name": "none"},
      {"shaping.chain": "potential_based", "shaping.potential": "zero", "_name": "zero"},
      {"shaping.chain": "potential_based", "shaping.potential": "td_jepa", "_name": "td_jepa"},
  ]
  return c
