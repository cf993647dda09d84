"""Small summaries of a model's test predictions for the Dagster UI, as Markdown.

matplotlib is not a dependency of this project, so there are no PNGs: the predicted vs
realised scatter becomes a calibration table (rows binned by predicted value, mean realised
return per bin) and the hit-rate by decile a table with a text bar per decile. Both render
as ``MetadataValue.md`` in the Dagster UI.
"""

from __future__ import annotations

import numpy as np

BAR_WIDTH = 20
"""Characters of a full bar: hit-rate 1.0."""


def predicted_vs_realised_markdown(yhat: np.ndarray, y: np.ndarray, bins: int = 10) -> str:
    """A table of ``bins`` equal-count bins of ``yhat`` (ascending): rows, mean predicted and
    mean realised log return in basis points (1e-4). A useful model's means rise together."""
    yhat = np.asarray(yhat, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if yhat.shape != y.shape:
        raise ValueError(f"{len(yhat)} predictions for {len(y)} labels")
    lines = [
        "| bin | rows | mean predicted (bp) | mean realised (bp) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    order = np.argsort(yhat, kind="stable")
    for number, members in enumerate(np.array_split(order, bins), start=1):
        if len(members):
            lines.append(
                f"| {number} | {len(members)} | {np.mean(yhat[members]) * 1e4:.3f} "
                f"| {np.mean(y[members]) * 1e4:.3f} |"
            )
    return "\n".join(lines)


def hit_rate_by_decile_markdown(deciles: list[dict]) -> str:
    """The rows of ``metrics.hit_rate_by_decile`` as a table with a bar per decile."""
    lines = [
        "| decile of abs(ŷ) | mean abs(ŷ) (bp) | calls | hit-rate | |",
        "| ---: | ---: | ---: | ---: | :--- |",
    ]
    for row in deciles:
        rate = row["hit_rate"]
        shown = "n/a" if rate is None else f"{rate:.3f}"
        bar = "" if rate is None else "█" * round(rate * BAR_WIDTH)
        lines.append(
            f"| {row['decile']} | {row['mean_abs_yhat'] * 1e4:.3f} | {row['n_directional']} "
            f"| {shown} | `{bar}` |"
        )
    return "\n".join(lines)
