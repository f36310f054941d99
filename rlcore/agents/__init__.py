"""Agents composed from the transforms: `make_train(config) -> train(key)`.

* `rlcore.agents.ppo`: PPO with pluggable reward shaping (control tasks).
* `rlcore.agents.reinforce`: REINFORCE with a learned baseline (control tasks).
"""
