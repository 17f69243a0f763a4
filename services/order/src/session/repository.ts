/**
 * The SQL of the session features: dead-man's switches (`dead_man_switches`) and cancel-on-disconnect sessions
 * (`cod_sessions`). The transactions around them (and the cancels they send) are in dead-man-switch.ts and
 * cancel-on-disconnect.ts.
 */
import type pg from 'pg';
import { ORDERS_SCHEMA } from '../db/schema.ts';

const ORDERS = `"${ORDERS_SCHEMA}"`;
type Db = Pick<pg.Pool | pg.PoolClient, 'query'>;

export interface SwitchRow {
  user_id: string;
  timeout_seconds: number;
  fires_at: Date;
}

/** The user's switch, locked, and whether its deadline has passed (by the database clock). */
export async function lockSwitch(
  c: pg.PoolClient,
  userId: string,
): Promise<(SwitchRow & { due: boolean }) | undefined> {
  const { rows } = await c.query<SwitchRow & { due: boolean }>(
    `SELECT user_id::text, timeout_seconds, fires_at, fires_at <= now() AS due
       FROM ${ORDERS}.dead_man_switches WHERE user_id = $1 FOR UPDATE`,
    [userId],
  );
  return rows[0];
}

export async function deleteSwitch(c: Db, userId: string): Promise<void> {
  await c.query(`DELETE FROM ${ORDERS}.dead_man_switches WHERE user_id = $1`, [userId]);
}

/** Arm or re-arm: the deadline is now + timeout by the database clock. */
export async function upsertSwitch(c: Db, userId: string, timeoutSeconds: number): Promise<SwitchRow> {
  const { rows } = await c.query<SwitchRow>(
    `INSERT INTO ${ORDERS}.dead_man_switches (user_id, timeout_seconds, fires_at, armed_at)
     VALUES ($1, $2::int, now() + make_interval(secs => $2::int), now())
     ON CONFLICT (user_id) DO UPDATE SET timeout_seconds = EXCLUDED.timeout_seconds,
       fires_at = EXCLUDED.fires_at, armed_at = EXCLUDED.armed_at
     RETURNING user_id::text, timeout_seconds, fires_at`,
    [userId, timeoutSeconds],
  );
  return rows[0]!;
}

export async function getSwitch(db: Db, userId: string): Promise<SwitchRow | undefined> {
  const { rows } = await db.query<SwitchRow>(
    `SELECT user_id::text, timeout_seconds, fires_at FROM ${ORDERS}.dead_man_switches WHERE user_id = $1`,
    [userId],
  );
  return rows[0];
}

/** Delete the most overdue switch nobody else is firing; its user, or undefined when none is due. */
export async function takeDueSwitch(c: pg.PoolClient): Promise<string | undefined> {
  const { rows } = await c.query<{ user_id: string }>(
    `DELETE FROM ${ORDERS}.dead_man_switches WHERE user_id = (
       SELECT user_id FROM ${ORDERS}.dead_man_switches WHERE fires_at <= now()
        ORDER BY fires_at LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING user_id::text`,
  );
  return rows[0]?.user_id;
}

export interface CodRow {
  id: string;
  user_id: string;
  market: string | null;
}

export async function upsertCodSession(
  db: Db,
  s: { id: string; userId: string; market: string | null; instanceId: string },
): Promise<void> {
  await db.query(
    `INSERT INTO ${ORDERS}.cod_sessions (id, user_id, market, instance_id) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, market = EXCLUDED.market, seen_at = now()`,
    [s.id, s.userId, s.market, s.instanceId],
  );
}

/** Remove a session; the removed row, or undefined if it was not there (never enabled, or already ended). */
export async function deleteCodSession(db: Db, id: string): Promise<CodRow | undefined> {
  const { rows } = await db.query<CodRow>(
    `DELETE FROM ${ORDERS}.cod_sessions WHERE id = $1 RETURNING id::text, user_id::text, market`,
    [id],
  );
  return rows[0];
}

/** The heartbeat: these sessions' sockets are still open. */
export async function touchCodSessions(db: Db, ids: string[]): Promise<void> {
  if (!ids.length) return;
  await db.query(`UPDATE ${ORDERS}.cod_sessions SET seen_at = now() WHERE id = ANY($1::uuid[])`, [ids]);
}

/**
 * Delete the oldest session not refreshed for `staleMs` (and not one of `openIds`, which this process holds) that
 * nobody else is ending; the removed row, or undefined.
 */
export async function takeStaleCodSession(
  c: pg.PoolClient,
  staleMs: number,
  openIds: string[],
): Promise<CodRow | undefined> {
  const { rows } = await c.query<CodRow>(
    `DELETE FROM ${ORDERS}.cod_sessions WHERE id = (
       SELECT id FROM ${ORDERS}.cod_sessions
        WHERE seen_at < now() - make_interval(secs => $1::double precision / 1000) AND NOT (id = ANY($2::uuid[]))
        ORDER BY seen_at LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING id::text, user_id::text, market`,
    [staleMs, openIds],
  );
  return rows[0];
}
