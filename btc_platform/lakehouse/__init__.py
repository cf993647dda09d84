"""The lakehouse's logic without Dagster: Iceberg tables, window writes, completeness proofs,
the bronze fetch and the feature step. The Dagster assets in ``btc_platform.defs`` call these.
"""
