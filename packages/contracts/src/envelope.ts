import { randomFillSync } from 'node:crypto';
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';

// ---------------------------------------------------------------------------------------------------------------
// Shared scalar schemas. Money is never a JSON number: decimal strings on the wire, integer strings for minor units.
// ---------------------------------------------------------------------------------------------------------------

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const ISO_DATE_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';

/** A UUID (any version), e.g. a message, order or user id. */
export const Uuid = (options: { description?: string } = {}) => Type.String({ pattern: UUID_PATTERN, ...options });
/** An ISO-8601 timestamp with a zone, as produced by `Date.prototype.toISOString()`. */
export const IsoDateTime = (options: { description?: string } = {}) =>
  Type.String({ pattern: ISO_DATE_TIME_PATTERN, ...options });
/** A signed decimal amount as a string, e.g. "-12.5", "0.00010000". */
export const DecimalString = (options: { description?: string } = {}) =>
  Type.String({ pattern: '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?$', maxLength: 80, ...options });
/** A non-negative decimal amount as a string, e.g. "12.5". */
export const UnsignedDecimalString = (options: { description?: string } = {}) =>
  Type.String({ pattern: '^(0|[1-9][0-9]*)(\\.[0-9]+)?$', maxLength: 80, ...options });
/** A signed integer as a string (minor units, ticks, lots, bigint sequence numbers), e.g. "-1500". */
export const IntegerString = (options: { description?: string } = {}) =>
  Type.String({ pattern: '^-?(0|[1-9][0-9]*)$', maxLength: 80, ...options });
/** A non-negative integer as a string (minor units), e.g. "1500". */
export const UnsignedIntegerString = (options: { description?: string } = {}) =>
  Type.String({ pattern: '^(0|[1-9][0-9]*)$', maxLength: 80, ...options });
/**
 * A row id (a bigserial) as a string, e.g. a page cursor. At most 18 digits: every such value fits PostgreSQL's
 * bigint, where 19 digits may overflow it (a 500 at the query instead of a 400); no table reaches 10^18 rows.
 */
export const ROW_ID_PATTERN = '^[0-9]{1,18}$';
export const RowIdString = (options: { description?: string } = {}) =>
  Type.String({ pattern: ROW_ID_PATTERN, ...options });

// ---------------------------------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------------------------------

/** Every message on the bus: commands and events alike. `id` is the AMQP messageId and the inbox key. */
export interface Envelope<P = unknown> {
  /** UUID (v7 when created here: time-ordered). */
  id: string;
  /** Dotted message type, e.g. `order.placed`. */
  type: string;
  /** Contract version of `payload` (integer >= 1). A breaking payload change is a new version. */
  version: number;
  /** ISO-8601 time the fact happened / the command was issued. */
  occurredAt: string;
  /** Service that produced it, e.g. `order`. */
  producer: string;
  /** Ties every message of one business flow together (e.g. the order id or the gateway request id). */
  correlationId?: string;
  /** Id of the message that caused this one, when there is one. */
  causationId?: string;
  payload: P;
}

export const TYPE_PATTERN = '^[a-z][a-z0-9_-]*(\\.[a-z0-9_-]+)+$';

/** Envelope shape without a specific payload. Extra top-level fields are tolerated (forward compatibility). */
export const EnvelopeSchema = Type.Object({
  id: Type.String({ pattern: UUID_PATTERN }),
  type: Type.String({ pattern: TYPE_PATTERN, maxLength: 200 }),
  version: Type.Integer({ minimum: 1 }),
  occurredAt: Type.String({ pattern: ISO_DATE_TIME_PATTERN }),
  producer: Type.String({ minLength: 1, maxLength: 100 }),
  correlationId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  causationId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  payload: Type.Unknown(),
});

const envelopeCheck = TypeCompiler.Compile(EnvelopeSchema);

export interface ValidationIssue {
  /** JSON pointer into the message, e.g. `/payload/price`. */
  path: string;
  message: string;
}

/** A message that does not match its contract (or has no contract). `reasons` are readable one-liners. */
export class ContractValidationError extends Error {
  readonly code = 'CONTRACT_VALIDATION_FAILED';
  readonly messageType: string | undefined;
  readonly messageVersion: number | undefined;
  readonly issues: ValidationIssue[];

  constructor(messageType: string | undefined, messageVersion: number | undefined, issues: ValidationIssue[]) {
    const what = messageType ? `${messageType} v${messageVersion ?? '?'}` : 'message';
    const list = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
    super(`${what} failed contract validation: ${list.join('; ')}`);
    this.name = 'ContractValidationError';
    this.messageType = messageType;
    this.messageVersion = messageVersion;
    this.issues = issues;
  }

