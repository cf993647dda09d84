"""Data contracts shipped with the runtime (Avro schemas for bus and archive payloads)."""
