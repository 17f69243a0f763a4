import { uuidv5 } from './uuid.ts';

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
