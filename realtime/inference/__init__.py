"""Model bundles (``docs/model_bundle.md``) and serving: the manifest, the writer and the
live loader, the store's read side, the hot-swapped model, the fallback controller.

numpy, onnxruntime and pyarrow's filesystems only: the batch side writes bundles with these
same classes, and the live service loads them without torch, Dagster or the ``onnx`` package.
"""
