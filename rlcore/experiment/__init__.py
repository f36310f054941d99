"""The experiment runner as library code: one loop for every agent of the protocol.

    from rlcore import experiment
    config = experiment.load_config("configs/ppo_cartpole.py")
    config.num_seeds = 4
    summaries = experiment.run(config, "runs/cartpole")      # train, resume, summarise
    states, agent, meta = experiment.load(config, "runs/cartpole")

* `configs`: the runner's keys (`RUNNER_DEFAULTS`), `load_config`, `prepare_config`
  (unknown keys and bad sweeps fail at start), `override`;
* `sweeps`: `plan` turns `config.sweep` / `config.sweep_points` into groups of runs;
* `execution`: one vmapped (and sharded) call for vectorized agents, one run at a
  time for host agents;
* `runner`: `run`, `run_group` and `load`; `summary`: records, summary.json, plots;
* `integrity`: the workdir lock, the config record of each run (run.json), divergence;
* `descriptions`: `describe`, every key of a config with its value and meaning.

`python experiments/main.py --config=configs/<name>.py` is the command-line front.
See docs/design.md, "Agents and the runner".
"""

from rlcore.experiment.configs import (RUNNER_DEFAULTS, SHARD_MODES, flat_keys, load_config,
                                       override, prepare_config, with_runner_defaults)
from rlcore.experiment.descriptions import describe
from rlcore.experiment.runner import load, run, run_group, trained_run
from rlcore.experiment.sweeps import Group, plan, point_name

__all__ = [
    "Group", "RUNNER_DEFAULTS", "SHARD_MODES", "describe", "flat_keys", "load", "load_config",
    "override", "plan", "point_name", "prepare_config", "run", "run_group", "trained_run",
    "with_runner_defaults",
]
