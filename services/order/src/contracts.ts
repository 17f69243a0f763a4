// The trading-flow contracts this service produces and consumes (re-exported for one import site).
export {
  BookSnapshotV1,
  CancelOrderV1,
  OrderAmendedV1,
  OrderUpdatedV1,
  PlaceOrderV1,
  ROUTES,
  TradeExecutedV1,
} from '@exchange/contracts/trading';
export type { PayloadOf } from '@exchange/contracts';
