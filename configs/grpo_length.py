"""GRPO on chained arithmetic: no shaping vs LASER vs LASER-D vs LASER-DE vs the
group-based length penalty (Efficient Reasoning).

A ~0.3M-parameter character-level LM, warm-started (SFT, cached) on verbose solutions
half of which skip their last step (a shortcut that is right less often), is trained
with GRPO (P = 16 prompts x G = 8, clip 0.2 / 0.28, k3 KL with beta = 0.04, 100
updates) on the verifier score (1 / -0.5 / -1), each length-shaping method applied
before the group normalisation (LASER: L_T = 44, alpha = 0.5; LASER-D/DE: candidates
40..128 every 8, monitor every 20 steps; group penalty: alpha = 0.4). The claim tested
(LASER, Liu et al. 2025, https://arxiv.org/abs/2505.15612): LASER variants cut response
length by >= 30% against no shaping with <= 2 points of held-out accuracy lost; LASER-D
keeps hard problems longer than easy ones; the group-based penalty trades accuracy for
length.

Launch (one seed per run; add `--config.seed=N` and a workdir per seed for others):

    python experiments/main.py --config=configs/grpo_length.py --workdir=runs/grpo_length

Runtime on this 2-core CPU: 3-6 min per run (100 steps) with two runs side by side,
after a one-time SFT warm start (1500 steps, 8 min, cached in ~/.cache/rlcore/sft).

Results: results/grpo_length.md (KL spikes traced: results/grpo_kl_spikes.md)
"""

from rlcore import experiment
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = experiment.with_runner_defaults(grpo.default_config())
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
  # Without a warm-up, Adam's first sign steps spiked the KL in update 1 (`optimizer`
  # in rlcore/agents/grpo/update.py; results/grpo_length.md). 20 steps = 5 updates.
  c.lr_warmup_steps = 20
  # LASER's L_T: 40 cost more accuracy on hard problems (results/grpo_length.md).
  c.shaping.target_length = 44
  # LASER-D/DE's candidates start at 40: from 16 the easy target fell too short
  # (results/grpo_length.md).
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
