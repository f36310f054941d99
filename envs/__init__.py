"""Environments: one functional protocol (`envs.core`), gymnasium's JAX control tasks,
brax tasks, a host adapter for regular gymnasium envs, and tabular MDPs with exact
solvers."""

from envs.core import (ActionSpec, AutoReset, BatchedAutoReset, ClipAction, Environment, EnvState,
                       EpisodeStatistics, FuncEnvAdapter, NormalizeObservation,
                       TimeLimit, VmapEnv, Wrapper)
from envs.registry import available, make, make_batched
