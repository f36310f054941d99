"""PPO on Pendulum-v1 (gymnasium's functional JAX Pendulum), continuous actions.

Diagonal-Gaussian policy, observation normalisation, rewards scaled by 0.1 through
the shaping chain (`reward_scale`), 16 envs x 128 steps, 1e6 env steps. After
training, the greedy policy is also run on gymnasium's own `Pendulum-v1`.

Launch:

    python experiments/main.py --config=configs/ppo_pendulum.py --workdir=runs/pendulum

Runtime on this 2-core CPU: 29 s on a quiet machine (1e6 steps, 65k steps/s after a
6 s compile, 2026-12-02); 34 s with other jobs running (2026-11-26).

Results: results/ppo_pendulum.md
"""

from rlcore import experiment
from rlcore.agents import ppo


def get_config(arg=None):
  del arg
  c = experiment.with_runner_defaults(ppo.default_config())
  c.env_name = "Pendulum-v1"
  c.normalize_obs = True
  c.num_envs = 16
  c.num_steps = 128
  c.total_timesteps = 1_000_000
  c.update_epochs = 10
  c.num_minibatches = 32
  c.lr = 1e-3
  c.gamma = 0.95
  c.gae_lambda = 0.95
  c.ent_coef = 0.0
  c.clip_eps = 0.2
  c.shaping.chain = "reward_scale"
  c.shaping.reward_scale = 0.1
  c.host_eval_env = "Pendulum-v1"
  c.host_eval_episodes = 5
  return c
