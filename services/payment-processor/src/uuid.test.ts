import { orderedUuid, uuidv5 } from './uuid.ts';

describe('uuidv5', () => {
  it('matches the RFC 9562 test vector and is stable', () => {
    expect(uuidv5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
    expect(uuidv5('BTC-USD:trade:7')).toBe(uuidv5('BTC-USD:trade:7'));
    expect(uuidv5('BTC-USD:trade:7')).not.toBe(uuidv5('BTC-USD:trade:8'));
    expect(uuidv5('x')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('orderedUuid', () => {
  const V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  // seqs and subs that cross every field and byte boundary of the layout
  const seqs = [
    0,
    1,
    2,
    63,
    64,
    255,
    256,
    4095,
    4096,
    2 ** 20 - 1,
    2 ** 20,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 40,
    2 ** 48 - 1,
  ];
  const subs = [0, 1, 3, 4, 63, 64, 2 ** 16, 2 ** 24 - 1];

  it('is a stable RFC 9562 version 8 id, other for every name, seq and sub', () => {
    const seen = new Set<string>();
    for (const name of ['BTC-USD:e1:messages', 'BTC-USD:e2:messages', 'ETH-USD:e1:messages'])
      for (const seq of seqs)
        for (const sub of subs) {
          const id = orderedUuid(name, seq, sub);
          expect(id).toMatch(V8);
          expect(orderedUuid(name, seq, sub)).toBe(id);
          seen.add(id);
        }
    expect(seen.size).toBe(3 * seqs.length * subs.length);
  });

  it("sorts one name's ids by (seq, sub), as text and as PostgreSQL's uuid compares them (bytewise)", () => {
    const pairs = seqs.flatMap((seq) => subs.map((sub) => [seq, sub] as const));
    const ids = pairs.map(([seq, sub]) => orderedUuid('BTC-USD:e1:messages', seq, sub));
    const shuffled = ids.map((id, i) => ({ id, i })).sort((a, b) => (a.id < b.id ? 1 : -1)); // reversed text order
    expect(shuffled.map((x) => x.i)).toEqual(pairs.map((_, i) => pairs.length - 1 - i));
    const bytes = (id: string) => Buffer.from(id.replace(/-/g, ''), 'hex');
    for (let i = 1; i < ids.length; i++) expect(Buffer.compare(bytes(ids[i - 1]!), bytes(ids[i]!))).toBe(-1);
  });

  it('keeps the fields apart: the seq is readable back from the id', () => {
    for (const seq of seqs) {
      const x = BigInt(`0x${orderedUuid('n', seq, 5).replace(/-/g, '')}`);
      const bits = ((x >> 80n) << 74n) | (((x >> 64n) & 0xfffn) << 62n) | (x & ((1n << 62n) - 1n));
      expect(Number((bits >> 42n) & ((1n << 48n) - 1n))).toBe(seq);
      expect(Number((bits >> 18n) & 0xffffffn)).toBe(5);
    }
  });

  it('falls back to uuidv5 past 24 bits of sub, and refuses a seq it cannot hold', () => {
    expect(orderedUuid('n', 7, 2 ** 24)).toBe(uuidv5(`n:7:${2 ** 24}`));
    for (const seq of [-1, 2 ** 48, 1.5, Number.NaN]) expect(() => orderedUuid('n', seq)).toThrow(RangeError);
    expect(() => orderedUuid('n', 1, -1)).toThrow(RangeError);
  });
});
