"""Model bundles (``docs/model_bundle.md``): the manifest, the writer and the live loader.

Only numpy and onnxruntime: the batch side writes bundles with these same classes, and the
live service loads them without torch, Dagster or the ``onnx`` package.
"""
