"""PURE on chained arithmetic: verifier only vs PRM sum-form vs PRM min-form vs PRM
min-form plus verifier.

The process reward model (`envs.text.ProcessRewardModel`) scores each step; its flaw:
filler and restated steps ("ok", "so 22", "check 22=22") score higher than real steps.
Step rewards 2·score − 1 go through credit assignment (sum or min-form, T = 0.1), PURE's
leave-one-out token baseline, return-to-go and whitening; the verifiable reward
(correct − 1) goes on the last token. Claim tested (PURE, Cheng et al. 2025,
https://arxiv.org/abs/2504.15275): sum-form is hacked (PRM reward climbs while verifier
accuracy falls), min-form is not, and PRM plus verifier is best.

Launch:

    python experiments/main.py --config=configs/grpo_prm.py --workdir=runs/grpo_prm

Runtime on this 2-core CPU: 5.5-8 min per run beside another experiment (100 steps),
after the cached default SFT warm start (0-3 filler steps; shared with
configs/grpo_pref.py).

Measured (seed 0, held-out pass@1 first -> last eval): verifier 0.841 -> 0.906;
PRM sum-form 0.784 -> 0.828 with PRM step-score sum 5.35 -> 9.34 and filler steps
1.7 -> 6.3 per answer (hacked); PRM min-form 0.828 -> 0.909 (no filler);
min-form + verifier 0.828 -> 0.911.
"""

from experiments import runner
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = runner.with_runner_defaults(grpo.default_config())
  c.reward = "process"
  c.num_updates = 100
  c.chunk_updates = 10
  c.sweep_points = [
      {"process.prm_coef": 0.0, "process.verifier_coef": 1.0, "_name": "verifier"},
      {"process.credit": "sum", "process.prm_coef": 1.0, "process.verifier_coef": 0.0,
       "_name": "prm_sum"},
      {"process.credit": "min", "process.prm_coef": 1.0, "process.verifier_coef": 0.0,
       "_name": "prm_min"},
      {"process.credit": "min", "process.prm_coef": 1.0, "process.verifier_coef": 1.0,
       "_name": "prm_min_verifier"},
  ]
  return c
