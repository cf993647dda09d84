"""The ingest role: SBE WebSocket in, de-duplicated normalised events and gap records out.

``IngestRole`` (``ingest.py``) owns the connections; everything it decides with is pure and
reusable on its own: ``gaps`` (trade id, depth chain and silence detectors), ``dedup``
(per-stream monotonic filters), ``handover`` (when a replacement connection may take over),
``backoff`` (reconnect delays). ``sink.IngestSink`` is what it hands events to.
"""
