"""Consumption of the restricted workload (``workload.restricted_workload``) with the Polars lazy API.

The same rules as ``duckdb_consumption`` (see its docstring and ``workload``), as one lazy plan per
output, collected together with ``pl.collect_all`` so common subplans are shared.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
import pyarrow as pa

KEY = ["tenant_id", "license_id", "consumer_type", "consumer_id"]


def _lazy(table: pa.Table) -> pl.LazyFrame:
    return pl.from_arrow(table).lazy()


def consumption(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """``consumption`` and ``license_summary`` (peer columns) of a restricted dataset."""
    lic = _lazy(tables["licenses"]).select(
        "tenant_id", "license_id", "metric", "entitlements",
        pl.col("multiple_use").fill_null(1).cast(pl.Int64).alias("mu"),
        pl.col("allocations_consume").fill_null(False).alias("ac"))
    linked = _lazy(tables["license_applications"]).select(
        "tenant_id", "license_id", "application_id").unique()
    known = (_lazy(tables["users"])
             .filter(pl.col("status").fill_null("active") == "active")
             .select("tenant_id", pl.col("user_id").alias("known_user")))
    devices = _lazy(tables["devices"])
    dev = (devices.select("tenant_id", "device_id", "user_id")
           .join(known, left_on=["tenant_id", "user_id"], right_on=["tenant_id", "known_user"],
                 how="left", coalesce=False)
           .select("tenant_id", "device_id", "known_user"))
    pairs = (_lazy(tables["installations"]).select("tenant_id", "device_id", "application_id")
             .unique()
             .join(linked, on=["tenant_id", "application_id"]))
    as_user = (pl.col("metric") == "user") & pl.col("known_user").is_not_null()
    pair_consumers = (
        pairs.join(lic.select("tenant_id", "license_id", "metric"), on=["tenant_id", "license_id"])
        .join(dev, on=["tenant_id", "device_id"])
        .with_columns(
            pl.when(as_user).then(pl.lit("user")).otherwise(pl.lit("device")).alias("consumer_type"),
            pl.when(as_user).then(pl.col("known_user")).otherwise(pl.col("device_id"))
            .alias("consumer_id"))
        .group_by(KEY).agg(pl.col("device_id").n_unique().alias("pair_devices")))
    alloc = (
        _lazy(tables["allocations"])
        .join(lic.select("tenant_id", "license_id", "metric", "ac"), on=["tenant_id", "license_id"])
        .join(known.with_columns(pl.lit(True).alias("target_known")),
              left_on=["tenant_id", "target_id"], right_on=["tenant_id", "known_user"], how="left")
        .filter((pl.col("metric") != "user") | pl.col("target_known").is_not_null())
        .select("tenant_id", "license_id",
                pl.col("target_id").alias("consumer_id"),
                pl.when(pl.col("metric") == "user").then(pl.lit("user")).otherwise(pl.lit("device"))
                .alias("consumer_type"),
                pl.col("type").fill_null("allocated"), "override", "exemption", "ac"))
    forced = (alloc.filter((pl.col("type") == "permanent")
                           | (pl.col("ac") & pl.col("type").is_in(["allocated", "awaiting_inventory"])))
              .select(KEY).with_columns(pl.lit(True).alias("is_forced")))
    owned = (devices.filter(pl.col("user_id").is_not_null())
             .group_by("tenant_id", "user_id").agg(pl.len().alias("owned_devices"))
             .with_columns(pl.lit("user").alias("consumer_type")))
    has_link = linked.select("tenant_id", "license_id").unique().with_columns(
        pl.lit(True).alias("linked"))
    n = (pl.when(pl.col("is_forced") & (pl.col("consumer_type") == "user"))
         .then(pl.max_horizontal(pl.col("owned_devices").fill_null(0), pl.lit(1)))
         .otherwise(pl.col("pair_devices").fill_null(1)).cast(pl.Int64))
    mu = pl.col("mu")
    rows = (
        pl.concat([pair_consumers.select(KEY), forced.select(KEY)]).unique()
        .join(lic, on=["tenant_id", "license_id"])
        .join(pair_consumers, on=KEY, how="left")
        .join(forced, on=KEY, how="left")
        .join(alloc.select(KEY + ["override", "exemption"]), on=KEY, how="left")
        .join(owned, left_on=["tenant_id", "consumer_id", "consumer_type"],
              right_on=["tenant_id", "user_id", "consumer_type"], how="left")
        .join(has_link, on=["tenant_id", "license_id"], how="left")
        .with_columns(pl.col("is_forced").fill_null(False), pl.col("linked").fill_null(False),
                      n.alias("n"))
        .select(*KEY, pl.when(pl.col("exemption").is_not_null()).then(0.0)
                .when(pl.col("override").is_not_null()).then(pl.col("override"))
                .when(pl.col("is_forced") & ~pl.col("linked")).then(1.0)
                .when(pl.col("metric") == "device").then(1.0)
                .when(mu == 0).then((pl.col("n") >= 1).cast(pl.Float64))
                .otherwise(((pl.col("n") + mu - 1) // mu).cast(pl.Float64))
                .alias("consumption")))
    evidence = pairs.group_by("tenant_id", "license_id").agg(pl.len().alias("evidence"))
    totals = rows.group_by("tenant_id", "license_id").agg(
        pl.col("consumption").sum().alias("consumed"), pl.len().alias("consumers"))
    consumed = pl.col("consumed").fill_null(0.0)
    summary = (
        lic.join(totals, on=["tenant_id", "license_id"], how="left")
        .join(evidence, on=["tenant_id", "license_id"], how="left")
        .select("tenant_id", "license_id", consumed.alias("consumed"),
                pl.when(pl.col("entitlements").is_null()).then(0.0)
                .otherwise(pl.max_horizontal(consumed - pl.col("entitlements"), pl.lit(0.0)))
                .alias("shortfall"),
                pl.col("consumers").fill_null(0).cast(pl.Int64),
                pl.col("evidence").fill_null(0).cast(pl.Int64)))
    out_rows, out_summary = pl.collect_all([rows, summary])
    return {"consumption": out_rows.to_arrow(), "license_summary": out_summary.to_arrow()}
