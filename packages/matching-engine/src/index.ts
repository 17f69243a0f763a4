export { OrderBook } from './order-book.ts';
export { CANCEL_REASONS, REJECT_REASONS } from './types.ts';
export type * from './types.ts';
