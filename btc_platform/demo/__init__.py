"""``make demo``: the platform end to end on one machine (see ``cli``)."""
