/** Candle intervals of the market data (OHLCV), in seconds. */
export const CANDLE_INTERVALS = { '1m': 60, '5m': 300, '1h': 3600, '1d': 86400 } as const;
export type CandleInterval = keyof typeof CANDLE_INTERVALS;
