"""flax networks of the TD-JEPA agent: encoders, ensembled predictors and the latent actor.

Shapes follow the official code's proprioceptive networks (github.com/marbaga/td_jepa_public,
`metamotivo/nn_models.py`; https://arxiv.org/abs/2510.00739):

* `Encoder` (official `BackwardMap`): Dense → LayerNorm → tanh, then (Dense → ReLU) for
  each further hidden layer, then Dense to the output, projected to the sphere of radius
  sqrt(d); with no hidden layers a single Dense (the DMC state encoder φ).
* `Predictor` (official `ForwardMap`): two embeddings, of (encoding ⊕ z) and of
  (encoding ⊕ action), each Dense → LayerNorm → tanh → (Dense → ReLU)* → Dense(h/2) → ReLU,
  concatenated, then (Dense(h) → ReLU) × `hidden_layers` and a linear output; an
  ensemble of `ensemble` independent copies (leading axis E of the output).
* `Actor` (official "simple" `Actor`): embeddings of (encoding ⊕ z) and of the encoding,
  concatenated, (Dense → ReLU) × `hidden_layers`, Dense to the action, tanh.

Initialisation as the official `weight_init`: orthogonal kernels (gain 1 for single
layers, √2 inside the ensembles) and zero biases, with `rlcore.nets.initializers`
(no LAPACK kernel: safe under vmap on CPU).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from rlcore import latent
from rlcore.nets.initializers import orthogonal


def _dense(n: int, gain: float = 1.0, name=None):
  return nn.Dense(n, kernel_init=orthogonal(gain), bias_init=nn.initializers.zeros, name=name)


class Encoder(nn.Module):
  """obs [..., obs_size] -> [..., dim] on the sphere of radius sqrt(dim).

  Attributes:
    dim: output size.
    hidden: widths of the hidden layers (() for one linear layer).
    normalize: project the output to the sphere (the official `Norm`).
  """
  dim: int
  hidden: Sequence[int] = (256, 256)
  normalize: bool = True

  @nn.compact
  def __call__(self, obs):
    x = obs.reshape(obs.shape[:-1] + (-1,)) if obs.ndim else obs
    for i, n in enumerate(self.hidden):
      x = _dense(n)(x)
      x = nn.tanh(nn.LayerNorm()(x)) if i == 0 else nn.relu(x)
    x = _dense(self.dim)(x)
    return latent.project_to_sphere(x) if self.normalize else x


class _Embedding(nn.Module):
  """Dense → LayerNorm → tanh → (Dense → ReLU) × (layers − 2) → Dense(h/2) → ReLU."""
  hidden: int
  layers: int = 2
  gain: float = 1.0

  @nn.compact
  def __call__(self, x):
    x = nn.tanh(nn.LayerNorm()(_dense(self.hidden, self.gain)(x)))
    for _ in range(self.layers - 2):
      x = nn.relu(_dense(self.hidden, self.gain)(x))
    return nn.relu(_dense(self.hidden // 2, self.gain)(x))


class _PredictorMember(nn.Module):
  out: int
  hidden: int
  embed_layers: int
  hidden_layers: int

  @nn.compact
  def __call__(self, enc, action, z):
    gain = np.sqrt(2.0)
    ez = _Embedding(self.hidden, self.embed_layers, gain)(jnp.concatenate([enc, z], -1))
    ea = _Embedding(self.hidden, self.embed_layers, gain)(jnp.concatenate([enc, action], -1))
    x = jnp.concatenate([ea, ez], -1)
    for _ in range(self.hidden_layers):
      x = nn.relu(_dense(self.hidden, gain)(x))
    return _dense(self.out, gain)(x)


class Predictor(nn.Module):
  """(encoding [B, d_in], action [B, da], z [B, dz]) -> [E, B, out].

  Attributes:
    out: output size (dψ for T_φ, dφ for T_ψ).
    hidden: width h (embeddings end at h/2 each).
    embed_layers: layers per embedding (>= 2).
    hidden_layers: layers after the concatenation.
    ensemble: E independent members.
  """
  out: int
  hidden: int = 1024
  embed_layers: int = 2
  hidden_layers: int = 1
  ensemble: int = 2

  @nn.compact
  def __call__(self, enc, action, z):
    members = nn.vmap(_PredictorMember, variable_axes={"params": 0},
                      split_rngs={"params": True}, in_axes=None, out_axes=0,
                      axis_size=self.ensemble)
    return members(self.out, self.hidden, self.embed_layers, self.hidden_layers,
                   name="members")(enc, action, z)


class Actor(nn.Module):
  """(encoding [B, d], z [B, dz]) -> mean action [B, action_size] in (−1, 1).

  Attributes:
    action_size: action dimension.
    hidden: width h.
    embed_layers: layers per embedding.
    hidden_layers: layers after the concatenation.
  """
  action_size: int
  hidden: int = 1024
  embed_layers: int = 2
  hidden_layers: int = 1

  @nn.compact
  def __call__(self, enc, z):
    ez = _Embedding(self.hidden, self.embed_layers)(jnp.concatenate([enc, z], -1))
    es = _Embedding(self.hidden, self.embed_layers)(enc)
    x = jnp.concatenate([es, ez], -1)
    for _ in range(self.hidden_layers):
      x = nn.relu(_dense(self.hidden)(x))
    return jnp.tanh(_dense(self.action_size)(x))
