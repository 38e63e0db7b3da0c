"""Sweep machinery: the base-network cache, the result store, the Hydra callback."""
