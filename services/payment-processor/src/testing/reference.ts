/**
 * An uninterrupted, in-memory run of the engine over a command stream, applying the same dedupe rules as the service
 * (message id; place and cancel by order id; a cancel that overtakes its order pre-cancels it; amends by message id only). Tests compare the
 * service's journal, snapshots and messages with it.
 */
import type { Envelope } from '@exchange/contracts';
import type { Market } from '@exchange/contracts/markets';
import {
  MarketCore,
  type AmendPayload,
  type ApplyResult,
  type CancelPayload,
  type JournalCommand,
  type PlacePayload,
} from '../engine/core.ts';
import { messagesFor, type OutgoingMessage } from '../engine/messages.ts';

export interface ReferenceRun {
  core: MarketCore;
  commands: JournalCommand[];
  results: ApplyResult[];
  messages: OutgoingMessage[];
}

/**
 * `epochs`: the id generation of each journaled command (from the service's journal, `command.epoch`), so the
 * reference names trades and messages as the service did; without it the reference uses legacy (epoch-less) ids.
 */
export function referenceRun(
  market: Market,
  envelopes: Envelope[],
  at = '2026-01-01T00:00:00.000Z',
  epochs?: ReadonlyArray<string | undefined>,
): ReferenceRun {
  const core = new MarketCore(market);
  const seen = new Set<string>();
  const orders = new Map<string, { placed: boolean; cancelled: boolean }>();
  const commands: JournalCommand[] = [];
  const results: ApplyResult[] = [];
  const messages: OutgoingMessage[] = [];
  for (const env of envelopes) {
    if (seen.has(env.id)) continue;
    seen.add(env.id);
    let cmd: JournalCommand | undefined;
    if (env.type === 'engine.place-order') {
      const order = env.payload as PlacePayload;
      const o = orders.get(order.orderId);
      if (o?.placed) continue;
      cmd = { kind: 'place', messageId: env.id, order, ...(o ? { preCancelled: true } : {}) };
      orders.set(order.orderId, { placed: true, cancelled: o?.cancelled ?? false });
    } else if (env.type === 'engine.amend-order') {
      cmd = { kind: 'amend', messageId: env.id, amend: env.payload as AmendPayload };
    } else {
      const cancel = env.payload as CancelPayload;
      const o = orders.get(cancel.orderId);
      if (o?.cancelled) continue;
      cmd = { kind: 'cancel', messageId: env.id, cancel };
      orders.set(cancel.orderId, { placed: o?.placed ?? false, cancelled: true });
    }
    const epoch = epochs?.[commands.length];
    if (epoch) cmd = { ...cmd, epoch };
    const r = core.apply(cmd);
    commands.push(cmd);
    results.push(r);
    messages.push(...messagesFor(market, cmd, r, at));
  }
  return { core, commands, results, messages };
}

/** A message without its timestamps (which record when it was applied), for comparing runs. */
export function timeless(message: Envelope): unknown {
  const { occurredAt: _o, ...rest } = message;
  const payload = { ...(rest.payload as Record<string, unknown>) };
  for (const k of ['at', 'executedAt', 'completedAt', 'failedAt']) delete payload[k];
  return { ...rest, payload };
}

/** Canonical JSON (sorted keys) so jsonb round trips compare equal. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}
