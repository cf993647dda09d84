"""The model's life outside the live service.

The training core is pure (no Dagster, no Iceberg or store I/O): ``dataset`` (training set
and purged time splits), ``scaler``, ``model``, ``train``, ``export`` (ONNX), ``baselines``,
``metrics``, ``gate`` and ``plots``. The Dagster assets in ``btc_platform.defs`` read the
gold table, call these, and write the bundle.
"""
