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
