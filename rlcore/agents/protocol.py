"""The agent protocol: what every agent gives the experiment runner, and the registry.

An agent *family* (PPO, REINFORCE, GRPO, ...) is an `AgentFamily`: a name, the
family's `default_config()`, `validate_config(config)` and `make_agent(config)`.
`make_agent` returns one configured `Agent`, which the runner
(`rlcore.experiment`) drives through a single loop:

    agent = family.make_agent(config)
    state = agent.init(key, hparams, seed=seed)           # one run
    state, metrics = agent.run_chunk(state, num_updates)  # metrics: name -> [num_updates]
    ...checkpoint `state` (a pytree), log metrics, repeat...
    agent.evaluate(state)                                 # optional, after training

Two kinds of agents implement the same protocol:

* **vectorized** (`agent.vectorized = True`: PPO, REINFORCE): `init` and `run_chunk`
  are pure JAX functions of arrays. The runner runs every seed and every point of a
  scalar sweep in one `jax.jit(jax.vmap(...))` call (sharded over devices when there
  are several), with the family's traced hyperparameters (`hparam_names`) as a
  vmapped dict.
* **host** (`agent.vectorized = False`: GRPO): `init` and `run_chunk` are Python
  that calls jitted pieces (sampling, updates) and scores on the host. The runner
  steps its runs one after another; GRPO has no traced hyperparameters, so every
  swept key is a separate run.

Adding an agent family touches no runner code: define an `AgentFamily` and pass it
to `register`. The built-in families register themselves when their module is
imported; `get_family("ppo")` imports `rlcore.agents.ppo` on first use. The design
document (docs/design.md, "Agents and the runner") has the whole contract.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Mapping, Optional, Protocol, runtime_checkable

State = Any                      # a pytree; checkpointed whole
Metrics = Mapping[str, Any]      # metric name -> [num_updates] array (NaN: not measured)


@runtime_checkable
class Agent(Protocol):
  """One configured agent, as `AgentFamily.make_agent(config)` returns it.

  Attributes:
    num_updates: updates in a full run (the runner stops there).
    steps_per_update: environment steps (control) or sampled completions (LLM)
      per update; `env_steps` in the metrics counts them.
    plot_metrics: metric names worth plotting, most important first (the progress
      bar shows the first); the runner keeps their per-seed values and draws one
      panel per metric.
    finite_metrics: metrics that must stay finite (the losses): the runner writes
      them at every update (NaN and inf as null) and stops the run when one is not
      finite, unless `config.allow_nonfinite`.
    vectorized: True when `init` and `run_chunk` are pure JAX (jit/vmap-able);
      False for host loops.
    evaluate: None, or `evaluate(state) -> dict of floats` for one run's state
      after training (e.g. the greedy policy on the host environment).
  """
  num_updates: int
  steps_per_update: int
  plot_metrics: tuple[str, ...]
  finite_metrics: tuple[str, ...]
  vectorized: bool
  evaluate: Optional[Callable[[State], dict]]

  def default_hparams(self) -> dict:
    """The traced hyperparameters (the family's `hparam_names`) at their configured
    values, as float32 scalars; {} for an agent without any."""

  def init(self, key, hparams: Optional[dict] = None, *, seed: Any = 0) -> State:
    """A fresh run: parameters, optimiser, environment and transform states.

    Args:
      key: the run's PRNG key.
      hparams: a (partial) dict of the family's `hparam_names`; missing ones take
        their configured values.
      seed: the run's integer seed for host-side randomness (problem generation,
        data order). Vectorized agents draw everything from `key` and ignore it.
    """

  def run_chunk(self, state: State, num_updates: int) -> tuple[State, Metrics]:
    """Advances `num_updates` updates; returns the state and per-update metrics.

    Metrics hold `env_steps` (steps done after each update) and any other scalars,
    each as a `[num_updates]` array; NaN marks an update where a metric was not
    measured (e.g. evaluations every few updates). Vectorized agents: `num_updates`
    is static and the function is pure.
    """


@dataclasses.dataclass(frozen=True)
class AgentFamily:
  """A named agent family, as the runner finds it by `config.agent`.

  Attributes:
    name: the value of `config.agent`.
    default_config: `() -> ml_collections.ConfigDict` with every key the family
      reads (the runner's own keys are added by `rlcore.experiment`).
    make_agent: `(config, *, constrain_batch=None) -> Agent`. `constrain_batch`, if
      given, is applied to the batched environment state of a vectorized agent
      after every reset and step (the runner passes a sharding constraint when it
      shards one run's environments over devices); host agents may ignore it.
    validate_config: raises ValueError naming the key and what is allowed; called
      for every run of a sweep before anything trains.
    hparam_names: the scalar hyperparameters that are traced (the keys of
      `Agent.default_hparams()`): a sweep over them is vmapped (vectorized agents)
      or run as points of one group (host agents); every other config key is
      structural. Empty: every swept key is a separate run.
    batch_size: `(config) -> int` or None: the size of the leading environment axis
      that `constrain_batch` may shard (num_envs for the control agents).
  """
  name: str
  default_config: Callable[[], Any]
  make_agent: Callable[..., Agent]
  validate_config: Callable[[Any], None] = lambda config: None
  hparam_names: tuple[str, ...] = ()
  batch_size: Optional[Callable[[Any], int]] = None


_MEMBERS = ("num_updates", "steps_per_update", "plot_metrics", "finite_metrics", "vectorized",
            "evaluate", "default_hparams", "init", "run_chunk")


def check_agent(agent: Any, family: str = "") -> Agent:
  """Raises TypeError naming what `agent` lacks of the `Agent` protocol."""
  missing = [m for m in _MEMBERS if not hasattr(agent, m)]
  if missing:
    raise TypeError(f"agent family {family!r}: make_agent returned a "
                    f"{type(agent).__name__} without {', '.join(missing)} (see "
                    f"rlcore.agents.Agent).")
  if not agent.plot_metrics:
    raise TypeError(f"agent family {family!r}: `plot_metrics` must name at least one "
                    f"metric (the progress bar shows the first).")
  return agent


_BUILTIN = {"ppo": "rlcore.agents.ppo", "reinforce": "rlcore.agents.reinforce",
            "grpo": "rlcore.agents.grpo", "barfi": "rlcore.agents.barfi",
            "orpo": "rlcore.agents.orpo", "td_jepa": "rlcore.agents.td_jepa"}
_REGISTRY: dict[str, AgentFamily] = {}


def register(family: AgentFamily, *, replace: bool = False) -> AgentFamily:
  """Makes `family` available to the runner as `config.agent = family.name`.

  Args:
    family: the family.
    replace: allow replacing a family registered under the same name.

  Returns:
    `family`, so a module can write `FAMILY = register(AgentFamily(...))`.
  """
  if not isinstance(family, AgentFamily):
    raise TypeError(f"register: expected an AgentFamily, got {type(family).__name__}.")
  if family.name in _REGISTRY and _REGISTRY[family.name] is not family and not replace:
    raise ValueError(f"register: an agent family named {family.name!r} is already "
                     f"registered; pass replace=True to replace it.")
  _REGISTRY[family.name] = family
  return family


def registered() -> list[str]:
  """Names of every family the runner can find (built-in and registered)."""
  return sorted(set(_BUILTIN) | set(_REGISTRY))


def get_family(name: str) -> AgentFamily:
  """The family registered as `name` (importing a built-in one on first use)."""
  if name not in _REGISTRY and name in _BUILTIN:
    importlib.import_module(_BUILTIN[name])   # registers itself
  if name not in _REGISTRY:
    raise ValueError(f"config.agent: unknown agent {name!r}; allowed: "
                     f"{', '.join(registered())} (or register your own with "
                     f"rlcore.agents.register).")
  return _REGISTRY[name]
