/** Where to mail a user when the event carries only the id (withdrawal events): asked from the auth service. */
export interface Contacts {
  /** The user's address, or undefined when the user does not exist (no mail then). Throws when auth is away. */
  emailOf(userId: string): Promise<string | undefined>;
}

export function authContacts(opts: { authUrl: string; internalToken: string; timeoutMs?: number }): Contacts {
  const base = opts.authUrl.replace(/\/$/, '');
  return {
    async emailOf(userId) {
      const res = await fetch(`${base}/internal/users/${encodeURIComponent(userId)}/contact`, {
        headers: { 'x-internal-token': opts.internalToken },
        signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000),
      });
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw new Error(`auth contact lookup answered ${res.status}`);
      return ((await res.json()) as { email: string }).email;
    },
  };
}
