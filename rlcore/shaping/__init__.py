"""Reward shaping: potential-based, LASER family, other length rewards, `chain`.

One idea per file: `potential.py` (Ng et al. / Grześ), `laser.py` (LASER, LASER-D,
LASER-DE), `length.py` (the other length rewards LASER unifies), `base.py`
(stateful transforms and `chain`).
"""

from rlcore.shaping.base import EmptyState, ShapingTransform, chain, stateless
from rlcore.shaping.laser import (
    BUCKETS, EASY, FALLBACK, HARD, MEDIUM, LaserDState, LaserMonitorStats, laser,
    laser_d, laser_d_thresholds, laser_de, laser_difficulty, laser_monitor_statistics,
    laser_target_lengths)
from rlcore.shaping.length import (
    cosine_length_reward, dapo_overlong_penalty, group_length_penalty, kimi_length_reward,
    l1_exact_reward, l1_max_reward, truncation_reward)
from rlcore.shaping.potential import potential_based, potential_shaping

# The length rewards LASER's framework unifies, by name (for configs).
length_rewards = {
    "truncation": truncation_reward,
    "l1_exact": l1_exact_reward,
    "l1_max": l1_max_reward,
    "kimi": kimi_length_reward,
    "group": group_length_penalty,
    "dapo_overlong": dapo_overlong_penalty,
    "cosine": cosine_length_reward,
    "laser": laser,
}
