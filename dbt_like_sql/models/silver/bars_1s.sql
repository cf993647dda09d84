-- silver.bars_1s: one bar per second of [window_start_sec, window_end_sec) for one symbol,
-- seconds without trades included: the same bars as realtime.features.bars.bars_from_tables.
--
-- Every aggregate is exact integer arithmetic. An aggregate trade counts as its
-- last_trade_id - first_trade_id + 1 trades and its whole quantity is one trade for
-- max_qty_e8, as BarBuilder.add_agg_trade does. The notional sum(price_e8 * qty_e8) passes
-- 2**63 within one second of one BTC, so it is summed as HUGEINT and kept as DECIMAL(38, 0).
-- "First" and "last" are by agg_trade_id, which Binance assigns in time order.
-- Aggregate-trade history has no quotes: the top-of-book columns are NULL, kept so the
-- table has the columns of the feature contract's bar.
WITH seconds AS (
    SELECT range AS ts_sec
    FROM range({{ var('window_start_sec') }}, {{ var('window_end_sec') }})
),

trades AS (
    SELECT
        *,
        -- Epochs are positive, where DuckDB's truncating // is floor division.
        epoch_us(transact_time) // 1000000 AS ts_sec
    FROM {{ ref('silver.trades') }}
    WHERE symbol = {{ var('symbol') }}
      -- BIGINT first: seconds times 1e6 overflows the INTEGER a small literal is.
      AND transact_time >= make_timestamptz(CAST({{ var('window_start_sec') }} AS BIGINT) * 1000000)
      AND transact_time < make_timestamptz(CAST({{ var('window_end_sec') }} AS BIGINT) * 1000000)
),

per_second AS (
    SELECT
        ts_sec,
        sum(last_trade_id - first_trade_id + 1) AS n_trades,
        sum(CASE WHEN is_buyer_maker THEN 0 ELSE qty_e8 END) AS buy_qty_e8,
        sum(CASE WHEN is_buyer_maker THEN qty_e8 ELSE 0 END) AS sell_qty_e8,
        sum(CAST(price_e8 AS HUGEINT) * qty_e8) AS notional_e16,
        arg_min(price_e8, agg_trade_id) AS first_price_e8,
        arg_max(price_e8, agg_trade_id) AS last_price_e8,
        max(qty_e8) AS max_qty_e8,
        arg_max(transact_time, agg_trade_id) AS last_trade_time,
        arg_min(first_trade_id, agg_trade_id) AS first_trade_id,
        arg_max(last_trade_id, agg_trade_id) AS last_trade_id
    FROM trades
    GROUP BY ts_sec
)

SELECT
    {{ var('symbol') }} AS symbol,
    make_timestamptz(seconds.ts_sec * 1000000) AS ts,
    seconds.ts_sec,
    CAST(coalesce(n_trades, 0) AS BIGINT) AS n_trades,
    CAST(coalesce(buy_qty_e8, 0) AS BIGINT) AS buy_qty_e8,
    CAST(coalesce(sell_qty_e8, 0) AS BIGINT) AS sell_qty_e8,
    CAST(coalesce(notional_e16, 0) AS DECIMAL(38, 0)) AS notional_e16,
    first_price_e8,
    last_price_e8,
    coalesce(max_qty_e8, 0) AS max_qty_e8,
    last_trade_time,
    first_trade_id,
    last_trade_id,
    CAST(NULL AS BIGINT) AS bid_price_e8,
    CAST(NULL AS BIGINT) AS ask_price_e8,
    CAST(NULL AS BIGINT) AS bid_qty_e8,
    CAST(NULL AS BIGINT) AS ask_qty_e8,
    'silver.trades' AS source,
    make_timestamptz({{ var('ingest_ts_us') }}) AS ingest_ts,
    CAST(1 AS INTEGER) AS version
FROM seconds
LEFT JOIN per_second USING (ts_sec)
ORDER BY seconds.ts_sec
