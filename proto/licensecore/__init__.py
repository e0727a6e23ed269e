"""licensecore: license-consumption compute core.

This package holds the wire protocol (``licensecore.v1``, generated from ``proto/``); the
engine, server, clients and benchmarks are its sub-packages ``kernels``, ``server``, ``clients``
and ``bench``.
"""

__version__ = "0.1.0"
