/**
 * Handler for the queues `orders.<MARKET>`: one market's engine commands, applied in the consumer's transaction
 * (MarketEngine.handle). EngineHost starts one consumer per market with ordersConsumer() and stops it when the
 * market halts.
 */
import type { BatchHandler, ConsumeOptions, MessageHandler } from '@exchange/messaging';
import { isTransientEngineError } from '../engine/errors.ts';
import { EngineDivergenceError, MarketHaltedError, type MarketEngine } from '../engine/market-engine.ts';
import { ORDERS_RETRY, ordersQueue } from './queues.ts';

/** Handler for queue `orders.<MARKET>`; `onHalted` runs (then the error is rethrown) when the market must stop. */
export function ordersHandler(
  engine: MarketEngine,
  onHalted: (err: EngineDivergenceError | MarketHaltedError) => void,
): MessageHandler {
  return (message, client) => haltingOn(onHalted, () => engine.handle(message, client));
}

/** The same for a group-commit batch of the queue (MarketEngine.handleBatch: one position lock per batch). */
export function ordersBatchHandler(
  engine: MarketEngine,
  onHalted: (err: EngineDivergenceError | MarketHaltedError) => void,
): BatchHandler {
  return (messages, client) => haltingOn(onHalted, () => engine.handleBatch(messages, client));
}

async function haltingOn(
  onHalted: (err: EngineDivergenceError | MarketHaltedError) => void,
  apply: () => Promise<void>,
): Promise<void> {
  try {
    await apply();
  } catch (err) {
    if (err instanceof EngineDivergenceError || err instanceof MarketHaltedError) onHalted(err);
    throw err;
  }
}

export interface OrdersConsumerOptions {
  prefetch: number;
  /** Commands applied per transaction at most (group commit). */
  batch: number;
  /** Unexplained failures of one command (retried with ORDERS_RETRY's backoff) before the market halts. */
  haltAfterFailures: number;
  /** A command failed past its retries: halt the market (never skip the command). */
  onExhausted: (reason: string) => Promise<void>;
  /** The engine diverged or the market was halted while applying a command: stop taking its commands. */
  onHalted: (err: EngineDivergenceError | MarketHaltedError) => void;
}

/** How one market's queue is consumed. */
export function ordersConsumer(engine: MarketEngine, o: OrdersConsumerOptions): ConsumeOptions {
  return {
    queue: ordersQueue(engine.symbol).name,
    // room for a full batch waiting behind the one in hand
    prefetch: Math.max(o.prefetch, 2 * o.batch),
    concurrency: 1,
    batch: o.batch,
    // Retry in place: a command that fails holds the queue instead of going to a retry queue, so no later command
    // overtakes it and price-time priority is what clients submitted.
    retryMode: 'inline',
    retry: { attempts: Math.max(1, o.haltAfterFailures), backoffMs: ORDERS_RETRY.backoffMs },
    transient: isTransientEngineError,
    // never skip a command: past its retries (or when it keeps crashing the engine) the market halts
    onExhausted: async ({ envelope, reason }) => {
      await o.onExhausted(`command ${envelope.id} (${envelope.type}) keeps failing: ${reason}`);
    },
    onInvalid: (parsed, reason, client) => engine.rejectInvalid(parsed, reason, client),
    handler: ordersHandler(engine, o.onHalted),
    batchHandler: ordersBatchHandler(engine, o.onHalted),
  };
}
