"""ML: the model candidate, its gate, and the serving pointer."""
