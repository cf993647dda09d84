-- silver.trades: one row per (symbol, agg_trade_id) of bronze.agg_trades in the window
-- [window_start_us, window_end_us) of transact_time, whichever sources and re-ingests had it.
--
-- The archive is Binance's published record, so it wins over the REST pager, which wins over
-- the live stream (which may have missed a correction). Among rows of one source the newest
-- ingest wins: a re-ingest is a correction. The remaining keys only make a choice between
-- conflicting rows of one ingest deterministic. n_sources counts the sources that saw the
-- id: the evidence that the sources were unified rather than one of them dropped.
WITH windowed AS (
    SELECT
        *,
        CASE source
            WHEN 'archive' THEN 1
            WHEN 'rest' THEN 2
            WHEN 'live' THEN 3
            ELSE 4  -- an unknown source never wins over a known one
        END AS source_priority
    FROM {{ source('bronze.agg_trades') }}
    -- Compared as timestamps, not as epoch numbers, so the filter reaches the Arrow scan.
    WHERE transact_time >= make_timestamptz({{ var('window_start_us') }})
      AND transact_time < make_timestamptz({{ var('window_end_us') }})
)

SELECT
    symbol,
    agg_trade_id,
    price_e8,
    qty_e8,
    first_trade_id,
    last_trade_id,
    transact_time,
    is_buyer_maker,
    is_best_match,
    source,
    ingest_ts,
    version,
    count(DISTINCT source) OVER (PARTITION BY symbol, agg_trade_id) AS n_sources
FROM windowed
QUALIFY row_number() OVER (
    PARTITION BY symbol, agg_trade_id
    ORDER BY
        source_priority,
        ingest_ts DESC,
        version DESC,
        price_e8,
        qty_e8,
        first_trade_id,
        last_trade_id,
        transact_time,
        is_buyer_maker,
        is_best_match,
        source
) = 1
ORDER BY agg_trade_id, symbol
