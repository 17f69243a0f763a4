import client from 'prom-client';

export type MetricsRegistry = client.Registry;

/** Sources sampled on scrape (each Messaging instance adds its own). */
export interface GaugeSource {
  queueLengths?(): Promise<Array<{ queue: string; messages: number }>>;
  outboxPending?(): Promise<{ service: string; pending: number } | undefined>;
}

export interface MessagingMetrics {
  deadLetters: client.Counter<'queue'>;
  consumed: client.Counter<'queue' | 'outcome'>;
  published: client.Counter<'service'>;
  packSize: client.Histogram<'service'>;
  unroutable: client.Counter<'service' | 'exchange'>;
  idConflicts: client.Counter<'queue'>;
  sources: Set<GaugeSource>;
}

const byRegistry = new WeakMap<client.Registry, MessagingMetrics>();

/**
 * The messaging metrics on `registry`, created once per registry (several Messaging instances in one process share
 * them). Gauges are sampled when scraped.
 */
export function messagingMetrics(registry: client.Registry = new client.Registry()): MessagingMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const sources = new Set<GaugeSource>();
  const m: MessagingMetrics = {
    sources,
    deadLetters: new client.Counter({
      name: 'jobs_dead_letter_total',
      help: 'Messages dead-lettered (poison after retries, invalid, or over the delivery limit), by queue',
      labelNames: ['queue'],
      registers: [registry],
    }),
    consumed: new client.Counter({
      name: 'messages_consumed_total',
      help: 'Deliveries handled, by queue and outcome (ok, duplicate, retry, transient, dead_letter, invalid, rejected, halted, batch_split)',
      labelNames: ['queue', 'outcome'],
      registers: [registry],
    }),
    published: new client.Counter({
      name: 'outbox_published_total',
      help: 'Outbox rows published and confirmed by the broker',
      labelNames: ['service'],
      registers: [registry],
    }),
    packSize: new client.Histogram({
      name: 'outbox_pack_messages',
      help: 'Outbox rows per AMQP message the relay published (1 = a plain message; more = a pack for one destination)',
      labelNames: ['service'],
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    unroutable: new client.Counter({
      name: 'outbox_unroutable_total',
      help: 'Outbox publishes returned by the broker as unroutable (kept pending and retried)',
      labelNames: ['service', 'exchange'],
      registers: [registry],
    }),
    idConflicts: new client.Counter({
      name: 'messages_id_conflicts_total',
      help: 'Messages whose id was already applied with different content (an id reused, e.g. after a restore): dead-lettered, never dropped as duplicates',
      labelNames: ['queue'],
      registers: [registry],
    }),
  };
  new client.Gauge({
    name: 'jobs_queue_length',
    help: 'Messages ready in a queue (sampled with a passive declare on scrape)',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of sources) {
        const rows = await s.queueLengths?.().catch(() => []);
        for (const r of rows ?? []) this.set({ queue: r.queue }, r.messages);
      }
    },
  });
  new client.Gauge({
    name: 'outbox_pending',
    help: 'Outbox rows not yet confirmed by the broker',
    labelNames: ['service'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of sources) {
        const r = await s.outboxPending?.().catch(() => undefined);
        if (r) this.set({ service: r.service }, r.pending);
      }
    },
  });
  byRegistry.set(registry, m);
  return m;
}
