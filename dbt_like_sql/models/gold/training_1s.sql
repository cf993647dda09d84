-- gold.training_1s: the training rows of contract v1 for seconds [window_start_sec,
-- window_end_sec): the features of second t and the label y_log_return_10s =
-- log_price(t + 10) - log_price(t), as realtime.features.labels.labels_v1 computes it.
--
-- The label joins second t + 10 exactly rather than taking LEAD(10): a hole in the seconds
-- then gives no label instead of a label over the wrong horizon. The leakage guard: the
-- label never reads past last_complete_sec, the newest second whose trades are all known.
-- NaN and NULL both mean "undefined" (the contract stores null as NaN; SQL writers may not).
SELECT
    f.symbol,
    f.ts,
    f.ts_sec,
    f.contract_version,
    f.ret_1s,
    f.ret_2s,
    f.ret_5s,
    f.vwap_5s_dev,
    f.n_trades_1s,
    f.n_trades_5s,
    f.buy_vol_1s,
    f.sell_vol_1s,
    f.tvi_1s,
    f.buy_vol_5s,
    f.sell_vol_5s,
    f.tvi_5s,
    f.avg_trade_size_1s,
    f.vol_ret_10s,
    f.burst_1s,
    f.large_trade_flag_5s,
    f.time_since_last_trade_ms,
    f.last_price_minus_1s,
    f.last_price_minus_5s,
    f.spread,
    ahead.log_price - f.log_price AS y_log_return_10s,
    'silver.features_1s' AS source,
    make_timestamptz({{ var('ingest_ts_us') }}) AS ingest_ts,
    CAST(1 AS INTEGER) AS version
FROM {{ source('silver.features_1s') }} AS f
INNER JOIN {{ source('silver.features_1s') }} AS ahead
    ON ahead.symbol = f.symbol
    AND ahead.contract_version = f.contract_version
    AND ahead.ts_sec = f.ts_sec + 10
    AND ahead.ts_sec <= {{ var('last_complete_sec') }}
WHERE f.contract_version = 1
    AND f.ts_sec >= {{ var('window_start_sec') }}
    AND f.ts_sec < {{ var('window_end_sec') }}
    AND NOT isnan(coalesce(ahead.log_price - f.log_price, 'NaN'::DOUBLE))
    -- The model inputs of contract v1, every feature but spread (null without quotes).
    -- A test pins this list to CONTRACT_V1.model_inputs.
    AND NOT isnan(coalesce(f.ret_1s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.ret_2s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.ret_5s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.vwap_5s_dev, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.n_trades_1s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.n_trades_5s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.buy_vol_1s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.sell_vol_1s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.tvi_1s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.buy_vol_5s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.sell_vol_5s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.tvi_5s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.avg_trade_size_1s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.vol_ret_10s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.burst_1s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.large_trade_flag_5s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.time_since_last_trade_ms, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.last_price_minus_1s, 'NaN'::DOUBLE))
    AND NOT isnan(coalesce(f.last_price_minus_5s, 'NaN'::DOUBLE))
ORDER BY f.ts_sec, f.symbol
