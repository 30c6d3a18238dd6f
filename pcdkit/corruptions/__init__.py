"""Corruption processes: map clean data x_0 to x_t, optionally with intermediate iterates x_tau."""

from pcdkit.corruptions.base import Corrupted, Corruption
from pcdkit.corruptions.gaussian import GaussianNoise

__all__ = ["Corrupted", "Corruption", "GaussianNoise"]
