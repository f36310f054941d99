"""rlcore: pure JAX transforms for reward shaping and credit assignment.

The public API is flat, as in rlax: `import rlcore; rlcore.gae(...)`. Each name
lives in one module of its family:

* `rlcore.returns`: discounted_returns, n_step_returns, lambda_returns, gae
* `rlcore.group`: grpo_advantages, rloo_advantages, passk_advantages, pass_at_k,
  opo_advantages, gpg_advantages, reinforce_pp_advantages,
  reinforce_pp_baseline_advantages, remax_advantages, score_preferences,
  win_rate_rewards, masked_whiten
* `rlcore.credit`: min_form, strict_min_form, sum_form, steps_to_tokens,
  step_ends_from_separators, token_returns, broadcast_to_tokens,
  rloo_token_baseline, pure_advantages
* `rlcore.losses`: ppo_clip_loss, policy_gradient_loss, kl_estimate (k1, k2, k3),
  aggregate_tokens (token-mean, seq-mean-token-sum, seq-mean-token-mean, constant)
* `rlcore.bilevel`: barfi_reward, barfi_reward_terms, barfi_primary_weight,
  init_barfi_reward, barfi_discount, barfi_penalty, barfi_policy_objective,
  barfi_hypergradient, neumann_inverse_hvp (BARFI, https://arxiv.org/abs/2310.19007)
* `rlcore.features`: fourier_basis, fourier_features, fourier_trig,
  fourier_features_from_trig, features_linear (fixed state features, fast on CPU)
* `rlcore.occupancy`: discriminator_loss, occupancy_penalty (kl, chi2, sqrt_chi2, tv),
  trimmed_mean, augment_rewards, sequence_log_ratio (the LLM case), categorical_kl,
  categorical_chi2, gaussian_kl, gaussian_chi2, proxy_true_correlation,
  coefficient_from_correlation
  (ORPO, https://arxiv.org/abs/2403.03185)
* `rlcore.latent`: project_to_sphere, orthonormality_loss, sample_task_latents,
  td_jepa_target, td_jepa_loss, td_jepa_actor_loss, latent_q, ema_update,
  infer_task_latent, goal_task_latent, effective_rank (TD-JEPA,
  https://arxiv.org/abs/2510.00739)
* `rlcore.shuffle`: permutation, sort_permutation, feistel_permutation, feistel
  (minibatch shuffles without a key-value sort, https://arxiv.org/abs/2106.06161)
* `rlcore.shaping`: potential_based, potential_shaping, laser, laser_d, laser_de,
  the length rewards, chain, stateless
"""

from rlcore import (bilevel, credit, features, group, latent, losses, occupancy, returns,
                    shaping, shuffle, types)
from rlcore.bilevel import (
    BarfiRewardParams, HypergradInfo, barfi_discount, barfi_hypergradient, barfi_penalty,
    barfi_policy_objective, barfi_primary_weight, barfi_reward, barfi_reward_terms,
    init_barfi_reward, neumann_inverse_hvp)
from rlcore.credit import (
    broadcast_to_tokens, min_form, pure_advantages, rloo_token_baseline,
    step_ends_from_separators, steps_to_tokens, strict_min_form, sum_form, token_returns)
from rlcore.group import (
    gpg_advantages, grpo_advantages, masked_whiten, opo_advantages, pass_at_k,
    passk_advantages, reinforce_pp_advantages, reinforce_pp_baseline_advantages,
    remax_advantages, rloo_advantages, score_preferences, win_rate_rewards)
from rlcore.latent import (
    effective_rank, ema_update, goal_task_latent, infer_task_latent, latent_q,
    orthonormality_loss, project_to_sphere, sample_task_latents, td_jepa_actor_loss,
    td_jepa_loss, td_jepa_target)
from rlcore.losses import (
    aggregate_tokens, kl_estimate, masked_mean, policy_gradient_loss, ppo_clip_loss)
from rlcore.occupancy import (
    augment_rewards, categorical_chi2, categorical_kl, coefficient_from_correlation,
    discriminator_loss, gaussian_chi2, gaussian_kl, occupancy_penalty, proxy_true_correlation,
    sequence_log_ratio, trimmed_mean)
from rlcore.returns import (
    discounted_returns, gae, lambda_returns, linear_recurrence, n_step_returns)
from rlcore.shaping import (
    EmptyState, LaserDState, LaserMonitorStats, ShapingTransform, chain,
    cosine_length_reward, dapo_overlong_penalty, group_length_penalty, kimi_length_reward,
    l1_exact_reward, l1_max_reward, laser, laser_d, laser_d_thresholds, laser_de,
    laser_difficulty, laser_monitor_statistics, laser_target_lengths, length_rewards,
    potential_based, potential_shaping, stateless, truncation_reward)
from rlcore.types import SequenceContext, Transition

__version__ = "0.1.0"
