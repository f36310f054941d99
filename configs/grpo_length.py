"""GRPO on chained arithmetic: no shaping vs LASER vs LASER-D vs LASER-DE vs the
group-based length penalty (Efficient Reasoning).

A ~0.3M-parameter character-level LM is warm-started (SFT, cached) on verbose solutions
(0-6 filler steps such as "ok", "so 22", "check 22=22", 4.15 on average), half of
which leave out their last step and write the answer at once (`sft.skip_rate = 0.5`):
a shortcut 7-8 tokens shorter that the warm-started policy gets right less often
(0.47-0.68 by difficulty, against 0.65-0.75 for answers written out), so that shorter
answers can cost accuracy. It is then trained with GRPO (P = 16 prompts x G = 8, clip
0.2 / 0.28, k3 KL with DeepSeekMath's beta = 0.04) on the verifier score (1 / -0.5 /
-1) with each length-shaping method applied before the group normalisation (LASER:
L_T = 40, alpha = 0.5; LASER-D/DE: candidates 40..128 every 8, i.e. the search starts
at LASER's L_T as in the paper's equal-L_T comparisons, monitor every 20 steps; group
penalty: alpha = 0.4). The claim tested (LASER, Liu et al. 2025,
https://arxiv.org/abs/2505.15612): LASER variants cut response length by >= 30% against
no shaping with <= 2 points of held-out accuracy lost; LASER-D keeps hard problems
longer than easy ones; the group-based penalty trades accuracy for length.

Launch:

    python experiments/main.py --config=configs/grpo_length.py --workdir=runs/grpo_length

Runtime on this 2-core CPU: 3-6 min per run (100 steps) with two runs side by side,
after a one-time SFT warm start (1500 steps, 8 min, cached in ~/.cache/rlcore/sft).

Measured with this config: held-out pass@1 at T = 1 on 384 problems, averaged over the
last five evaluations (steps 60-100), with its change against no shaping of the same
seed in points; length in tokens with EOS, by difficulty easy / medium / hard in
brackets; the cut is against no shaping of the same seed; the last column is the
accuracy on hard problems (5-6 operations).

| run | seed | accuracy | change | length | cut | hard |
|---|---:|---:|---:|---|---:|---:|
| none | 0 | 0.817 | | 51.2 (37.6 / 51.5 / 65.9) | | 0.718 |
| LASER | 0 | 0.802 | -1.5 | 30.5 (17.3 / 31.0 / 44.9) | 40% | 0.669 |
| LASER-D | 0 | 0.826 | +0.9 | 31.0 (17.8 / 31.4 / 45.2) | 39% | 0.716 |
| LASER-DE | 0 | 0.809 | -0.7 | 30.9 (17.3 / 31.4 / 45.4) | 40% | 0.685 |
| group penalty | 0 | 0.738 | -7.9 | 26.7 (11.3 / 26.2 / 44.4) | 48% | 0.677 |
| none | 1 | 0.830 | | 46.0 (32.1 / 47.8 / 59.9) | | 0.727 |
| LASER | 1 | 0.787 | -4.3 | 30.3 (17.7 / 29.3 / 45.3) | 34% | 0.644 |
| LASER-D | 1 | 0.828 | -0.3 | 31.6 (18.9 / 31.2 / 46.3) | 31% | 0.703 |
| LASER-DE | 1 | 0.821 | -0.9 | 32.2 (19.1 / 31.7 / 47.5) | 30% | 0.703 |
| group penalty | 1 | 0.692 | -13.9 | 25.2 (9.1 / 25.4 / 43.1) | 45% | 0.632 |
| none | 2 | 0.829 | | 49.6 (36.9 / 50.4 / 63.0) | | 0.727 |
| LASER | 2 | 0.792 | -3.7 | 31.3 (19.1 / 31.1 / 45.1) | 37% | 0.660 |
| LASER-D | 2 | 0.795 | -3.3 | 31.5 (19.1 / 31.5 / 45.4) | 36% | 0.673 |
| LASER-DE | 2 | 0.830 | +0.2 | 31.4 (18.7 / 31.3 / 45.8) | 37% | 0.715 |
| group penalty | 2 | 0.703 | -12.6 | 24.7 (9.8 / 24.0 / 42.0) | 50% | 0.647 |
| none | 3 | 0.820 | | 55.9 (45.2 / 56.2 / 67.7) | | 0.732 |
| LASER | 3 | 0.814 | -0.6 | 31.2 (18.4 / 31.4 / 45.4) | 44% | 0.674 |
| LASER-D | 3 | 0.807 | -1.2 | 30.4 (18.0 / 30.6 / 44.2) | 46% | 0.687 |
| LASER-DE | 3 | 0.813 | -0.7 | 31.6 (18.8 / 31.4 / 46.0) | 44% | 0.689 |
| group penalty | 3 | 0.715 | -10.5 | 25.2 (10.1 / 24.7 / 42.7) | 55% | 0.629 |
| none | 4 | 0.848 | | 52.8 (41.5 / 53.8 / 64.5) | | 0.744 |
| LASER | 4 | 0.832 | -1.6 | 32.0 (18.3 / 31.9 / 47.3) | 39% | 0.735 |
| LASER-D | 4 | 0.840 | -0.8 | 32.2 (19.1 / 32.2 / 47.0) | 39% | 0.719 |
| LASER-DE | 4 | 0.823 | -2.5 | 31.2 (18.3 / 30.8 / 46.1) | 41% | 0.708 |
| group penalty | 4 | 0.705 | -14.3 | 25.7 (10.0 / 25.5 / 43.4) | 51% | 0.653 |

Means (accuracy, change, length, cut of the mean length, hard-problem accuracy):

| run | seeds 0-2 | seeds 0-4 |
|---|---|---|
| none | 0.825 / 48.9 / 0.724 | 0.829 / 51.1 / 0.730 |
| LASER | 0.794 (-3.2) / 30.7 / 37% / 0.658 | 0.805 (-2.3) / 31.0 / 39% / 0.676 |
| LASER-D | 0.816 (-0.9) / 31.4 / 36% / 0.697 | 0.819 (-1.0) / 31.3 / 39% / 0.700 |
| LASER-DE | 0.820 (-0.5) / 31.5 / 36% / 0.701 | 0.819 (-0.9) / 31.5 / 38% / 0.700 |
| group penalty | 0.711 (-11.5) / 25.5 / 48% / 0.652 | 0.710 (-11.8) / 25.5 / 50% / 0.648 |

Seeds 3 and 4 were run last, after the settings were fixed on seeds 0-2.

* The group penalty trades accuracy for length, on every seed: it is the shortest run
  (24.7-26.7 tokens; easy answers 9.1-11.3 tokens, below the 15 of a written-out
  minimal easy solution) and loses 7.9-14.3 points. It rewards a correct answer for
  being shorter than the other correct answers of its group, however much accuracy
  the shorter form costs, and GRPO's normalisation amplifies that difference in groups
  that are all correct.
* LASER-D and LASER-DE cut 30-46% on every seed (39% and 38% on average) and lose 1.0
  and 0.9 points on average; LASER-D loses 3.3 on seed 2 (+0.9 to -1.2 on the
  others), LASER-DE 2.5 on seed 4 (+0.2 to -0.9 on the others).
* LASER cuts 34-44% but loses 0.6-4.3 points (2.3 on average; 3.2 on seeds 0-2),
  mostly on hard problems (0.676 against 0.730 on average): its single target of 40
  tokens is below the written-out solution of a 6-operation problem (about 49
  tokens), so it pays for the shortcut there. LASER-D keeps hard problems longer
  than easy ones by giving low-accuracy prompts the batch's longest answer as their
  target (final targets: 40 tokens for the easy bucket, 40-48 for the medium one,
  the fallback for the hard one), and holds hard accuracy better than LASER on
  average (0.700 against 0.676; worse on seed 4), although its hard answers end
  within 1.2 tokens of LASER's. A looser LASER target, L_T = 44 (tried after the
  seed 0-2 results, on seeds 0 and 1 only, so not adopted), lost 0.5 and 2.6 points
  at 39% and 32% cuts.
* Two pilots chose the LASER-D search range. With candidates from 16 (H200 GPU, jax
  0.11.2, a warm start trained there; seeds 0-2), the easy bucket's target fell to
  16-24 tokens, below a written-out two-operation answer, and LASER-D / LASER-DE lost
  2.6-6.3 / 6.0-8.4 points; LASER lost 0.1-2.2 and the group penalty 10.1-13.1 in
  those runs. From 32 (this CPU, seed 0): LASER-D 0.819 (+0.2), 40% cut.
* Without the shortcut in the warm start (`sft.skip_rate = 0`, LASER-D from 16; five
  seeds for the LASER family, three for the rest), no variant lost more than 1.1
  points, the cuts were LASER 33.5%, LASER-D 29.9%, LASER-DE 31.0% on average, and the
  group penalty did not trade: it reached the minimal solutions (30.0 tokens, a 40%
  cut) with the best accuracy of all (0.883 against 0.850 unshaped), because there
  the minimal written-out solution was also the most reliable one and no shorter one
  was in the policy's repertoire (step-skipping stayed under 1% of its answers).
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
  # Half the warm-start examples leave out their last step and write the answer
  # straight away: a shortcut 7-8 tokens shorter that the warm-started policy gets
  # right less often (0.47-0.68 of the time, against 0.65-0.75 written out), so that
  # shorter answers can cost accuracy, as they do for reasoning models.
  c.sft.skip_rate = 0.5
  c.sft.max_skip = 1
  c.max_completion_len = 128     # a hard problem with 6 fillers needs up to 124
  c.kl_coef = 0.04               # DeepSeekMath's GRPO β
  # Adam's first steps are sign steps of size lr on every parameter; at lr = 1e-4 they
  # moved single near-tie tokens by 10+ nats in update 1 (k3 approx_kl 31-46 on seed
  # 2, whose unshaped run then drifted short). 20 optimizer steps = 5 updates.
  c.lr_warmup_steps = 20
  c.shaping.target_length = 40
  # LASER-D/DE search their targets from LASER's L_T up, as in the paper's
  # comparisons at equal L_T (arXiv 2505.15612, Table 3).
  c.shaping.laser_lower = 40
  c.shaping.laser_upper = 128
  c.sweep_points = [
      {"shaping.chain": "", "_name": "none"},
      {"shaping.chain": "laser", "_name": "laser"},
      {"shaping.chain": "laser_d", "_name": "laser_d"},
      {"shaping.chain": "laser_de", "_name": "laser_de"},
      {"shaping.chain": "group_length_penalty", "_name": "group"},
  ]
  return c
