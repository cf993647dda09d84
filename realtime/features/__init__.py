"""The feature contract and its one engine: per-second bars, features and labels.

The batch path (a whole day of bars as arrays) and the live path (one closed second at a
time) share their arithmetic in ``formulas`` and produce bit-identical float64 vectors.
"""
