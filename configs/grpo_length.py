"""GRPO on chained arithmetic: no shaping vs LASER vs LASER-D vs LASER-DE vs the
group-based length penalty (Efficient Reasoning).

A ~0.3M-parameter character-level LM is warm-started (SFT, cached) on verbose solutions
(0-6 filler steps such as "ok", "so 22", "check 22=22", 4.15 on average: 58 tokens per
solution against 30 for the minimal ones), then trained with GRPO (P = 16 prompts x
G = 8, clip 0.2 / 0.28, k3 KL with DeepSeekMath's beta = 0.04) on the verifier score
(1 / -0.5 / -1) with each length-shaping method applied before the group normalisation
(LASER: L_T = 40, alpha = 0.5; LASER-D/DE: candidates 16..128 every 8, monitor every
20 steps; group penalty: alpha = 0.4). The claim tested (LASER, Liu et al. 2025,
https://arxiv.org/abs/2505.15612): LASER variants cut response length by >= 30% against
no shaping with <= 2 points of held-out accuracy lost; LASER-D keeps hard problems
longer than easy ones; the group-based penalty trades accuracy for length.

Launch:

    python experiments/main.py --config=configs/grpo_length.py --workdir=runs/grpo_length

Runtime on this 2-core CPU: 4-5 min per run (100 steps) with two runs side by side,
after a one-time SFT warm start (1500 steps, 7 min, cached in ~/.cache/rlcore/sft).

Measured: held-out pass@1 at T = 1 on 384 problems, averaged over the last five
evaluations (steps 60-100); length in tokens with EOS, by difficulty easy / medium /
hard in brackets; the cut is against no shaping of the same seed.

| run | seed | accuracy | length | cut |
|---|---:|---:|---|---:|
| none | 0 | 0.845 | 51.0 (40.6 / 50.4 / 63.2) | |
| LASER | 0 | 0.872 | 32.6 (19.6 / 31.3 / 48.4) | 36% |
| LASER-D | 0 | 0.864 | 34.1 (15.9 / 34.0 / 54.6) | 33% |
| LASER-DE | 0 | 0.868 | 33.4 (15.9 / 33.7 / 52.6) | 35% |
| group penalty | 0 | 0.886 | 30.2 (15.5 / 30.4 / 46.5) | 41% |
| none | 1 | 0.841 | 51.4 (40.2 / 52.1 / 63.4) | |
| LASER | 1 | 0.849 | 32.9 (19.6 / 31.8 / 48.9) | 36% |
| LASER-D | 1 | 0.844 | 34.2 (16.3 / 34.6 / 53.9) | 33% |
| LASER-DE | 1 | 0.854 | 36.3 (17.0 / 36.7 / 57.7) | 29% |
| group penalty | 1 | 0.876 | 30.1 (15.2 / 30.4 / 46.5) | 41% |
| none | 2 | 0.860 | 45.0 (30.9 / 45.6 / 60.2) | |
| LASER | 2 | 0.886 | 33.5 (19.9 / 32.6 / 49.6) | 26% |
| LASER-D | 2 | 0.881 | 34.4 (16.4 / 34.6 / 54.3) | 24% |
| LASER-DE | 2 | 0.857 | 35.9 (17.0 / 36.2 / 56.7) | 20% |
| group penalty | 2 | 0.884 | 30.1 (15.4 / 30.3 / 46.4) | 33% |

Over the three seeds (accuracy / length, cut of the mean length):

| run | accuracy | length | cut |
|---|---:|---:|---:|
| none | 0.849 | 49.1 | |
| LASER | 0.869 | 33.0 | 33% |
| LASER-D | 0.863 | 34.2 | 30% |
| LASER-DE | 0.860 | 35.2 | 28% |
| group penalty | 0.882 | 30.1 | 39% |

* The LASER variants cut length by 20-36% and lose at most 0.3 points of accuracy
  (-0.3 to +2.7). The 30% claim holds on average for LASER (33%) and LASER-D (30%),
  not for LASER-DE (28%), and in five of the nine runs. Seed 2 is the exception: its
  unshaped run drifted shorter by itself (45.0 against 51), so LASER's 33.5 tokens
  there is a 26% cut.
  LASER ends at 32.6-33.5 tokens on every seed and the unshaped runs at 45-51 (the KL
  term holds them near the warm start's 53-58). A lower target does not help: with
  L_T = 36, LASER ended at 32.1 (seed 0) and 32.7 (seed 1), within noise of L_T = 40,
  because the answers are then close to the minimal solutions (29.5).
* LASER-D's targets end at 24 tokens for easy prompts and 56 for medium ones (seed 0;
  16 and 40 on seed 1; hard: the batch's longest answer, its fallback), so it leaves
  hard answers 5-6 tokens longer than plain LASER does (54.6 against 48.4; 53.9 against
  48.9; 54.3 against 49.6 on seed 2) and easy ones 3-4 shorter (15.9 against 19.6; 16.3
  against 19.6; 16.4 against 19.9).
* The group penalty does **not** trade accuracy for length here: on all three seeds it
  reaches the minimal solutions (29.5 tokens on these 384 problems: 15.1 / 29.7 / 45.3)
  with the best accuracy of all. On this task the minimal solution is also the most
  reliable one; step-skipping, the shortcut that would cost accuracy, stayed under 1%
  of its answers (step 100, seed 0). Run for 300 steps (seed 0) it still did not trade: 0.915 / 29.7
  over the last five evaluations.

With the default warm start (0-3 fillers, 42 tokens; kl_coef 0.001) the cut was 6-10%:
the unshaped run shed its filler too, and the minimal solutions left room for at most
30%. That setting is still `grpo.default_config()`, used by grpo_prm.py and grpo_pref.py.
"""

from experiments import runner
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = runner.with_runner_defaults(grpo.default_config())
  c.num_updates = 100
  c.chunk_updates = 10
  # A verbose warm start (0-6 filler steps, 4.15 on average: 58 tokens against 30 for
  # the minimal solutions), so that length has room to fall.
  c.sft.verbosity_probs = (0.05, 0.05, 0.1, 0.1, 0.2, 0.2, 0.3)
  c.max_completion_len = 128     # a hard problem with 6 fillers needs up to 124
  c.kl_coef = 0.04               # DeepSeekMath's GRPO β
  c.shaping.target_length = 40
  c.shaping.laser_upper = 128
  c.sweep_points = [
      {"shaping.chain": "", "_name": "none"},
      {"shaping.chain": "laser", "_name": "laser"},
      {"shaping.chain": "laser_d", "_name": "laser_d"},
      {"shaping.chain": "laser_de", "_name": "laser_de"},
      {"shaping.chain": "group_length_penalty", "_name": "group"},
  ]
  return c
