import { Type, type TSchema } from '@sinclair/typebox';

/** Body of every error response. */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code' }),
      message: Type.String(),
      requestId: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorBody', title: 'Error' },
);

/** Error responses to merge into a route's `response` schema: `response: { 200: X, ...errorResponses(400, 404) }`. */
export function errorResponses(...codes: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const c of codes) out[c] = Type.Ref(ErrorBody);
  return out;
}

/** A decimal amount on the wire: digits with an optional fraction, never a number, never exponent notation. */
export const DecimalString = (description = 'Decimal amount as a string') =>
  Type.String({ pattern: '^(0|[1-9][0-9]*)(\\.[0-9]+)?$', maxLength: 60, description, examples: ['0.015'] });

export const SignedDecimalString = (description = 'Signed decimal amount as a string') =>
  Type.String({ pattern: '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?$', maxLength: 61, description });

export const Uuid = Type.String({ format: 'uuid' });
