"""flax networks for the agents (rlcore.nets.mlp), their initialisers
(rlcore.nets.initializers); the causal LM is rlcore.lm."""

from rlcore.nets.initializers import orthogonal, orthonormal_columns
from rlcore.nets.mlp import ActorCritic, Distribution, categorical, diagonal_gaussian
