"""The live capture into the lake: bronze.live_* hourly, gold.predictions and its quality daily."""
