"""flax networks for the agents (rlcore.nets.mlp) and, later, the causal LM (rlcore.lm)."""

from rlcore.nets.mlp import ActorCritic, Distribution, categorical, diagonal_gaussian
