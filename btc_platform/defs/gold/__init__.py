"""Gold: labelled training rows, daily."""
