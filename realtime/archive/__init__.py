"""Capture segments: the live service's append-only Parquet landing files for the lake.

Layout: ``<capture>/<kind>/date=YYYY-MM-DD/<kind>-<first_ts_us>-<seq>.parquet``; a segment
being written ends in ``.parquet.partial`` and is renamed when closed, so readers see only
closed segments, which never change. ``bronze.live_*`` and ``gold.predictions`` read them.
"""
