"""Potential-based shaping on CartPole: none vs a helpful vs a harmful potential.

Φ(s) = scale · `cartpole_upright`(s) (1 upright at the centre, 0 at the failure
limits), shaping F = γ Φ(s') − Φ(s) with Φ = 0 at terminal states (Grześ's
correction) and bootstrapping at the time limit. The sweep vmaps `shaping.scale`
over {0 (no shaping: F ≡ 0), +s (helpful), −s (harmful)} (s = 10 unless the config
argument sets it, e.g. `--config=configs/pbrs_cartpole.py:5`) and 8 seeds in one
compiled call. Potential-based shaping leaves the optimal policy unchanged (Ng et al.
1999), so all three should reach the same final return; only the speed of learning
should differ.

Launch:

    python experiments/main.py --config=configs/pbrs_cartpole.py --workdir=runs/pbrs

Runtime on this 2-core CPU: 85 s wall on a quiet machine (24 runs of 5e5 steps in one
compiled call: 3.8 s compile, 187k env steps/s, then the gymnasium check; 2026-12-02);
about 2 min 20 s with a GRPO run sharing the CPU (2026-11-26).

Results: results/pbrs_cartpole.md
"""

import ml_collections

from rlcore import experiment
from rlcore.agents import ppo


def get_config(arg=None):
  scale = float(arg) if arg else 10.0
  c = experiment.with_runner_defaults(ppo.default_config())
  c.env_name = "CartPole-v1"
  c.num_seeds = 8
  c.shaping.chain = "potential_based"
  c.shaping.potential = "cartpole_upright"
  c.sweep = ml_collections.ConfigDict({"shaping.scale": [0.0, scale, -scale]},
                                     allow_dotted_keys=True)
  c.chunk_updates = 61
  c.host_eval_env = "CartPole-v1"
  c.host_eval_episodes = 5
  return c
