"""The one ``Definitions`` object of the ``btc_platform`` code location (see workspace.yaml).

Assets, checks, resources, sensors and schedules are added here as the layers land. Nothing
at import time reads the environment: resources are chosen when they are built.
"""

from __future__ import annotations

import dagster as dg


def build_definitions() -> dg.Definitions:
    """Assemble the code location."""
    return dg.Definitions()


defs = build_definitions()
