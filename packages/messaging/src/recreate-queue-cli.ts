/**
 * Re-create quorum queues declared by an older version with another x-delivery-limit (see recreate-queue.ts):
 *
 *   pnpm queues:recreate --list                 the queues whose limit differs from the current one (changes nothing)
 *   pnpm queues:recreate orders.BTC-USD …       re-create the named queues
 *   pnpm queues:recreate --all                  re-create every listed queue
 *   options: --delivery-limit N (default: the topology's BROKER_DELIVERY_LIMIT)
 *
 * Needs AMQP_URL (the services' vhost) and RABBITMQ_MANAGEMENT_URL (http://user:pass@host:15672) in the environment.
 * Stop the services consuming a queue before re-creating it (docs/runbook.md#old-broker-delivery-limit).
 */
import { parseArgs } from 'node:util';
import { BROKER_DELIVERY_LIMIT } from './topology.ts';
import { queuesWithOtherDeliveryLimit, recreateQueue } from './recreate-queue.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    list: { type: 'boolean', default: false },
    all: { type: 'boolean', default: false },
    'delivery-limit': { type: 'string' },
  },
});
const amqpUrl = process.env.AMQP_URL;
const managementUrl = process.env.RABBITMQ_MANAGEMENT_URL;
if (!amqpUrl || !managementUrl) {
  console.error('queues:recreate: set AMQP_URL and RABBITMQ_MANAGEMENT_URL');
  process.exit(2);
}
const deliveryLimit = values['delivery-limit'] ? Number(values['delivery-limit']) : BROKER_DELIVERY_LIMIT;
if (!Number.isSafeInteger(deliveryLimit) || deliveryLimit < 1) {
  console.error('queues:recreate: --delivery-limit must be a positive integer');
  process.exit(2);
}

const found = await queuesWithOtherDeliveryLimit({ amqpUrl, managementUrl, deliveryLimit });
if (values.list || (!values.all && positionals.length === 0)) {
  if (found.length === 0) console.log(`every queue has x-delivery-limit ${deliveryLimit}`);
  for (const q of found) console.log(`${q.queue}\tx-delivery-limit ${q.deliveryLimit}`);
  process.exit(0);
}
const queues = values.all ? found.map((q) => q.queue) : positionals;
let failed = 0;
for (const queue of queues) {
  try {
    const r = await recreateQueue({ amqpUrl, managementUrl, queue, deliveryLimit, log: (m) => console.log(m) });
    console.log(
      `${r.queue}: ${r.action} (x-delivery-limit ${r.before ?? 'none'} -> ${r.after}, ${r.messages} messages)`,
    );
  } catch (err) {
    failed++;
    console.error(`${queue}: ${(err as Error).message}`);
  }
}
process.exit(failed ? 1 : 0);
