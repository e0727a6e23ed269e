"""Numba kernels: pure functions over dense integer codes (NumPy arrays in, arrays out)."""
