"""A pointwise reward model with tiny score gaps plus noise: std-normalised GRPO vs
Pref-GRPO win rates with a tie margin.

The reward model scores 0.7 + 0.002·correct + N(0, 0.004²): the signal is below the
noise. GRPO's z-score turns these sub-noise differences into unit-scale advantages
("illusory advantage"), so the policy follows noise and drifts from its start (KL and
accuracy move); win rates with a tie margin of 0.01 call nearly every pair a tie, give
near-zero advantages and stay put. Claim tested (Pref-GRPO, Wang et al. 2025,
https://arxiv.org/abs/2508.20751; spec §1 and demo D1).

Launch:

    python experiments/main.py --config=configs/grpo_pref.py --workdir=runs/grpo_pref

RUNTIME
"""

from experiments import runner
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = runner.with_runner_defaults(grpo.default_config())
  c.reward = "pointwise_rm"
  c.num_updates = 100
  c.chunk_updates = 10
  c.sweep_points = [
      {"pref.enabled": False, "_name": "pointwise_grpo"},
      {"pref.enabled": True, "_name": "pref_grpo_win_rate"},
  ]
  return c
