import { Type } from '@sinclair/typebox';
import {
  ContractValidationError,
  DecimalString,
  UnsignedIntegerString,
  contractFor,
  defineMessage,
  uuidv7,
  validateMessage,
} from './envelope.ts';

const Placed = defineMessage({
  type: 'test.order-placed',
  version: 1,
  payload: Type.Object({ orderId: Type.String(), price: DecimalString(), quantity: UnsignedIntegerString() }),
});

describe('envelope contracts', () => {
  it('creates and validates envelopes with a v7 id', () => {
    const env = Placed.create(
      { orderId: 'o1', price: '100.5', quantity: '3' },
      { producer: 'order', correlationId: 'c1' },
    );
    expect(env.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(env).toMatchObject({ type: 'test.order-placed', version: 1, producer: 'order', correlationId: 'c1' });
    expect(Placed.is(env)).toBe(true);
    expect(validateMessage(JSON.parse(JSON.stringify(env)))).toEqual(env);
  });

  it('is found in the registry by type and version', () => {
    expect(contractFor('test.order-placed', 1)).toBe(Placed);
    expect(contractFor('test.order-placed', 2)).toBeUndefined();
  });

  it('gives readable reasons', () => {
    const env = { ...Placed.create({ orderId: 'o1', price: '1', quantity: '1' }, { producer: 'p' }) };
    const bad = { ...env, payload: { orderId: 'o1', price: 100.5, quantity: '1' } };
    let err: unknown;
    try {
      validateMessage(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ContractValidationError);
    const cve = err as ContractValidationError;
    expect(cve.reasons.some((r) => r.startsWith('/payload/price'))).toBe(true);
    expect(cve.message).toContain('test.order-placed v1');
    expect(() => validateMessage({ ...env, type: 'nope.unknown' })).toThrow(
      /No contract registered for nope.unknown v1/,
    );
    expect(() => validateMessage('x')).toThrow(ContractValidationError);
    expect(() => Placed.create({ orderId: 'o', price: 'abc', quantity: '1' }, { producer: 'p' })).toThrow(
      /\/payload\/price/,
    );
  });

  it('rejects JSON numbers in payload schemas and conflicting redefinitions', () => {
    expect(() =>
      defineMessage({ type: 'test.float', version: 1, payload: Type.Object({ amount: Type.Number() }) }),
    ).toThrow(/\/amount/);
    expect(() => defineMessage({ type: 'test.order-placed', version: 1, payload: Type.Object({}) })).toThrow(
      /different/,
    );
  });

  it('v7 ids sort by time', () => {
    expect(uuidv7(1000) < uuidv7(2000)).toBe(true);
  });

  it('v7 ids stay unique, versioned and random across refills of the random pool', () => {
    // 256 ids per refill: 2,000 ids cross several refills, all in the same millisecond
    const ids = Array.from({ length: 2000 }, () => uuidv7(1_700_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(id).toMatch(/^018bcfe5-6800-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    // the random part is not stuck at zero (a pool read before its first fill would give zeros)
    expect(ids.filter((id) => id.endsWith('000000000000'))).toEqual([]);
  });
});