  /** One readable line per problem, e.g. `/payload/price: Expected string`. */
  get reasons(): string[] {
    return this.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
  }
}

function issuesOf(check: TypeCheck<TSchema>, value: unknown, prefix = ''): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const e of check.Errors(value)) {
    out.push({ path: prefix + e.path, message: e.message });
    if (out.length >= 20) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Contracts and registry
// ---------------------------------------------------------------------------------------------------------------

export interface EnvelopeMeta {
  producer: string;
  correlationId?: string;
  causationId?: string;
  /** Defaults to a fresh UUID v7. Pass a deterministic id to make re-emission idempotent downstream. */
  id?: string;
  /** Defaults to now. */
  occurredAt?: string | Date;
}

export interface MessageContract<T extends TSchema = TSchema> {
  readonly type: string;
  readonly version: number;
  /** `type@vN`, the registry key. */
  readonly key: string;
  /** Payload schema (TypeBox / JSON Schema). */
  readonly payload: T;
  /** Full envelope schema with this payload, for docs (AsyncAPI/OpenAPI). */
  readonly schema: TObject;
  /** Type guard: the whole envelope (type, version and payload) matches. */
  is(value: unknown): value is Envelope<Static<T>>;
  /** Readable problems with `value` as an envelope of this contract; empty when valid. */
  errors(value: unknown): ValidationIssue[];
  /** Returns `value` typed, or throws ContractValidationError. */
  validate(value: unknown): Envelope<Static<T>>;
  /** Build a new envelope around `payload`; the payload is validated (throws ContractValidationError). */
  create(payload: Static<T>, meta: EnvelopeMeta): Envelope<Static<T>>;
}

/** The envelope type of a contract: `type OrderPlaced = MessageOf<typeof OrderPlacedV1>`. */
export type MessageOf<C> = C extends MessageContract<infer T> ? Envelope<Static<T>> : never;
/** The payload type of a contract. */
export type PayloadOf<C> = C extends MessageContract<infer T> ? Static<T> : never;

const registry = new Map<string, MessageContract>();

const keyOf = (type: string, version: number) => `${type}@v${version}`;

function findNumbers(schema: unknown, path: string, out: string[]): void {
  if (!schema || typeof schema !== 'object') return;
  const s = schema as Record<string, unknown>;
  if (s.type === 'number' || (Array.isArray(s.type) && s.type.includes('number'))) out.push(path || '/');
  for (const [k, v] of Object.entries(s)) {
    if (k === 'properties' && v && typeof v === 'object') {
      for (const [p, sub] of Object.entries(v)) findNumbers(sub, `${path}/${p}`, out);
    } else if (k === 'items' || k === 'additionalProperties' || k === 'not') {
      findNumbers(v, `${path}/${k}`, out);
    } else if ((k === 'anyOf' || k === 'allOf' || k === 'oneOf' || k === 'prefixItems') && Array.isArray(v)) {
      v.forEach((sub, i) => findNumbers(sub, `${path}/${k}/${i}`, out));
    }
  }
}

export interface DefineMessageOptions<T extends TSchema> {
  /** Dotted type, e.g. `order.placed` (commands read as imperatives: `engine.place-order`). */
  type: string;
  version: number;
  payload: T;
  description?: string;
  /**
   * Payload schemas may not contain JSON `number`s (money must be a decimal or integer string; counts use
   * Type.Integer). Set to true only for a payload that genuinely carries a non-money float.
   */
  allowFloats?: boolean;
}

/**
 * Define (and register) a versioned message contract with compiled validation.
 * Defining the same type and version twice is allowed only with an identical payload schema.
 */
export function defineMessage<T extends TSchema>(opts: DefineMessageOptions<T>): MessageContract<T> {
  if (!new RegExp(TYPE_PATTERN).test(opts.type)) {
    throw new Error(`defineMessage: type "${opts.type}" must be dotted lower-case, e.g. "order.placed"`);
  }
  if (!Number.isInteger(opts.version) || opts.version < 1) {
    throw new Error(`defineMessage: version of ${opts.type} must be an integer >= 1`);
  }
  if (!opts.allowFloats) {
    const floats: string[] = [];
    findNumbers(opts.payload, '', floats);
    if (floats.length) {
      throw new Error(
        `defineMessage: ${opts.type} v${opts.version} has JSON number fields (${floats.join(', ')}); ` +
          'use DecimalString/IntegerString for money and Type.Integer for counts',
      );
    }
  }
  const key = keyOf(opts.type, opts.version);
  const schema = Type.Object(
    {
      id: Type.String({ pattern: UUID_PATTERN }),
      type: Type.Literal(opts.type),
      version: Type.Literal(opts.version),
      occurredAt: Type.String({ pattern: ISO_DATE_TIME_PATTERN }),
      producer: Type.String({ minLength: 1, maxLength: 100 }),
      correlationId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
      causationId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
      payload: opts.payload,
    },
    { $id: key, title: key, ...(opts.description ? { description: opts.description } : {}) },
  );
  const existing = registry.get(key);
  if (existing) {
    if (JSON.stringify(existing.payload) !== JSON.stringify(opts.payload)) {
      throw new Error(`defineMessage: ${key} is already defined with a different payload schema`);
    }
    return existing as unknown as MessageContract<T>;
  }
  const check = TypeCompiler.Compile(schema);
  const payloadCheck = TypeCompiler.Compile(opts.payload);

  const contract: MessageContract<T> = {
    type: opts.type,
    version: opts.version,
    key,
    payload: opts.payload,
    schema,
    is: (value: unknown): value is Envelope<Static<T>> => check.Check(value),
    errors: (value) => (check.Check(value) ? [] : issuesOf(check as TypeCheck<TSchema>, value)),
    validate(value) {
      if (check.Check(value)) return value as unknown as Envelope<Static<T>>;
      throw new ContractValidationError(opts.type, opts.version, issuesOf(check as TypeCheck<TSchema>, value));
    },
    create(payload, meta) {
      if (!payloadCheck.Check(payload)) {
        throw new ContractValidationError(
          opts.type,
          opts.version,
          issuesOf(payloadCheck as TypeCheck<TSchema>, payload, '/payload'),
        );
      }
      const occurredAt =
        meta.occurredAt instanceof Date ? meta.occurredAt.toISOString() : (meta.occurredAt ?? new Date().toISOString());
      const env: Envelope<Static<T>> = {
        id: meta.id ?? uuidv7(),
        type: opts.type,
        version: opts.version,
        occurredAt,
        producer: meta.producer,
        ...(meta.correlationId !== undefined ? { correlationId: meta.correlationId } : {}),
        ...(meta.causationId !== undefined ? { causationId: meta.causationId } : {}),
        payload,
      };
      return contract.validate(env);
    },
  };
  registry.set(key, contract as unknown as MessageContract);
  return contract;
}

/** The registered contract for a type and version, if any. */
export function contractFor(type: string, version: number): MessageContract | undefined {
  return registry.get(keyOf(type, version));
}

/** Every registered contract (for docs generation). */
export function registeredContracts(): MessageContract[] {
  return [...registry.values()];
}

/**
 * Validate an unknown value as an envelope of a registered contract. Throws ContractValidationError with readable
 * reasons when the envelope is malformed, the type/version has no contract, or the payload does not match.
 */
export function validateMessage(value: unknown): Envelope {
  if (!envelopeCheck.Check(value)) {
    const v = value as Partial<Envelope> | null;
    const type = v && typeof v === 'object' && typeof v.type === 'string' ? v.type : undefined;
    const version = v && typeof v === 'object' && typeof v.version === 'number' ? v.version : undefined;
    const issues =
      value === null || typeof value !== 'object' || Array.isArray(value)
        ? [{ path: '', message: 'Expected a JSON object envelope' }]
        : issuesOf(envelopeCheck as TypeCheck<TSchema>, value);
    throw new ContractValidationError(type, version, issues);
  }
  const env = value as Envelope;
  const contract = contractFor(env.type, env.version);
  if (!contract) {
    throw new ContractValidationError(env.type, env.version, [
      { path: '/type', message: `No contract registered for ${env.type} v${env.version}` },
    ]);
  }
  return contract.validate(value);
}

/** Whether `value` has the envelope shape (payload not checked). */
export function isEnvelope(value: unknown): value is Envelope {
  return envelopeCheck.Check(value);
}

/**
 * Random bytes for the ids, taken 16 at a time. A `randomBytes(16)` call costs about 5 µs here (a crypto job and a
 * buffer per call), 20 times what the rest of an id costs, and an order makes several ids in the order service alone
 * (docs/benchmarks.md, twenty-sixth round). Node's own `randomUUID()` keeps such a cache for the same reason. The
 * bytes come from the same CSPRNG; each 16-byte slice is used by one id only.
 */
const RANDOM_POOL = Buffer.alloc(16 * 256);
let poolOffset = RANDOM_POOL.length;

/** RFC 9562 UUID version 7: 48-bit Unix ms timestamp + random bits, so ids sort by creation time. */
export function uuidv7(now: number = Date.now()): string {
  if (poolOffset === RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    poolOffset = 0;
  }
  const b = RANDOM_POOL.subarray(poolOffset, (poolOffset += 16));
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
