"""The Dagster definitions, one folder per layer: bronze, silver, gold, recovery."""
