/**
 * Dead-man's switch (issue 17): "cancel all my orders unless I call again within N seconds", for bots (like BitMEX
 * cancelAllAfter, Deribit's heartbeat). The switch is a row in `orders.dead_man_switches`, never process memory, so
 * it survives a restart or a crash of the replica that armed it: every replica's scheduler fires due switches
 * (FOR UPDATE SKIP LOCKED, so each fires once), deleting the row and sending the user's cancels in one transaction.
 *
 * A re-arm after the deadline does not rescue the orders: the arm request fires the expired switch itself (the
 * scheduler only polls, so the deadline, not the poll, decides), then arms the new one.
 */
import type pg from 'pg';
import { withTransaction } from '@exchange/db';
import type { Logger } from '@exchange/messaging';
import type { OrderService } from '../orders/service.ts';
import { deleteSwitch, getSwitch, lockSwitch, takeDueSwitch, upsertSwitch, type SwitchRow } from './repository.ts';
import { every } from './periodic.ts';

/** The longest countdown one call may set (a day): a switch is a heartbeat, not a scheduled cancel. */
export const MAX_DEAD_MAN_TIMEOUT_S = 86_400;

export interface DeadManState {
  armed: boolean;
  timeoutSeconds: number;
  /** ISO time at which the orders are cancelled if no call comes first (null when disarmed). */
  firesAt: string | null;
  /** Open orders the arm request cancelled because an earlier switch had already expired. */
  cancelledOnArm: number;
}

export interface FireResult {
  userId: string;
  cancelled: number;
}

export class DeadManSwitches {
  private readonly pool: pg.Pool;
  private readonly orders: OrderService;

  constructor(opts: { pool: pg.Pool; orders: OrderService }) {
    this.pool = opts.pool;
    this.orders = opts.orders;
  }

  /** Arm (or re-arm, moving the deadline to now + timeout) or, with 0, disarm the user's switch. */
  async arm(userId: string, timeoutSeconds: number): Promise<DeadManState> {
    return withTransaction(this.pool, async (c) => {
      const current = await lockSwitch(c, userId);
      let cancelledOnArm = 0;
      if (current?.due) cancelledOnArm = (await this.orders.cancelAllIn(c, userId, null, 'dead_man_switch')).length;
      if (timeoutSeconds === 0) {
        await deleteSwitch(c, userId);
        return { armed: false, timeoutSeconds: 0, firesAt: null, cancelledOnArm };
      }
      return { ...toState(await upsertSwitch(c, userId, timeoutSeconds)), cancelledOnArm };
    });
  }

  async get(userId: string): Promise<Omit<DeadManState, 'cancelledOnArm'>> {
    return toState(await getSwitch(this.pool, userId));
  }

  /**
   * Fire the switches whose deadline has passed (at most `limit` per call): each in its own transaction, deleting
   * the row and sending the cancels together. Rows another replica is firing are skipped, not waited for.
   */
  async fireDue(limit = 100): Promise<FireResult[]> {
    const fired: FireResult[] = [];
    for (let i = 0; i < limit; i++) {
      const r = await withTransaction(this.pool, async (c) => {
        const userId = await takeDueSwitch(c);
        if (!userId) return undefined;
        return { userId, cancelled: (await this.orders.cancelAllIn(c, userId, null, 'dead_man_switch')).length };
      });
      if (!r) break;
      fired.push(r);
    }
    return fired;
  }
}

function toState(row: SwitchRow | undefined): Omit<DeadManState, 'cancelledOnArm'> {
  return row
    ? { armed: true, timeoutSeconds: row.timeout_seconds, firesAt: row.fires_at.toISOString() }
    : { armed: false, timeoutSeconds: 0, firesAt: null };
}

/** Poll for due switches every `intervalMs` (each replica; SKIP LOCKED shares the work). Returns a stopper. */
export function startDeadManScheduler(
  switches: DeadManSwitches,
  intervalMs: number,
  log: Logger,
  onFire?: (r: FireResult[]) => void,
): () => Promise<void> {
  return every(
    intervalMs,
    async () => {
      const r = await switches.fireDue();
      if (!r.length) return;
      for (const f of r) log.info({ userId: f.userId, cancelled: f.cancelled }, "dead-man's switch fired");
      onFire?.(r);
    },
    (err) => log.error({ err }, "dead-man's switch scheduler failed"),
  );
}
