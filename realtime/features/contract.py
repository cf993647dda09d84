"""The versioned feature contract: ordered names, units and definitions (``schema_v*.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True)
class FeatureContract:
    """One version of the contract; ``names`` is the order of every feature vector."""

    version: int
    names: tuple[str, ...]
    model_inputs: tuple[str, ...]
    """The features a model of this version reads (``spread`` is null in trade-only history)."""
    label: str
    document: dict

    @property
    def model_input_indices(self) -> tuple[int, ...]:
        return tuple(self.names.index(name) for name in self.model_inputs)


@cache
def load_contract(version: int) -> FeatureContract:
    """The contract ``schema_v{version}.json`` shipped with the package."""
    text = (files("realtime.features") / f"schema_v{version}.json").read_text(encoding="utf-8")
    document = json.loads(text)
    if document["version"] != version:
        raise ValueError(f"schema_v{version}.json declares version {document['version']}")
    features = document["features"]
    return FeatureContract(
        version=version,
        names=tuple(feature["name"] for feature in features),
        model_inputs=tuple(feature["name"] for feature in features if feature["model_input"]),
        label=document["label"]["name"],
        document=document,
    )


CONTRACT_V1 = load_contract(1)
CONTRACT_V2 = load_contract(2)
