"""An S3 and Glue server in process (moto), for the production configuration's tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

REGION = "us-east-1"
KEY_ID = SECRET = "testing"  # moto accepts any credentials


@dataclass(frozen=True)
class MotoServer:
    endpoint: str

    def s3_client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    """A moto server on a free loopback port, stopped on exit."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO; a failing test's log should show ours.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(f"http://{host}:{port}")
    finally:
        server.stop()
