/**
 * The SQL of order amends (`order_amends`): the amend transactions and sweeper in amend.ts and the engine's amend
 * outcomes (messaging/order-events.ts). Each function sends one statement, its text unchanged from where it was
 * written (the prepared-statement cache and the query-plan test key on the text).
 */
import type pg from 'pg';
import type { PayloadOf } from '@exchange/contracts';
import type { OrderAmendedV1 } from '@exchange/contracts/trading';
import { ORDERS_SCHEMA } from '../db/schema.ts';

const ORDERS = `"${ORDERS_SCHEMA}"`;
type Db = Pick<pg.Pool | pg.PoolClient, 'query'>;

export type AmendStatus = 'pending' | 'sent' | 'applied' | 'rejected' | 'expiring';

export interface AmendRow {
  id: string;
  order_id: string;
  user_id: string;
  amend_seq: number;
  request_hash: string;
  price_ticks: string | null;
  quantity_lots: string | null;
  top_up_amount: string;
  status: AmendStatus;
  reason: string | null;
  priority_kept: boolean | null;
  hold_delta: string | null;
  created_at: Date;
  updated_at: Date;
}

export async function findAmendBySeq(db: Db, orderId: string, amendSeq: number): Promise<AmendRow | undefined> {
  const { rows: prev } = await db.query<AmendRow>(
    `SELECT * FROM ${ORDERS}.order_amends WHERE order_id = $1 AND amend_seq = $2`,
    [orderId, amendSeq],
  );
  return prev[0];
}

/** Whether an amend of the order is still on its way (pending, sent or expiring). */
export async function hasOpenAmend(db: Db, orderId: string): Promise<boolean> {
  const { rows: open } = await db.query(
    `SELECT 1 FROM ${ORDERS}.order_amends WHERE order_id = $1 AND status IN ('pending', 'sent', 'expiring')`,
    [orderId],
  );
  return open.length > 0;
}

export async function insertPendingAmend(
  db: Db,
  values: [
    id: string,
    orderId: string,
    userId: string,
    amendSeq: number,
    requestHash: string,
    priceTicks: string | null,
    quantityLots: string | null,
    topUpAmount: string,
  ],
): Promise<AmendRow> {
  const { rows: ins } = await db.query<AmendRow>(
    `INSERT INTO ${ORDERS}.order_amends (id, order_id, user_id, amend_seq, request_hash, price_ticks, quantity_lots,
           top_up_amount, status)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'pending') RETURNING *`,
    values,
  );
  return ins[0]!;
}

/** The order's amend counter (`amend_seq`); returns the order. */
export async function setOrderAmendSeq<R>(db: Db, orderId: string, seq: number): Promise<R> {
  const { rows: upd } = await db.query(`UPDATE ${ORDERS}.orders SET amend_seq = $2 WHERE id = $1 RETURNING *`, [
    orderId,
    seq,
  ]);
  return upd[0] as R;
}

export async function rejectPendingAmend(db: Db, amendId: string, reason: string): Promise<void> {
  // a key lookup with a state check, written `IS TRUE` (docs/architecture.md, Conventions)
  await db.query(
    `UPDATE ${ORDERS}.order_amends SET status = 'rejected', reason = $2, updated_at = now()
          WHERE id = $1 AND (status = 'pending') IS TRUE`,
    [amendId, reason],
  );
}

export async function lockAmend(c: pg.PoolClient, amendId: string): Promise<AmendRow | undefined> {
  const { rows } = await c.query<AmendRow>(`SELECT * FROM ${ORDERS}.order_amends WHERE id = $1 FOR UPDATE`, [amendId]);
  return rows[0];
}

export async function markAmendSent(db: Db, amendId: string): Promise<AmendRow> {
  const { rows } = await db.query<AmendRow>(
    `UPDATE ${ORDERS}.order_amends SET status = 'sent', updated_at = now() WHERE id = $1 RETURNING *`,
    [amendId],
  );
  return rows[0]!;
}

export async function amendsOfOrder(db: Db, orderId: string): Promise<AmendRow[]> {
  const { rows: amends } = await db.query<AmendRow>(
    `SELECT * FROM ${ORDERS}.order_amends WHERE order_id = $1 ORDER BY amend_seq`,
    [orderId],
  );
  return amends;
}

/** Amends `pending` for longer than `olderThanMs` → `expiring`. */
export async function expireStalePending(db: Db, olderThanMs: number): Promise<void> {
  await db.query(
    `UPDATE ${ORDERS}.order_amends SET status = 'expiring', updated_at = now()
        WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1::double precision / 1000)`,
    [olderThanMs],
  );
}

/** Up to 100 `expiring` amends, oldest first. */
export async function expiringAmends(db: Db): Promise<AmendRow[]> {
  const { rows } = await db.query<AmendRow>(
    `SELECT * FROM ${ORDERS}.order_amends WHERE status = 'expiring' ORDER BY created_at LIMIT 100`,
  );
  return rows;
}

/** An `expiring` amend whose top-up was released → `rejected` PENDING_EXPIRED. */
export async function rejectExpired(db: Db, amendId: string): Promise<void> {
  await db.query(
    `UPDATE ${ORDERS}.order_amends SET status = 'rejected', reason = 'PENDING_EXPIRED', updated_at = now()
          WHERE id = $1 AND status = 'expiring'`,
    [amendId],
  );
}

/**
 * The engine's outcome of an amend, recorded once (`pending`/`sent`/`expiring` → `applied`/`rejected`); undefined
 * when the amend already had one (or is unknown).
 */
export async function recordAmendOutcome(
  c: Db,
  p: PayloadOf<typeof OrderAmendedV1>,
): Promise<{ order_id: string } | undefined> {
  const { rows } = await c.query<{ order_id: string }>(
    `UPDATE ${ORDERS}.order_amends SET status = $2, reason = $3, priority_kept = $4, hold_delta = $5, updated_at = now()
      WHERE id = $1 AND order_id = $6 AND status IN ('pending', 'sent', 'expiring') RETURNING order_id`,
    [p.amendId, p.ok ? 'applied' : 'rejected', p.reason ?? null, p.ok ? p.priorityKept : null, p.holdDelta, p.orderId],
  );
  return rows[0];
}

export async function amendExists(c: Db, amendId: string): Promise<boolean> {
  const { rowCount } = await c.query(`SELECT 1 FROM ${ORDERS}.order_amends WHERE id = $1`, [amendId]);
  return !!rowCount;
}
