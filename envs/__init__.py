"""Environments, installed as `rlcore.envs`: one functional protocol (`rlcore.envs.core`),
gymnasium's JAX control tasks, brax tasks, a host adapter for regular gymnasium envs,
tabular MDPs with exact solvers, BARFI's tasks (`rlcore.envs.barfi`), ORPO's tomato
gridworld with its exact occupancy solver (`rlcore.envs.tomato`), the zero-shot tasks
(a 2-D point mass, `rlcore.envs.pointmass`; four rooms, `rlcore.envs.gridworld`) with
their reward-free offline datasets (`rlcore.envs.offline`), and verifiable text tasks
(`rlcore.envs.text`).

The folder is `envs/` at the top of the repository; setup.cfg maps it to the
`rlcore.envs` package, so `pip install .` adds no top-level name but `rlcore`.
"""

from rlcore.envs.core import (ActionSpec, AutoReset, BatchedAutoReset, ClipAction,
                              Environment, EnvState, EpisodeStatistics, EpisodeStats,
                              FuncEnvAdapter, NormalizeObservation, ObsNormState, TimeLimit,
                              VmapEnv, Wrapper)
from rlcore.envs.registry import available, check_random_start, make, make_batched
