/** Candles (1m/5m/1h/1d) with TradingView's lightweight-charts, refreshed as trades arrive. */
import { useQuery } from '@tanstack/react-query';
import {
  CandlestickSeries,
  ColorType,
  createChart,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from 'lightweight-charts';
import { useEffect, useRef, useState } from 'react';
import { client } from '../lib/api.tsx';
import { useThemeName } from '../lib/theme.ts';
import { ErrorBox } from './ui.tsx';

const INTERVALS = ['1m', '5m', '1h', '1d'] as const;

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export function CandleChart({ market }: { market: string }) {
  const theme = useThemeName();
  const [interval, setInterval] = useState<(typeof INTERVALS)[number]>('1m');
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<ISeriesApi<'Candlestick'> | null>(null);
  const candles = useQuery({
    queryKey: ['candles', market, interval],
    queryFn: () => client.candles(market, { interval, limit: 300 }),
    refetchInterval: 15_000,
  });

  useEffect(() => {
    if (!box.current) return;
    const c = createChart(box.current, {
      autoSize: true,
      height: 280,
      layout: { background: { type: ColorType.Solid, color: 'transparent' }, textColor: cssVar('--fg') || '#ccc' },
      grid: { vertLines: { color: cssVar('--grid') || '#333' }, horzLines: { color: cssVar('--grid') || '#333' } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    series.current = c.addSeries(CandlestickSeries, {
      upColor: cssVar('--up') || '#26a69a',
      downColor: cssVar('--down') || '#ef5350',
      borderVisible: false,
      wickUpColor: cssVar('--up') || '#26a69a',
      wickDownColor: cssVar('--down') || '#ef5350',
    });
    chart.current = c;
    return () => {
      c.remove();
      chart.current = null;
      series.current = null;
    };
  }, [theme]);

  useEffect(() => {
    const rows = candles.data?.candles ?? [];
    // The chart library draws with numbers; these conversions only place pixels. Every price shown as text on
    // this page is the API's decimal string.
    series.current?.setData(
      rows
        .map((k) => ({
          time: Math.floor(Date.parse(k.openTime) / 1000) as UTCTimestamp,
          open: Number(k.open),
          high: Number(k.high),
          low: Number(k.low),
          close: Number(k.close),
        }))
        .sort((a, b) => a.time - b.time),
    );
    chart.current?.timeScale().fitContent();
  }, [candles.data, theme]);

  return (
    <div className="chart">
      <div className="tabs" role="group" aria-label="Candle interval">
        {INTERVALS.map((i) => (
          <button
            key={i}
            type="button"
            className={i === interval ? 'active' : ''}
            aria-pressed={i === interval}
            onClick={() => setInterval(i)}
          >
            {i}
          </button>
        ))}
      </div>
      <ErrorBox error={candles.error} />
      <p className="sr-only">
        {market} {interval} candles; the same trades are listed under Recent trades.
      </p>
      <div ref={box} className="chart-box" data-candles={candles.data?.candles.length ?? 0} />
    </div>
  );
}
