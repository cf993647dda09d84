"""The lean runtime: Binance codec and clients, market events, and the live service.

Nothing under ``realtime`` imports Dagster or torch, so the service image stays small.
"""
