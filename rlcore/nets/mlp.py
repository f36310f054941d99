"""Actor-critic MLPs and the two action distributions the control agents use.

The network matches PureJaxRL's: separate actor and critic towers of `Dense`
layers with orthogonal initialisation (gain √2 hidden, 0.01 policy head, 1.0 value
head) and zero biases. The orthogonal matrices come from `rlcore.nets.initializers`,
which draws what `jax.nn.initializers.orthogonal` draws without its LAPACK QR (that
kernel can deadlock XLA:CPU when vmapped; see that module). Continuous policies are
either diagonal Gaussians with a state-independent log standard deviation, as in
PureJaxRL (`diagonal_gaussian`; actions are clipped by the environment, not squashed),
or brax PPO's default: a Gaussian with a state-dependent scale softplus(·) + 0.001
whose samples are squashed by tanh (`tanh_normal`).

Distributions are plain functions of the head outputs (no distrax dependency):
`Distribution(sample, log_prob, entropy, mode, noise, sample_with_noise, postprocess)`.
Samples, log-probabilities and the mode live in the distribution's own space (for
`tanh_normal`, before the tanh); `postprocess` maps them to the actions the
environment receives.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rlcore.nets.initializers import orthogonal

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish}


class Distribution(NamedTuple):
  """Functions of a policy head's output `h` ([..., head_size]).

  `noise(key, batch_shape)` draws the randomness of many samples at once and
  `sample_with_noise(h, noise)` turns one slice of it into actions, so a rollout
  draws all its random numbers in one call before its loop (fewer small kernels
  per step on CPU); `sample(key, h)` is the two together. Actions here are the
  distribution's (pre-squashing) values; `postprocess(action)` is what the
  environment receives (the identity unless the distribution squashes).
  `entropy(h, key)` takes a key for distributions whose entropy is a one-sample
  estimate (`tanh_normal`); the others ignore it.
  """
  sample: Callable             # (key, h) -> action
  log_prob: Callable           # (h, action) -> [...]
  entropy: Callable            # (h, key=None) -> [...]
  mode: Callable               # (h) -> action, the greedy action
  noise: Callable              # (key, batch_shape) -> noise [*batch_shape, size]
  sample_with_noise: Callable  # (h, noise) -> action
  postprocess: Callable = lambda action: action  # action -> the environment's action


def categorical(num_actions: int) -> Distribution:
  """A categorical over `num_actions` actions from logits [..., num_actions]."""
  def log_prob(logits, action):
    logp = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), -1)[..., 0]

  def entropy(logits, key=None):
    del key   # exact
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp, -1)

  noise = lambda key, shape: jax.random.gumbel(key, tuple(shape) + (num_actions,))
  with_noise = lambda logits, g: jnp.argmax(logits + g, -1)   # Gumbel-max = categorical
  return Distribution(sample=lambda key, logits: with_noise(logits, noise(key, logits.shape[:-1])),
                      log_prob=log_prob, entropy=entropy,
                      mode=lambda logits: jnp.argmax(logits, -1), noise=noise,
                      sample_with_noise=with_noise)


_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)
_HALF_LOG_2PI_E = 0.5 * np.log(2 * np.pi * np.e)   # a unit Gaussian's entropy


def _normal_log_density(x, loc, log_scale):
  """Elementwise log N(x; loc, exp(log_scale)²)."""
  z = (x - loc) * jnp.exp(-log_scale)
  return -0.5 * z * z - log_scale - _HALF_LOG_2PI


def _normal_noise(action_size):
  return lambda key, shape: jax.random.normal(key, tuple(shape) + (action_size,))


def diagonal_gaussian(action_size: int) -> Distribution:
  """A diagonal Gaussian from [..., 2 * action_size] = (mean, log_std)."""

  def split(h):
    return h[..., :action_size], h[..., action_size:]

  noise = _normal_noise(action_size)

  def sample_with_noise(h, eps):
    mean, log_std = split(h)
    return mean + jnp.exp(log_std) * eps

  def sample(key, h):
    return sample_with_noise(h, noise(key, h.shape[:-1]))

  def log_prob(h, action):
    return jnp.sum(_normal_log_density(action, *split(h)), -1)

  def entropy(h, key=None):
    del key   # exact
    return jnp.sum(split(h)[1] + _HALF_LOG_2PI_E, -1)

  return Distribution(sample=sample, log_prob=log_prob, entropy=entropy,
                      mode=lambda h: split(h)[0], noise=noise,
                      sample_with_noise=sample_with_noise)


def tanh_log_det_jacobian(u):
  """log |d tanh(u) / du| = log(1 − tanh²u) = 2 (log 2 − u − softplus(−2u)), stably."""
  return 2.0 * (np.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def tanh_normal(action_size: int, min_std: float = 0.001) -> Distribution:
  """brax PPO's policy: u ~ N(loc, σ²), σ = softplus(s) + `min_std`, action tanh(u).

  The head [..., 2 * action_size] is (loc, s), both functions of the state (brax's
  `NormalTanhDistribution`, the default of `brax.training.agents.ppo.networks`).
  Samples and log-probabilities are of the pre-tanh u (the PPO ratio of u equals
  that of tanh(u): the Jacobian cancels); `postprocess` = tanh, and the greedy action
  is tanh(loc). As in brax,

      log π(u) = Σ_i [log N(u_i; loc_i, σ_i²) − log(1 − tanh² u_i)],
      H ≈ Σ_i [½ log(2πe σ_i²) + log(1 − tanh² ũ_i)],   ũ = loc + σ ε, ε ~ N(0, I),

  the entropy of tanh(u) estimated from one reparameterised sample (its gradient
  reaches loc and σ), so `entropy(h, key)` needs a key.
  https://github.com/google/brax/blob/main/brax/training/distribution.py

  Args:
    action_size: the action dimension.
    min_std: the floor added to the softplus scale (brax: 0.001).
  """
  def split(h):
    if h.shape[-1] != 2 * action_size:
      raise ValueError(f"tanh_normal: the head's last axis must be 2 * action_size = "
                       f"{2 * action_size}, got shape {h.shape}")
    return h[..., :action_size], jax.nn.softplus(h[..., action_size:]) + min_std

  noise = _normal_noise(action_size)

  def sample_with_noise(h, eps):
    loc, scale = split(h)
    return loc + scale * eps

  def log_prob(h, u):
    loc, scale = split(h)
    return jnp.sum(_normal_log_density(u, loc, jnp.log(scale))
                   - tanh_log_det_jacobian(u), -1)

  def entropy(h, key=None):
    if key is None:
      raise ValueError("tanh_normal: entropy(h, key) needs a key (a one-sample "
                       "estimate, as brax's), got key=None")
    loc, scale = split(h)
    u = loc + scale * jax.random.normal(key, loc.shape)
    return jnp.sum(jnp.log(scale) + _HALF_LOG_2PI_E + tanh_log_det_jacobian(u), -1)

  return Distribution(sample=lambda key, h: sample_with_noise(h, noise(key, h.shape[:-1])),
                      log_prob=log_prob, entropy=entropy, mode=lambda h: split(h)[0],
                      noise=noise, sample_with_noise=sample_with_noise, postprocess=jnp.tanh)


KERNEL_INITS = ("orthogonal", "lecun_uniform")


class ActorCritic(nn.Module):
  """Separate actor and critic MLPs; returns (policy head output, value).

  Attributes:
    action_size: number of discrete actions, or the continuous action dimension.
    discrete: categorical logits if True, else (mean, log_std) of a Gaussian, or
      with `state_dependent_scale` the (loc, scale) parameters of `tanh_normal`.
    hidden_sizes: widths of the actor's hidden layers (and the critic's, unless
      `critic_hidden_sizes` is given).
    activation: "tanh", "relu" or "swish".
    critic_hidden_sizes: widths of the critic's hidden layers; None: `hidden_sizes`
      (brax's PPO uses a (32,) * 4 actor and a (256,) * 5 critic).
    log_std_init: the Gaussian's initial log standard deviation (continuous only,
      without `state_dependent_scale`).
    state_dependent_scale: the actor's head gives 2 * action_size outputs, the
      location and the (pre-softplus) scale of `tanh_normal`, instead of a mean
      and a learned state-independent log std (continuous only).
    kernel_init: "orthogonal" (the gains above, PureJaxRL's) or "lecun_uniform"
      (every layer, heads included, as brax's MLPs: U(±sqrt(3 / fan_in))).
  """
  action_size: int
  discrete: bool
  hidden_sizes: Sequence[int] = (64, 64)
  activation: str = "tanh"
  critic_hidden_sizes: Sequence[int] | None = None
  log_std_init: float = 0.0
  state_dependent_scale: bool = False
  kernel_init: str = "orthogonal"

  @nn.compact
  def __call__(self, obs, critic: bool = True):
    """(head, value); with `critic=False` only the actor runs and value is None."""
    act = ACTIVATIONS[self.activation]
    if self.kernel_init not in KERNEL_INITS:
      raise ValueError(f"ActorCritic.kernel_init = {self.kernel_init!r}; expected one of "
                       f"{KERNEL_INITS}.")
    init = ((lambda gain: orthogonal(gain)) if self.kernel_init == "orthogonal" else
            (lambda gain: nn.initializers.lecun_uniform()))
    dense = lambda n, gain, name: nn.Dense(
        n, kernel_init=init(gain), bias_init=nn.initializers.zeros, name=name)
    h = obs
    for i, n in enumerate(self.hidden_sizes):
      h = act(dense(n, np.sqrt(2), f"actor_{i}")(h))
    outputs = self.action_size * (2 if self.state_dependent_scale else 1)
    head = dense(outputs, 0.01, "actor_head")(h)
    if not self.discrete and not self.state_dependent_scale:
      log_std = self.param("log_std", nn.initializers.constant(self.log_std_init),
                           (self.action_size,))
      head = jnp.concatenate([head, jnp.broadcast_to(log_std, head.shape)], -1)
    if not critic:
      return head, None
    v = obs
    critic_sizes = self.hidden_sizes if self.critic_hidden_sizes is None else (
        self.critic_hidden_sizes)
    for i, n in enumerate(critic_sizes):
      v = act(dense(n, np.sqrt(2), f"critic_{i}")(v))
    value = dense(1, 1.0, "critic_head")(v)[..., 0]
    return head, value


class Discriminator(nn.Module):
  """An MLP scoring inputs with one logit (ORPO's occupancy discriminator).

  LeakyReLU hidden layers (as the official ORPO code's discriminator, width 256,
  depth 2), flax's default initialisation, a linear output.

  Attributes:
    hidden_sizes: widths of the hidden layers.
  """
  hidden_sizes: Sequence[int] = (256, 256)

  @nn.compact
  def __call__(self, x):
    """[..., features] -> [...] logits."""
    for n in self.hidden_sizes:
      x = nn.leaky_relu(nn.Dense(n)(x))
    return nn.Dense(1)(x)[..., 0]
