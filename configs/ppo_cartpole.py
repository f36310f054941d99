"""PPO on CartPole-v1 (gymnasium's functional JAX CartPole) with PureJaxRL's settings.

4 envs x 128 steps, 4 epochs of 4 minibatches, lr 2.5e-4 annealed, 5e5 env steps;
time limits are truncations (bootstrapped), unlike PureJaxRL. After training, the
greedy policy of every seed is also run on gymnasium's own `CartPole-v1`.

Launch: the README's first command ends in `python experiments/main.py`, which trains
this config with its defaults into runs/ppo_cartpole/. With flags:

    python experiments/main.py --config=configs/ppo_cartpole.py --workdir=runs/cartpole
    python experiments/main.py --config=configs/ppo_cartpole.py --config.num_seeds=8
    python experiments/main.py --config=configs/ppo_cartpole.py --config.num_seeds=8 \
        --cpu_devices=2          # the 8 seeds sharded over both cores

Runtime on this 2-core CPU (jax 0.10.2), wall with imports, compile and the gymnasium
check: 1 seed 13 s on a quiet machine (3.1 s compile, 161k env steps/s, 2026-12-02);
8 seeds 39 s quiet (176k env steps/s over the 8 seeds), 2 min 41 s with other jobs
running (2026-11-26); 8 seeds with `--cpu_devices=2` 34 s quiet (353k env steps/s).

Results: results/ppo_cartpole.md
"""

from rlcore import experiment
from rlcore.agents import ppo


def get_config(arg=None):
  del arg
  c = experiment.with_runner_defaults(ppo.default_config())
  c.env_name = "CartPole-v1"
  c.host_eval_env = "CartPole-v1"
  c.host_eval_episodes = 10
  c.chunk_updates = 61     # 976 updates = 16 chunks of 61: one compiled chunk
  return c
