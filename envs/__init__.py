"""Environments: functional JAX environments, adapters, and tabular MDPs with exact solvers."""
