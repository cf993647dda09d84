"""Dagster backfills driven in the test process, the way the daemon drives them.

``launch_backfill`` creates an asset backfill on the instance (what the UI's "Materialize
partitions" does); ``run_backfill`` runs the backfill daemon's iterations until it is done,
with runs launched synchronously in process. These are Dagster's own daemon functions,
reached through internal modules: the daemon's loop waits 30 s between iterations, which a
test cannot afford, and its iteration function is what that loop calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.daemon import get_default_daemon_logger
from dagster._time import get_current_timestamp

IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
"""Run config for test runs: steps in the run's process (the default forks one per step)."""

UNFINISHED = (BulkActionStatus.REQUESTED, BulkActionStatus.FAILING, BulkActionStatus.CANCELING)


@contextmanager
def code_location(
    instance: dg.DagsterInstance, module: str = "btc_platform.definitions"
) -> Iterator[WorkspaceProcessContext]:
    """The code location loaded as the daemon loads it, over ``instance``."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=module, attribute="defs"), location_name="btc_platform"
    )
    with create_test_daemon_workspace_context(
        InProcessWorkspaceLoadTarget(origin), instance
    ) as context:
        yield context


def launch_backfill(
    workspace: WorkspaceProcessContext,
    partition_names: Sequence[str],
    assets: Sequence[dg.AssetKey],
) -> str:
    request = workspace.create_request_context()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=request.asset_graph,
        partition_names=list(partition_names),
        asset_selection=list(assets),
        backfill_timestamp=get_current_timestamp(),
        tags={},
        dynamic_partitions_store=request.instance,
        all_partitions=False,
        title=None,
        description=None,
        run_config=IN_PROCESS,
    )
    workspace.instance.add_backfill(backfill)
    return backfill.backfill_id


def run_backfill(
    workspace: WorkspaceProcessContext, backfill_id: str, max_iterations: int = 30
) -> PartitionBackfill:
    """Iterate the backfill daemon until the backfill finishes; return its final state."""
    logger = get_default_daemon_logger("BackfillDaemon")
    for _ in range(max_iterations):
        errors = [error for error in execute_backfill_iteration(workspace, logger) if error]
        assert not errors, errors
        backfill = workspace.instance.get_backfill(backfill_id)
        assert backfill is not None
        if backfill.status not in UNFINISHED:
            return backfill
    raise AssertionError(f"backfill {backfill_id} still {backfill.status}")
