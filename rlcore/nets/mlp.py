"""Actor-critic MLPs and the two action distributions the control agents use.

The network matches PureJaxRL's: separate actor and critic towers of `Dense`
layers with orthogonal initialisation (gain √2 hidden, 0.01 policy head, 1.0 value
head) and zero biases. Continuous policies are diagonal Gaussians with a
state-independent log standard deviation, as in PureJaxRL and brax's PPO inputs
before squashing (actions are clipped by the environment, not squashed).

Distributions are plain functions of the head outputs (no distrax dependency):
`Distribution(sample, log_prob, entropy, mode)`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish}


class Distribution(NamedTuple):
  """Functions of a policy head's output `h` ([..., head_size])."""
  sample: Callable      # (key, h) -> action
  log_prob: Callable    # (h, action) -> [...]
  entropy: Callable     # (h) -> [...]
  mode: Callable        # (h) -> action, the greedy action


def categorical(num_actions: int) -> Distribution:
  """A categorical over `num_actions` actions from logits [..., num_actions]."""
  del num_actions

  def log_prob(logits, action):
    logp = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), -1)[..., 0]

  def entropy(logits):
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp, -1)

  return Distribution(sample=lambda key, logits: jax.random.categorical(key, logits),
                      log_prob=log_prob, entropy=entropy,
                      mode=lambda logits: jnp.argmax(logits, -1))


def diagonal_gaussian(action_size: int) -> Distribution:
  """A diagonal Gaussian from [..., 2 * action_size] = (mean, log_std)."""
  half_log_2pi_e = 0.5 * np.log(2 * np.pi * np.e)
  half_log_2pi = 0.5 * np.log(2 * np.pi)

  def split(h):
    return h[..., :action_size], h[..., action_size:]

  def sample(key, h):
    mean, log_std = split(h)
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)

  def log_prob(h, action):
    mean, log_std = split(h)
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z * z - log_std - half_log_2pi, -1)

  def entropy(h):
    return jnp.sum(split(h)[1] + half_log_2pi_e, -1)

  return Distribution(sample=sample, log_prob=log_prob, entropy=entropy,
                      mode=lambda h: split(h)[0])


class ActorCritic(nn.Module):
  """Separate actor and critic MLPs; returns (policy head output, value).

  Attributes:
    action_size: number of discrete actions, or the continuous action dimension.
    discrete: categorical logits if True, else (mean, log_std) of a Gaussian.
    hidden_sizes: widths of the hidden layers of each tower.
    activation: "tanh", "relu" or "swish".
  """
  action_size: int
  discrete: bool
  hidden_sizes: Sequence[int] = (64, 64)
  activation: str = "tanh"

  @nn.compact
  def __call__(self, obs):
    act = ACTIVATIONS[self.activation]
    dense = lambda n, gain: nn.Dense(n, kernel_init=nn.initializers.orthogonal(gain),
                                     bias_init=nn.initializers.zeros)
    h = obs
    for n in self.hidden_sizes:
      h = act(dense(n, np.sqrt(2))(h))
    head = dense(self.action_size, 0.01)(h)
    if not self.discrete:
      log_std = self.param("log_std", nn.initializers.zeros, (self.action_size,))
      head = jnp.concatenate([head, jnp.broadcast_to(log_std, head.shape)], -1)
    v = obs
    for n in self.hidden_sizes:
      v = act(dense(n, np.sqrt(2))(v))
    value = dense(1, 1.0)(v)[..., 0]
    return head, value
