import { useQueries, useQuery } from '@tanstack/react-query';
import { Link } from 'react-router-dom';
import { client } from '../lib/api.tsx';
import { Change, ErrorBox, Head, Loading, Num, Panel } from '../components/ui.tsx';

export function MarketsPage() {
  const markets = useQuery({ queryKey: ['markets'], queryFn: () => client.markets(), refetchInterval: 10_000 });
  const tickers = useQueries({
    queries: (markets.data ?? []).map((m) => ({
      queryKey: ['ticker', m.symbol],
      queryFn: () => client.ticker(m.symbol),
      refetchInterval: 5_000,
    })),
  });
  return (
    <Panel title="Markets" id="markets">
      <ErrorBox error={markets.error} />
      {markets.isPending ? <Loading /> : null}
      <div className="table-wrap" tabIndex={0}>
        <table>
          <Head cols={['Market', ['Last price', 'r'], ['24 h change', 'r'], ['24 h volume', 'r hide-sm'], 'Status']} />
          <tbody>
            {(markets.data ?? []).map((m, i) => {
              const t = tickers[i]?.data;
              return (
                <tr key={m.symbol} data-market={m.symbol}>
                  <th scope="row">
                    <Link to={`/markets/${m.symbol}`}>{m.symbol}</Link>
                  </th>
                  <td className="r">
                    <Num value={t?.lastPrice ?? m.lastPrice} />
                  </td>
                  <td className="r">
                    <Change value={t?.change24h} />
                  </td>
                  <td className="r hide-sm">
                    <Num value={t?.volume24h} /> <span className="muted">{m.base}</span>
                  </td>
                  <td>
                    {m.halted ? <span className="badge warn">Halted</span> : <span className="badge ok">Trading</span>}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </Panel>
  );
}
