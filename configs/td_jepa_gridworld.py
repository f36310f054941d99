"""TD-JEPA on four rooms: zero-shot room, distance and goal tasks from reward-free data.

As `configs/td_jepa_pointmass.py`, on `rlcore.envs.gridworld` (one-hot cells, five
discrete actions: the policy is greedy over the predicted Q, no actor). The dataset is
uniform random actions from random start cells (every cell visited). Two groups,
`asymmetric` and `symmetric`, 5 seeds each, vmapped. The exact optimal return of every
task (`gridworld.optimal_return`) is the second oracle next to PPO
(`configs/td_jepa_oracle.py:gridworld`).

Launch:

    python experiments/main.py --config=configs/td_jepa_gridworld.py \\
        --workdir=runs/td_jepa_gridworld

Runtime on this 2-core CPU (2026-12-04): 6 min 24 s (two groups of 5000 updates x 5
seeds, 10 s compile each).

Results: results/td_jepa.md
"""

from rlcore.agents import td_jepa


def get_config(arg=None):
  c = td_jepa.zero_shot_config("gridworld", arg)
  c.dataset.policy = "random"
  c.dataset.num_episodes = 500
  c.phi_hidden = c.psi_hidden = (128,)
  c.predictor_hidden = 128
  c.batch_size = 256
  c.lr_phi = c.lr_psi = c.lr_predictor = 1e-3
  c.gamma = 0.98
  c.tau_encoder = c.tau_predictor = 0.01
  c.num_updates = 5000
  c.chunk_updates = 1000
  return td_jepa.small_budget(c) if arg == "small" else c
