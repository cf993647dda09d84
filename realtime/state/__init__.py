"""Redis hot state: key names, the writers of the features role, atomic re-anchoring."""
