"""The market-data bus: Redis Streams ``md:{SYM}:trade|bba|depth`` between ingest and features."""
