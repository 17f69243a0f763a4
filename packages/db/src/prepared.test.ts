import { createPool, type Pool } from './index.ts';
import { createTestDatabase, type TestDatabase } from './testing.ts';

let db: TestDatabase;
let pool: Pool;

beforeAll(async () => {
  db = await createTestDatabase('prepared');
  await db.pool.query('CREATE TABLE item (id int PRIMARY KEY, label text NOT NULL)');
  await db.pool.query("INSERT INTO item VALUES (1, 'one'), (2, 'two')");
  // One connection, so every statement below runs on the session whose prepared statements are inspected.
  pool = createPool({ connectionString: db.url, max: 1, preparedStatements: true });
});
afterAll(async () => {
  await pool.end();
  await db.drop();
});

const preparedOnSession = async (): Promise<string[]> =>
  (await pool.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements ORDER BY statement')).rows.map(
    (r) => r.statement,
  );

describe('prepared statements (createPool)', () => {
  it('prepares a parameterised statement from its third use on, and answers the same either way', async () => {
    const text = 'SELECT label FROM item WHERE id = $1';
    const answers: string[] = [];
    for (let i = 0; i < 2; i++) answers.push((await pool.query<{ label: string }>(text, [1])).rows[0]!.label);
    expect(await preparedOnSession()).not.toContain(text);
    for (let i = 0; i < 3; i++)
      answers.push((await pool.query<{ label: string }>({ text, values: [2] })).rows[0]!.label);
    expect(answers).toEqual(['one', 'one', 'two', 'two', 'two']);
    expect(await preparedOnSession()).toContain(text);
  });

  it('never prepares a statement without parameters (it may hold several statements)', async () => {
    for (let i = 0; i < 4; i++) await pool.query('SELECT 1; SELECT 2');
    expect((await preparedOnSession()).filter((s) => s.includes('SELECT 1'))).toEqual([]);
  });

  it('keeps working after a migration changes the columns a prepared statement returns', async () => {
    const text = 'SELECT * FROM item WHERE id = $1';
    for (let i = 0; i < 3; i++) await pool.query(text, [1]);
    expect(await preparedOnSession()).toContain(text);
    await db.pool.query("ALTER TABLE item ADD COLUMN note text NOT NULL DEFAULT 'n'");
    // PostgreSQL refuses the stale plan once; from then on the text runs unnamed and sees the new column.
    await expect(pool.query(text, [1])).rejects.toMatchObject({ code: '0A000' });
    const { rows } = await pool.query<{ note: string }>(text, [1]);
    expect(rows[0]!.note).toBe('n');
  });

  it('supports the callback form', async () => {
    const text = 'SELECT label FROM item WHERE id = $1 AND label <> $2';
    const viaCallback = () =>
      new Promise<string>((resolve, reject) =>
        pool.query<{ label: string }>(text, [1, 'x'], (err, res) => (err ? reject(err) : resolve(res.rows[0]!.label))),
      );
    for (let i = 0; i < 4; i++) expect(await viaCallback()).toBe('one');
    expect(await preparedOnSession()).toContain(text);
  });
});

describe('plan cache mode (createPool)', () => {
  // A batched statement: its parameters are arrays, which a custom plan sizes and a generic plan can only guess.
  const batched = `SELECT i.label FROM unnest($1::int[]) AS k(id) JOIN item i ON i.id = k.id ORDER BY i.id`;
  const plansOf = async (p: Pool) => {
    for (let i = 0; i < 10; i++) await p.query(batched, [[1, 2]]);
    const { rows } = await p.query<{ generic: string; custom: string }>(
      'SELECT generic_plans::text AS generic, custom_plans::text AS custom FROM pg_prepared_statements WHERE statement = $1',
      [batched],
    );
    return { generic: Number(rows[0]!.generic), custom: Number(rows[0]!.custom) };
  };

  it('plans a prepared statement once per connection: every execution uses the generic plan', async () => {
    const p = createPool({ connectionString: db.url, max: 1 });
    try {
      expect((await p.query<{ m: string }>("SELECT current_setting('plan_cache_mode') AS m")).rows[0]!.m).toBe(
        'force_generic_plan',
      );
      // prepared from its third use on: 8 executions, none planned for its values
      expect(await plansOf(p)).toEqual({ generic: 8, custom: 0 });
    } finally {
      await p.end();
    }
  });

  it("PostgreSQL's default (auto) plans each of the first executions for their values", async () => {
    const p = createPool({ connectionString: db.url, max: 1, planCacheMode: 'auto' });
    try {
      expect((await plansOf(p)).custom).toBeGreaterThanOrEqual(5);
    } finally {
      await p.end();
    }
  });

  it('DB_PLAN_CACHE_MODE chooses the mode; an unknown value fails at start-up', async () => {
    const before = process.env['DB_PLAN_CACHE_MODE'];
    try {
      process.env['DB_PLAN_CACHE_MODE'] = 'auto';
      const p = createPool({ connectionString: db.url, max: 1 });
      expect((await p.query<{ m: string }>("SELECT current_setting('plan_cache_mode') AS m")).rows[0]!.m).toBe('auto');
      await p.end();
      process.env['DB_PLAN_CACHE_MODE'] = 'generic';
      expect(() => createPool({ connectionString: db.url })).toThrow(/DB_PLAN_CACHE_MODE must be one of/);
    } finally {
      if (before === undefined) delete process.env['DB_PLAN_CACHE_MODE'];
      else process.env['DB_PLAN_CACHE_MODE'] = before;
    }
  });
});
