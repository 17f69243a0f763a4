import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import type { OrderBook, Trade } from '@exchange/sdk';
import { client, useAuth, useChannel } from '../lib/api.tsx';
import { percentOf } from '../lib/decimal.ts';
import { CandleChart } from '../components/candles.tsx';
import { OpenOrders } from '../components/open-orders.tsx';
import { OrderForm } from '../components/order-form.tsx';
import { Change, Empty, ErrorBox, Head, Loading, Num, Panel, Time } from '../components/ui.tsx';

/** One side of the book; a click on a price puts it in the order form. */
function BookSide({
  side,
  levels,
  onPick,
}: {
  side: 'ask' | 'bid';
  levels: Array<[string, string]>;
  onPick: (p: string) => void;
}) {
  return (
    <tbody className={`${side}s`}>
      {levels.map(([p, q]) => (
        <tr key={p} data-side={side} data-price={p}>
          <td className={`r ${side === 'ask' ? 'down' : 'up'}`}>
            <button type="button" className="link" onClick={() => onPick(p)} aria-label={`Use ${side} price ${p}`}>
              {p}
            </button>
          </td>
          <td className="r num">{q}</td>
        </tr>
      ))}
    </tbody>
  );
}

export function MarketPage() {
  const { symbol = '' } = useParams();
  const { user } = useAuth();
  const qc = useQueryClient();
  const [pickedPrice, setPickedPrice] = useState<string | undefined>();
  const markets = useQuery({ queryKey: ['markets'], queryFn: () => client.markets(), refetchInterval: 10_000 });
  const market = markets.data?.find((m) => m.symbol === symbol);
  const ticker = useQuery({
    queryKey: ['ticker', symbol],
    queryFn: () => client.ticker(symbol),
    refetchInterval: 10_000,
  });
  const book = useQuery({ queryKey: ['book', symbol], queryFn: () => client.book(symbol, { depth: 15 }) });
  const trades = useQuery({ queryKey: ['trades', symbol], queryFn: () => client.trades(symbol, { limit: 30 }) });
  // the order form previews fees at the rates of the user's volume tier, not the market's base rates
  const fees = useQuery({
    queryKey: ['account-fees'],
    queryFn: () => client.accountFees(),
    enabled: Boolean(user),
    refetchInterval: 60_000,
  });
  const tier = fees.data?.markets.find((m) => m.market === symbol)?.tier;

  useChannel(`book:${symbol}`, (m) => {
    if (m.data) qc.setQueryData(['book', symbol], m.data as OrderBook);
  });
  useChannel(`trades:${symbol}`, (m) => {
    const t = m.data as Trade | undefined;
    if (!t) return;
    qc.setQueryData<Trade[]>(['trades', symbol], (old) =>
      [t, ...(old ?? []).filter((x) => x.tradeId !== t.tradeId)].slice(0, 30),
    );
    void qc.invalidateQueries({ queryKey: ['ticker', symbol] });
    void qc.invalidateQueries({ queryKey: ['candles', symbol] });
    void qc.invalidateQueries({ queryKey: ['markets'] });
  });

  if (markets.isPending) return <Loading />;
  if (!market)
    return (
      <>
        <ErrorBox error={markets.error} />
        <p>
          No market {symbol}. <Link to="/">All markets</Link>
        </p>
      </>
    );
  const t = ticker.data;
  const pct = t?.change24h && t.open24h ? percentOf(t.change24h, t.open24h) : null;
  const b = book.data;
  return (
    <div className="market-layout">
      <section className="ticker panel" aria-label={`${symbol} ticker`} data-testid="ticker">
        <h1>{symbol}</h1>
        <div>
          <span className="muted small">Last</span>
          <Num value={t?.lastPrice ?? market.lastPrice} className="big" />
        </div>
        <div>
          <span className="muted small">24 h</span>
          <Change value={t?.change24h} /> {pct ? <span className="muted small">({pct}%)</span> : null}
        </div>
        <div className="hide-sm">
          <span className="muted small">High / Low</span>
          <span>
            <Num value={t?.high24h} /> / <Num value={t?.low24h} />
          </span>
        </div>
        <div className="hide-sm">
          <span className="muted small">Volume ({market.base})</span>
          <Num value={t?.volume24h} />
        </div>
        {market.halted ? (
          <span className="badge warn" data-testid="halted-badge">
            Halted{market.haltReason ? `: ${market.haltReason}` : ''}
          </span>
        ) : null}
        {b?.auction ? (
          <span className="badge warn" data-testid="auction-badge" title="Orders are collected, then uncrossed">
            Call auction: indicative{' '}
            {b.auction.indicativePrice === null
              ? 'none'
              : `${b.auction.indicativeQuantity} @ ${b.auction.indicativePrice}`}
          </span>
        ) : null}
      </section>

      <Panel title="Chart" id="chart">
        <CandleChart market={symbol} />
      </Panel>

      <Panel title="Order book" id="book">
        <ErrorBox error={book.error} />
        <table className="book" data-testid="book">
          <caption className="sr-only">Asks then bids, price and quantity</caption>
          <Head
            cols={[
              [`Price (${market.quote})`, 'r'],
              [`Quantity (${market.base})`, 'r'],
            ]}
          />
          <BookSide side="ask" levels={[...(b?.asks ?? [])].reverse()} onPick={setPickedPrice} />
          <BookSide side="bid" levels={b?.bids ?? []} onPick={setPickedPrice} />
        </table>
        {b && b.bids.length === 0 && b.asks.length === 0 ? <Empty>The book is empty.</Empty> : null}
      </Panel>

      <Panel title="Place order" id="place">
        {user ? (
          <OrderForm
            key={`${symbol}-${pickedPrice ?? ''}`}
            market={tier ? { ...market, makerFeeBps: tier.makerFeeBps, takerFeeBps: tier.takerFeeBps } : market}
            {...(pickedPrice ? { initialPrice: pickedPrice } : {})}
            place={(req) => client.placeOrder(req)}
            onPlaced={() => {
              void qc.invalidateQueries({ queryKey: ['orders'] });
              void qc.invalidateQueries({ queryKey: ['balances'] });
            }}
          />
        ) : (
          <p>
            <Link to="/login">Log in</Link> or <Link to="/register">sign up</Link> to trade.
          </p>
        )}
      </Panel>

      <Panel title="Recent trades" id="trades">
        <ErrorBox error={trades.error} />
        <table data-testid="trades">
          <Head cols={[['Price', 'r'], ['Quantity', 'r'], 'Time']} />
          <tbody>
            {(trades.data ?? []).map((tr) => (
              <tr key={tr.tradeId}>
                <td className={`r num ${tr.side === 'buy' ? 'up' : 'down'}`}>{tr.price}</td>
                <td className="r num">{tr.quantity}</td>
                <td>
                  <Time iso={tr.at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Panel>

      {user ? (
        <Panel title="My open orders" id="my-orders">
          <OpenOrders market={symbol} />
        </Panel>
      ) : null}
    </div>
  );
}
