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

Runtime on this 2-core CPU (jax 0.10.2): 1 seed 2.8 s of training (178k env steps/s)
after a ~4 s compile (plus imports and the gymnasium check, under a minute in all); 8 seeds
(`--config.num_seeds=8`) 45 s wall on a quiet machine (25 s of training, 160k env
steps/s over the 8 seeds; 2 min 41 s with other jobs running); with `--cpu_devices=2`:
36 s wall, 354k env steps/s over the 8 seeds.

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
