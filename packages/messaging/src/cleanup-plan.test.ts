/**
 * The relay's cleanup reads each chunk from the index on its time column, whatever the table's size. Tables that hold
 * many times the chunk, with their times in no particular physical order (as after a restore, or rows applied out of
 * order), made the generic plan of a bare `LIMIT` a sequential scan: each minute's pass read every inbox row when none
 * had expired. The plans are taken as the relay's session takes them (`force_generic_plan`, as the pools set it).
 */
import { cleanupSql } from './outbox.ts';
import { SCHEMA, setupEnv, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;

beforeAll(async () => {
  env = await setupEnv('msg_cleanup_plan');
  // 200k rows per table, none expired, their times shuffled against the physical order
  await env.pool.query(`
    INSERT INTO ${SCHEMA}.inbox (queue, message_id, type, processed_at)
      SELECT 'q', md5(g::text), 't', now() - random() * interval '20 days' FROM generate_series(1, 200000) g;
    INSERT INTO ${SCHEMA}.outbox (message_id, type, exchange, routing_key, message, sent_at)
      SELECT md5(g::text), 't', 'x', 'y', '{}'::jsonb, now() - random() * interval '6 days'
        FROM generate_series(1, 200000) g;
    INSERT INTO ${SCHEMA}.message_attempts (queue, message_id, starts, updated_at)
      SELECT 'q', md5(g::text), 1, now() - random() * interval '20 days' FROM generate_series(1, 200000) g;
    ANALYZE ${SCHEMA}.inbox, ${SCHEMA}.outbox, ${SCHEMA}.message_attempts;
  `);
}, 120_000);
afterAll(async () => {
  await env?.drop();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}
const nodes = (p: PlanNode): PlanNode[] => [p, ...(p.Plans ?? []).flatMap(nodes)];

it.each(['outbox', 'inbox', 'attempts'] as const)('finds the %s chunk through its index, not a scan', async (step) => {
  const c = await env.pool.connect();
  try {
    await c.query('SET plan_cache_mode = force_generic_plan');
    await c.query(`PREPARE cleanup_${step}(double precision) AS ${cleanupSql(SCHEMA, 10_000)[step]}`);
    const { rows } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (FORMAT JSON) EXECUTE cleanup_${step}(${30 * 24 * 3600_000})`,
    );
    const plan = nodes(rows[0]!['QUERY PLAN'][0]!.Plan);
    expect(plan.filter((n) => n['Node Type'] === 'Seq Scan').map((n) => n['Relation Name'])).toEqual([]);
    // and it deletes nothing here, having read almost nothing
    const { rows: analyzed } = await c.query<{
      'QUERY PLAN': Array<{ Plan: PlanNode & { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }>;
    }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE cleanup_${step}(${30 * 24 * 3600_000})`);
    const top = analyzed[0]!['QUERY PLAN'][0]!.Plan;
    expect(top['Shared Hit Blocks'] + top['Shared Read Blocks']).toBeLessThan(50);
  } finally {
    c.release(true);
  }
});
