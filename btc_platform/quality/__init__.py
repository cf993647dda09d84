"""Data-quality suites for the lakehouse tables (Great Expectations 1.x), run by asset checks."""
