"""flax networks for the agents (rlcore.nets.mlp; TD-JEPA's rlcore.nets.latent), their initialisers
(rlcore.nets.initializers); the causal LM is rlcore.lm."""

from rlcore.nets.initializers import orthogonal, orthonormal_columns
from rlcore.nets.mlp import ActorCritic, Distribution, categorical, diagonal_gaussian
