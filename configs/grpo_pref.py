"""A pointwise reward model with tiny score gaps plus noise: std-normalised GRPO vs
Pref-GRPO win rates with a tie margin.

The reward model scores 0.7 + 0.002·correct + N(0, 0.004²): the signal is below the
noise. GRPO's z-score turns these sub-noise differences into unit-scale advantages
("illusory advantage"), so the policy follows noise and drifts from its start (KL and
accuracy move). Win rates with a tie margin call pairs closer than the margin ties:
at 0.01 (about 1.8 standard deviations of a pair's score difference) some pairs still
differ and GRPO's normalisation of the win rates amplifies them again; at 0.03 nearly
every pair is a tie, advantages are near zero and the policy stays put. Claim tested (Pref-GRPO, Wang et al. 2025,
https://arxiv.org/abs/2508.20751; spec §1 and demo D1).

Launch:

    python experiments/main.py --config=configs/grpo_pref.py --workdir=runs/grpo_pref

Runtime on this 2-core CPU: 3-7 min per run (100 steps), after the cached SFT warm
start shared with configs/grpo_length.py. Measured (seed 0, 384 held-out problems):
pointwise GRPO |A| 0.77, KL up to 0.26, accuracy 0.74 -> 0.54; win rates with margin
0.01 |A| 0.39, accuracy -> 0.44 (also drifts); margin 0.03 |A| 0.00, KL <= 0.011,
accuracy 0.67-0.74 (stable).
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
      {"pref.enabled": True, "pref.margin": 0.03, "_name": "pref_grpo_margin_0.03"},
  ]
  return c
