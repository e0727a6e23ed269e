"""Thin clients: the Python gRPC client and the command line."""
