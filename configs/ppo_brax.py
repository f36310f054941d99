"""PPO on brax tasks: `--config=configs/ppo_brax.py:env=ant` (or `:ant`, `:env=ant,backend=mjx`).

Settings per task below (observation normalisation on, 1000-step episodes truncated,
not terminated). The brax backend defaults to the one measured fastest on CPU
(`rlcore.envs.brax_envs.DEFAULT_BACKEND`, spring); pass `backend=mjx` for MuJoCo physics.

Launch:

    python experiments/main.py --config=configs/ppo_brax.py:env=inverted_pendulum
    python experiments/main.py --config=configs/ppo_brax.py:env=ant --workdir=runs/ant

Runtime on this 2-core CPU (spring backend): inverted_pendulum 5e5 steps in 33 s on a
quiet machine (89k steps/s after 18 s of compiles, 2026-12-02), 54 s with other jobs
running (2026-11-26). reacher and ant were not run to completion here.

Results: results/ppo_brax.md
"""

from rlcore import experiment
from rlcore.agents import ppo

TASKS = {
    # env: (total_timesteps, num_envs, num_steps, num_minibatches, reward_scale, lr, gamma)
    "inverted_pendulum": (500_000, 32, 32, 4, 1.0, 3e-4, 0.99),
    "reacher": (2_000_000, 64, 64, 8, 1.0, 3e-4, 0.97),
    "ant": (5_000_000, 128, 32, 8, 0.1, 3e-4, 0.97),
}


def _parse(arg):
  out = {"env": "inverted_pendulum", "backend": None}
  for part in (arg or "").split(","):
    if not part:
      continue
    key, _, value = part.rpartition("=")
    key = key or "env"
    if key not in out:
      raise ValueError(f"configs/ppo_brax.py: unknown argument {key!r}; allowed: env, backend "
                       "(e.g. ':env=ant,backend=mjx').")
    out[key] = value
  if out["env"] not in TASKS:
    raise ValueError(f"configs/ppo_brax.py: env={out['env']!r} has no settings here; "
                     f"allowed: {', '.join(TASKS)}.")
  return out


def get_config(arg=None):
  args = _parse(arg)
  total, num_envs, num_steps, minibatches, reward_scale, lr, gamma = TASKS[args["env"]]
  c = experiment.with_runner_defaults(ppo.default_config())
  c.env_name = args["env"]
  c.env_backend = args["backend"]
  c.normalize_obs = True
  c.total_timesteps = total
  c.num_envs = num_envs
  c.num_steps = num_steps
  c.num_minibatches = minibatches
  c.update_epochs = 4
  c.lr = lr
  c.gamma = gamma
  c.gae_lambda = 0.95
  c.ent_coef = 1e-3
  c.hidden_sizes = (64, 64)
  c.shaping.chain = "reward_scale"
  c.shaping.reward_scale = reward_scale
  c.chunk_updates = 50
  return c
