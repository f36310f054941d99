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

Runtime on this 2-core CPU: 3-6 min per run (100 steps) with two runs side by side,
after a one-time SFT warm start (1500 steps, 7 min, cached in ~/.cache/rlcore/sft).

Measured with this config (lr warm-up of 20 optimizer steps): held-out pass@1 at T = 1
on 384 problems, averaged over the last five evaluations (steps 60-100); length in
tokens with EOS, by difficulty easy / medium / hard in brackets; the cut is against no
shaping of the same seed.

| run | seed | accuracy | length | cut |
|---|---:|---:|---|---:|
| none | 0 | 0.859 | 47.6 (37.7 / 47.8 / 58.6) | |
| LASER | 0 | 0.874 | 32.6 (18.9 / 31.7 / 48.9) | 32% |
| LASER-D | 0 | 0.867 | 33.1 (15.8 / 33.1 / 52.5) | 30% |
| LASER-DE | 0 | 0.848 | 32.8 (15.8 / 33.2 / 51.3) | 31% |
| group penalty | 0 | 0.882 | 29.9 (15.2 / 30.2 / 46.2) | 37% |
| none | 1 | 0.849 | 48.9 (39.4 / 48.5 / 60.1) | |
| LASER | 1 | 0.879 | 33.0 (19.0 / 32.1 / 49.6) | 33% |
| LASER-D | 1 | 0.840 | 36.4 (17.0 / 37.4 / 57.3) | 26% |
| LASER-DE | 1 | 0.848 | 34.8 (16.5 / 35.2 / 55.0) | 29% |
| group penalty | 1 | 0.878 | 30.1 (15.2 / 30.3 / 46.7) | 38% |
| none | 2 | 0.843 | 53.1 (40.4 / 54.0 / 66.6) | |
| LASER | 2 | 0.878 | 33.0 (19.9 / 31.9 / 48.9) | 38% |
| LASER-D | 2 | 0.860 | 36.2 (16.8 / 36.9 / 57.4) | 32% |
| LASER-DE | 2 | 0.869 | 35.9 (16.5 / 36.4 / 57.3) | 32% |
| group penalty | 2 | 0.890 | 29.9 (15.3 / 30.0 / 46.3) | 44% |
| none | 3 | 0.855 | 47.3 (36.5 / 47.2 / 59.7) | |
| LASER | 3 | 0.883 | 32.5 (19.8 / 31.3 / 47.9) | 31% |
| LASER-D | 3 | 0.872 | 33.6 (16.9 / 33.7 / 52.2) | 29% |
| LASER-DE | 3 | 0.876 | 33.2 (16.2 / 33.5 / 52.1) | 30% (29.8) |
| none | 4 | 0.868 | 49.0 (37.9 / 48.8 / 61.6) | |
| LASER | 4 | 0.874 | 32.5 (18.7 / 31.7 / 48.6) | 34% |
| LASER-D | 4 | 0.869 | 33.1 (16.4 / 32.7 / 52.2) | 32% |
| LASER-DE | 4 | 0.882 | 33.0 (16.4 / 32.8 / 51.8) | 33% |

Means (accuracy / length, cut of the mean length); seeds 3 and 4 were added for the
LASER family only:

| run | seeds 0-2 | cut | seeds 0-4 | cut |
|---|---:|---:|---:|---:|
| none | 0.850 / 49.9 | | 0.855 / 49.2 | |
| LASER | 0.877 / 32.9 | 34% | 0.878 / 32.7 | 33.5% |
| LASER-D | 0.856 / 35.2 | 29% | 0.862 / 34.5 | 29.9% |
| LASER-DE | 0.855 / 34.5 | 31% | 0.865 / 33.9 | 31.0% |
| group penalty | 0.883 / 30.0 | 40% | | |

* No LASER variant loses more than 1.1 points of accuracy on any seed (-1.1 to +3.5).
  LASER cuts at least 30% on every seed (31-38%); LASER-DE on three of five (29-33%,
  31.0% on average); LASER-D on three of five (26-32%, 29.9% on average, at the line:
  on seed 1 its held-out length went from 32.3 at step 40 to 34.7 at step 60 and,
  after that step's monitor pass raised its medium target from 48 to 56, to
  36.7-39.1). LASER ends at 32.5-33.0 tokens on every seed; the unshaped runs at 47-53
  (the KL term holds them near the warm start's 53-58). A lower target does not help:
  with L_T = 36 (no warm-up), LASER ended at 32.1 (seed 0) and 32.7 (seed 1), because
  the answers are then close to the minimal solutions (29.5).
* Without the warm-up (lr_warmup_steps = 0), update 1 moved single tokens by 10+ nats
  on seed 2 (k3 approx_kl 31-46 in all five runs) and its unshaped run drifted short
  (45.0 tokens), so the cuts there were 20-26%; the three-seed cuts were then 33%
  (LASER), 30% (LASER-D) and 28% (LASER-DE) at 0.849-0.882 accuracy.
* LASER-D's targets end at 24 tokens for easy prompts and 56 for medium ones (seed 0;
  16 and 56 on seeds 1 and 2; hard: the batch's longest answer, its fallback, or 80),
  so it leaves hard answers 4-9 tokens longer than plain LASER does (52.5 against 48.9;
  57.3 against 49.6; 57.4 against 48.9; seeds 3-4: 52.2 against 47.9 and 48.6) and easy
  ones 2-3 shorter (15.8 against 18.9; 17.0 against 19.0; 16.8 against 19.9; 16.9 and
  16.4 against 19.8 and 18.7).
* The group penalty does **not** trade accuracy for length here: on all three seeds it
  reaches the minimal solutions (29.5 tokens on these 384 problems: 15.1 / 29.7 / 45.3)
  with the best accuracy of all. On this task the minimal solution is also the most
  reliable one; step-skipping, the shortcut that would cost accuracy, stayed under 1%
  of its answers (step 100, seed 0, no warm-up). Run for 300 steps (seed 0, no
  warm-up) it still did not trade: 0.915 / 29.7 over the last five evaluations.

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
  # Adam's first steps are sign steps of size lr on every parameter; at lr = 1e-4 they
  # moved single near-tie tokens by 10+ nats in update 1 (k3 approx_kl 31-46 on seed
  # 2, whose unshaped run then drifted short). 20 optimizer steps = 5 updates.
  c.lr_warmup_steps = 20
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
