import { uuidv5 } from '../uuid.ts';
import { railDecision, sendPayout } from './rail.ts';

const req = (i: number) => ({ withdrawalId: uuidv5(`w:${i}`), asset: 'BTC', amount: '100000', address: 'bc1qxyz' });

describe('simulated rail', () => {
  it('answers the same for the same withdrawal, whatever the redeliveries', async () => {
    const opts = { failureRate: 0.3, seed: 's', delayMs: 0 };
    for (let i = 0; i < 50; i++) {
      const a = railDecision(req(i), opts);
      expect(await sendPayout(req(i), opts)).toEqual(a);
      expect(railDecision({ ...req(i), withdrawalId: req(i).withdrawalId.toUpperCase() }, opts)).toEqual(a);
    }
  });

  it('fails about the configured share, and none / all at the extremes', () => {
    const n = 4000;
    const failed = (rate: number) =>
      Array.from({ length: n }, (_, i) => railDecision(req(i), { failureRate: rate, seed: 's' })).filter(
        (r) => r.status === 'failed',
      ).length;
    expect(failed(0)).toBe(0);
    expect(failed(1)).toBe(n);
    const f = failed(0.1);
    expect(f).toBeGreaterThan(n * 0.08);
    expect(f).toBeLessThan(n * 0.12);
  });

  it('gives distinct rail transaction ids and depends on the seed', () => {
    const ids = new Set(
      Array.from({ length: 500 }, (_, i) => railDecision(req(i), { failureRate: 0, seed: 's' })).map((r) =>
        r.status === 'completed' ? r.railTxId : '',
      ),
    );
    expect(ids.size).toBe(500);
    expect(railDecision(req(1), { failureRate: 0, seed: 'a' })).not.toEqual(
      railDecision(req(1), { failureRate: 0, seed: 'b' }),
    );
  });

  it('rejects a non-positive amount', () => {
    expect(railDecision({ ...req(1), amount: '0' }, { failureRate: 0, seed: 's' }).status).toBe('failed');
  });

  it('waits the configured delay', async () => {
    const t0 = Date.now();
    await sendPayout(req(1), { failureRate: 0, seed: 's', delayMs: 50 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
  });
});
