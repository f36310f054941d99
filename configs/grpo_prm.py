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

Runtime on this 2-core CPU: 3-5 min per run with two runs side by side (100 steps;
sum-form is the slowest, its answers grow long), after the cached default SFT warm
start (0-3 filler steps; shared with configs/grpo_pref.py; `sft.import_npz` loads the
checked-in tests/data/sft_default.npz into the cache, see the README).

Measured through the runner with this config (lr warm-up of 20 optimizer steps), seeds
0-2: held-out pass@1 (T = 1, 384 problems) at the first evaluation (update 10) -> its
peak -> update 100, and the mean of the last five evaluations (updates 60-100); filler
steps per answer and the PRM's step-score sum, first 10 -> last 10 training steps.

| point | seed | held-out accuracy | last five | filler | PRM sum |
|---|---:|---|---:|---|---|
| verifier | 0 | 0.797 -> 0.888 -> 0.867 | 0.871 | 1.79 -> 1.04 | |
| prm_sum | 0 | 0.781 -> 0.823 -> 0.628 | 0.731 | 2.11 -> 11.37 | 5.94 -> 14.36 |
| prm_min | 0 | 0.810 -> 0.914 -> 0.914 | 0.899 | 1.51 -> 0.04 | |
| prm_min_verifier | 0 | 0.771 -> 0.909 -> 0.898 | 0.893 | 1.63 -> 0.07 | |
| verifier | 1 | 0.828 -> 0.885 -> 0.885 | 0.866 | 1.92 -> 1.50 | |
| prm_sum | 1 | 0.789 -> 0.885 -> 0.797 | 0.824 | 2.19 -> 8.38 | 5.91 -> 11.67 |
| prm_min | 1 | 0.820 -> 0.904 -> 0.904 | 0.892 | 1.49 -> 0.02 | |
| prm_min_verifier | 1 | 0.826 -> 0.919 -> 0.919 | 0.893 | 1.66 -> 0.06 | |
| verifier | 2 | 0.823 -> 0.885 -> 0.857 | 0.863 | 1.75 -> 1.80 | |
| prm_sum | 2 | 0.773 -> 0.844 -> 0.555 | 0.703 | 2.12 -> 12.03 | 5.82 -> 14.72 |
| prm_min | 2 | 0.826 -> 0.919 -> 0.909 | 0.908 | 1.57 -> 0.03 | |
| prm_min_verifier | 2 | 0.820 -> 0.901 -> 0.901 | 0.884 | 1.67 -> 0.07 | |

* Sum-form is hacked on every seed: the policy pads its answers with filler the PRM
  rates highly (2.1-2.2 -> 8.4-12.0 filler steps), its PRM reward climbs (5.8-5.9 ->
  11.7-14.7) and its held-out accuracy falls from its peak (0.82-0.89) to 0.56-0.80 at
  update 100, the lowest of all runs.
* Min-form is not hacked: filler falls to almost none and accuracy ends at 0.904-0.914.
* "PRM plus verifier is best" is not reproduced with this PRM. Over the three seeds
  (last five evaluations): min-form alone 0.900, min-form + verifier 0.890, verifier
  alone 0.867, sum-form 0.753. The verifier adds nothing to min-form here because this
  PRM's only flaws are its bonuses for filler and restatements, which min-form
  neutralises; otherwise it judges every step exactly, a denser version of the
  verifier's signal.
  Without the warm-up the ordering was the same (0.892 / 0.884 / 0.875 / 0.770).
* With a noisy PRM (`--config.process.prm_noise=0.5`: every step score off by a fixed
  uniform error of up to 0.5, so real and wrong steps overlap), min-form alone falls
  to 0.877 (0.882 / 0.878 / 0.871 on seeds 0-2) and min-form + verifier to 0.877
  (0.892 / 0.876 / 0.863): the verifier makes up for part of the PRM's errors but does
  not beat min-form alone, and both stay above the verifier alone (0.867, unchanged:
  it never reads the PRM). Sum-form is still hacked (filler 2.0-2.2 -> 5.4-8.5, PRM sum
  5.3 -> 7.9-10.6, held-out accuracy from its peak 0.86-0.88 to 0.73-0.76). The noise
  level 0.5 was chosen after seed 0 at 0.3, where min-form alone led by 2.4 points
  (0.907 against 0.883).
"""

from experiments import runner
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = runner.with_runner_defaults(grpo.default_config())
  c.reward = "process"
  c.lr_warmup_steps = 20         # 5 updates; see configs/grpo_length.py
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
