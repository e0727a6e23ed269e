"""Peers: the same work written with DuckDB and Polars, checked equal before they are timed."""
