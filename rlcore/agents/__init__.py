"""Agents composed from the transforms, all of one protocol (`rlcore.agents.Agent`).

* `rlcore.agents.ppo`: PPO with pluggable reward shaping (control tasks);
* `rlcore.agents.reinforce`: REINFORCE with a learned baseline (control tasks);
* `rlcore.agents.grpo`: GRPO-style training of a causal LM on verifiable text tasks
  (a host loop), with `rlcore.agents.sft` its supervised warm start.

`rlcore.experiment` runs any registered family from a config (`config.agent`);
`register` adds one. Importing this package imports none of the families.
"""

from rlcore.agents.protocol import (Agent, AgentFamily, check_agent, get_family, register,
                                    registered)

__all__ = ["Agent", "AgentFamily", "check_agent", "get_family", "register", "registered"]
