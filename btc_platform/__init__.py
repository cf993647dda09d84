"""The Dagster code location: lakehouse assets, checks, resources, sensors and schedules."""
