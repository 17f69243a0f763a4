/** Schemas more than one audience's routes use. */
import { Type } from '@exchange/platform';

export const MarketSymbol = Type.String({ pattern: '^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$', maxLength: 21 });
export const OrderId = Type.String({ format: 'uuid' });
export const MarketParams = Type.Object({ market: Type.String({ maxLength: 30 }) });

/** Bearer token or API key: the credentials of the user routes. */
export const userSecurity: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }];
/** Staff tokens only. */
export const staffSecurity: Array<Record<string, string[]>> = [{ bearer: [] }];

export const Page = <T extends ReturnType<typeof Type.Object>>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });
