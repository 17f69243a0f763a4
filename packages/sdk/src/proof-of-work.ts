/**
 * The login's proof of work (ALTCHA v2, SHA-256): after many failed logins to an account from anywhere, the auth
 * service answers 429 PROOF_OF_WORK_REQUIRED with a signed challenge in `details.challenge`; the client finds the
 * counter whose derived key has the asked-for prefix and sends base64(JSON {challenge, solution}) as `proofOfWork`.
 * The owner's client pays a second or two once; a guesser pays it for every guess.
 */
import { solveChallenge, type Challenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/sha';
import { ExchangeApiError } from './errors.ts';

/** The challenge a 429 PROOF_OF_WORK_REQUIRED carries, or undefined for any other error. */
export function proofOfWorkChallenge(err: unknown): Challenge | undefined {
  if (!(err instanceof ExchangeApiError) || err.code !== 'PROOF_OF_WORK_REQUIRED') return undefined;
  const challenge = (err.details as { challenge?: Challenge } | undefined)?.challenge;
  return challenge?.parameters?.algorithm === 'SHA-256' ? challenge : undefined;
}

/** Solve `challenge` and encode the answer as the login's `proofOfWork` field. */
export async function solveProofOfWork(challenge: Challenge, signal?: AbortSignal): Promise<string> {
  const controller = new AbortController();
  signal?.addEventListener('abort', () => controller.abort(), { once: true });
  const solution = await solveChallenge({ challenge, deriveKey, controller });
  if (!solution) throw new Error('the login proof-of-work challenge could not be solved (aborted or expired)');
  const bytes = new TextEncoder().encode(JSON.stringify({ challenge, solution }));
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}
