"""Synthetic and replayed markets for running the platform offline."""
