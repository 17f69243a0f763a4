// The retrying, connection-loss-safe transaction lives in @exchange/db; kept under this name for the callers here.
export { withTransaction as inTransaction } from '@exchange/db';
