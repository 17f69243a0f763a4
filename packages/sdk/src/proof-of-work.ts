/**
 * The login's proof of work (ALTCHA v2, SHA-256): after many failed logins to an account from anywhere, the auth
 * service answers 429 PROOF_OF_WORK_REQUIRED with a signed challenge in `details.challenge`; the client finds the
 * counter whose derived key has the asked-for prefix and sends base64(JSON {challenge, solution}) as `proofOfWork`.
 * The owner's client pays a second or two once; a guesser pays it for every guess.
 */
import { solveChallenge, type Challenge, type DeriveKeyFunction } from 'altcha-lib';
import { ExchangeApiError } from './errors.ts';

/**
 * altcha-lib's SHA-256 key derivation (`algorithms/sha`: salt‖password hashed `cost` times, cut to `keyLength`), on
 * Web Crypto instead of node:crypto, so the same code runs in the browser (apps/web) and in Node.
 */
const deriveKey: DeriveKeyFunction = async (parameters, salt, password) => {
  let data = new Uint8Array(salt.length + password.length);
  data.set(salt, 0);
  data.set(password, salt.length);
  for (let i = 0; i < Math.max(1, parameters.cost); i++) {
    data = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', data));
  }
  return { parameters: {}, derivedKey: data.subarray(0, parameters.keyLength ?? 32) };
};

/** The challenge a 429 PROOF_OF_WORK_REQUIRED carries, or undefined for any other error. */
export function proofOfWorkChallenge(err: unknown): Challenge | undefined {
  if (!(err instanceof ExchangeApiError) || err.code !== 'PROOF_OF_WORK_REQUIRED') return undefined;
  const challenge = (err.details as { challenge?: Challenge } | undefined)?.challenge;
  return challenge?.parameters?.algorithm === 'SHA-256' ? challenge : undefined;
}

/** Solve `challenge` and encode the answer as the login's `proofOfWork` field. */
export async function solveProofOfWork(challenge: Challenge, signal?: AbortSignal): Promise<string> {
  if (challenge.parameters.algorithm !== 'SHA-256') throw new Error('unsupported proof-of-work algorithm');
  const controller = new AbortController();
  signal?.addEventListener('abort', () => controller.abort(), { once: true });
  const solution = await solveChallenge({ challenge, deriveKey, controller });
  if (!solution) throw new Error('the login proof-of-work challenge could not be solved (aborted or expired)');
  const bytes = new TextEncoder().encode(JSON.stringify({ challenge, solution }));
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}
