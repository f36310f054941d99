"""Small tabular MDPs with exact solvers, for checking shaping and returns.

Everything here is numpy float64: these are oracles for tests and examples, not
training environments. An MDP is given by transition probabilities P[s, a, s'],
rewards R[s, a, s'] and a `terminal` flag per state (absorbing, value 0: entering
it ends the episode).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TabularMDP(NamedTuple):
  transitions: np.ndarray  # [S, A, S] P(s' | s, a); rows sum to 1
  rewards: np.ndarray      # [S, A, S] reward of the transition s -a-> s'
  terminal: np.ndarray     # [S] bool; entering a terminal state ends the episode


def _validate(mdp: TabularMDP) -> None:
  p, r, term = mdp
  if p.ndim != 3 or p.shape[0] != p.shape[2]:
    raise ValueError(f"transitions must be [S, A, S], got shape {p.shape}.")
  if r.shape != p.shape:
    raise ValueError(f"rewards must have the shape of transitions {p.shape}, got {r.shape}.")
  if term.shape != (p.shape[0],):
    raise ValueError(f"terminal must be [S] = [{p.shape[0]}], got {term.shape}.")
  if not np.allclose(p.sum(-1), 1.0):
    raise ValueError("transitions must sum to 1 over the next state.")


def random_mdp(seed: int, num_states: int, num_actions: int, *,
               terminal_fraction: float = 0.2, reward_scale: float = 1.0) -> TabularMDP:
  """A random MDP with dense transitions and some absorbing terminal states."""
  if num_states < 2 or num_actions < 1:
    raise ValueError(f"need num_states >= 2 and num_actions >= 1, got {num_states}, "
                     f"{num_actions}.")
  rng = np.random.default_rng(seed)
  p = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
  r = rng.normal(size=(num_states, num_actions, num_states)) * reward_scale
  terminal = rng.random(num_states) < terminal_fraction
  terminal[0] = False  # keep a start state
  return TabularMDP(p, r, terminal)


def q_backup(mdp: TabularMDP, gamma: float, v: np.ndarray) -> np.ndarray:
  """One Bellman backup: Q(s, a) = Σ_s' P (R + γ (1 − term(s')) V(s'))."""
  p, r, term = mdp
  cont = np.where(term, 0.0, v)
  return np.einsum("sat,sat->sa", p, r + gamma * cont[None, None, :])


def value_iteration(mdp: TabularMDP, gamma: float, *, tol: float = 1e-12,
                    max_iters: int = 100_000) -> np.ndarray:
  """Optimal action values Q*[S, A] by value iteration to `tol` (sup norm).

  Q of terminal states is reported as 0 (they are never acted in).
  """
  _validate(mdp)
  if not 0.0 <= gamma < 1.0:
    raise ValueError(f"value_iteration needs gamma in [0, 1), got {gamma}.")
  v = np.zeros(mdp.transitions.shape[0])
  for _ in range(max_iters):
    q = q_backup(mdp, gamma, v)
    v_new = np.where(mdp.terminal, 0.0, q.max(-1))
    if np.max(np.abs(v_new - v)) < tol:
      v = v_new
      break
    v = v_new
  else:
    raise RuntimeError(f"value iteration did not converge in {max_iters} iterations.")
  q = q_backup(mdp, gamma, v)
  return np.where(mdp.terminal[:, None], 0.0, q)


def policy_evaluation(transitions: np.ndarray, expected_rewards: np.ndarray,
                      continue_prob: np.ndarray, gamma: float) -> np.ndarray:
  """Exact V of a Markov reward process: V = r + γ P_c V solved as a linear system.

  Args:
    transitions: [S, S] P(s' | s) under the policy.
    expected_rewards: [S] E[r | s].
    continue_prob: [S, S] factor multiplying γ V(s') (0 into terminal states).
    gamma: discount in [0, 1).
  """
  s = transitions.shape[0]
  return np.linalg.solve(np.eye(s) - gamma * transitions * continue_prob, expected_rewards)


def grzes_two_terminal():
  """Grześ (2017) Fig. 1: from s0, action 0 enters g1 (reward 0), action 1 enters g2
  (reward 100). Potentials Φ = (0, 1000, 10) for (s0, g1, g2).

  Returns (mdp, potentials). Without the terminal correction the shaped rewards of
  entering are γ·1000 vs 100 + γ·10, so the wrong goal wins whenever γ > 10/99.
  """
  p = np.zeros((3, 2, 3))
  p[0, 0, 1] = 1.0
  p[0, 1, 2] = 1.0
  p[1, :, 1] = 1.0  # terminals are absorbing (never acted in)
  p[2, :, 2] = 1.0
  r = np.zeros((3, 2, 3))
  r[0, 1, 2] = 100.0
  terminal = np.array([False, True, True])
  return TabularMDP(p, r, terminal), np.array([0.0, 1000.0, 10.0])
