// Engine ids never repeat after a restore. The database is restored to an earlier point (here: every payment table
// copied back from a backup taken mid-run), so the journal's sequence numbers are issued again; the commands applied
// after the restore are different ones. Their trade and message ids must be new (an epoch — the id generation of
// each engine load — is part of every id), or downstream inboxes would drop them as duplicates of the lost ones.
import { ROUTES } from '@exchange/contracts/trading';
import type { Runtime } from '../runtime.ts';
import { generateCommands } from '../testing/commands.ts';
import {
  Bus,
  type Env,
  journal,
  lastSeq,
  outboxMessages,
  startInProcess,
  stopInProcess,
  useEngineEnv,
  waitFor,
} from '../testing/harness.ts';
import type { JournalCommand } from './core.ts';

const QUEUE = ROUTES.ordersQueue('BTC-USD');
const TABLES = ['engine_state', 'engine_journal', 'engine_snapshots', 'engine_orders', 'inbox', 'outbox'];
let env: Env;
let bus: Bus;
let rt: Runtime | undefined;

useEngineEnv('pp_epoch', {
  ready: (e, b) => {
    env = e;
    bus = b;
  },
  runtime: () => rt,
});

async function runUntilConsumed(commands: ReturnType<typeof generateCommands>): Promise<void> {
  await bus.publish(QUEUE, commands);
  await waitFor('commands consumed', async () => {
    const { rows } = await env.db.pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM payment.inbox WHERE message_id = ANY($1)',
      [commands.map((c) => c.id)],
    );
    return Number(rows[0]!.n) === commands.length;
  });
  await rt!.messaging.relay!.drained();
}

it('trade and message ids after a database restore are new, though journal seqs repeat', async () => {
  rt = await startInProcess(env, { SNAPSHOT_EVERY: '20' });
  await runUntilConsumed(generateCommands(40, { seed: 31 }));
  await stopInProcess(rt);
  rt = undefined;
  // the backup
  for (const t of TABLES) await env.db.pool.query(`CREATE TABLE payment.backup_${t} AS TABLE payment.${t}`);
  const backupSeq = await lastSeq(env.db);

  rt = await startInProcess(env, { SNAPSHOT_EVERY: '20' });
  await runUntilConsumed(generateCommands(40, { seed: 32 }));
  const lost = await outboxMessages(env.db);
  const lostIds = new Set(lost.map((o) => o.message.id));
  const lostTrades = new Set(
    lost
      .filter((o) => o.message.type === 'engine.trade-executed')
      .map((o) => (o.message.payload as { tradeId: string }).tradeId),
  );
  const lostEpochs = new Set(
    (await journal(env.db)).filter((r) => r.seq > backupSeq).map((r) => (r.command as JournalCommand).epoch),
  );
  await stopInProcess(rt);
  rt = undefined;

  // the restore: every payment table back to the backup
  for (const t of TABLES) {
    await env.db.pool.query(`TRUNCATE payment.${t}`);
    await env.db.pool.query(`INSERT INTO payment.${t} SELECT * FROM payment.backup_${t}`);
  }
  expect(await lastSeq(env.db)).toBe(backupSeq);

  rt = await startInProcess(env, { SNAPSHOT_EVERY: '20' });
  await runUntilConsumed(generateCommands(40, { seed: 33 }));
  const rows = await journal(env.db);
  const after = rows.filter((r) => r.seq > backupSeq);
  expect(after.length).toBeGreaterThan(0);
  // the same journal seqs again …
  expect(after[0]!.seq).toBe(backupSeq + 1);
  // … in another id generation
  const epochs = new Set(after.map((r) => (r.command as JournalCommand).epoch));
  expect(epochs.size).toBe(1);
  for (const e of epochs) expect(lostEpochs.has(e)).toBe(false);
  const { rows: restored } = await env.db.pool.query<{
    message: { id: string; type: string; payload: { tradeId?: string } };
  }>(
    `SELECT message FROM payment.outbox
      WHERE sequence > (SELECT coalesce(max(sequence), 0) FROM payment.backup_outbox) ORDER BY sequence`,
  );
  expect(restored.length).toBeGreaterThan(0);
  const newTrades = restored
    .filter((o) => o.message.type === 'engine.trade-executed')
    .map((o) => o.message.payload.tradeId!);
  expect(newTrades.length).toBeGreaterThan(0);
  expect(lostTrades.size).toBeGreaterThan(0);
  expect(newTrades.filter((t) => lostTrades.has(t))).toEqual([]);
  // no message of the run after the restore reuses an id of the lost run
  expect(restored.filter((o) => lostIds.has(o.message.id)).map((o) => o.message.id)).toEqual([]);
}, 120_000);
