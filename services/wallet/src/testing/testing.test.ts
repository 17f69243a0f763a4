import { randomUUID } from 'node:crypto';
import { createTestIssuer } from '@exchange/auth-client/testing';
import { createTestDatabase } from '@exchange/db/testing';
import { createTestVhost } from '@exchange/messaging/testing';
import { assertLedgerInvariants, fundUser, startTestWallet } from './index.ts';

test('startTestWallet: a listening wallet other services can hold funds with', async () => {
  const db = await createTestDatabase('wallet_testing');
  const vhost = await createTestVhost('wallet_testing');
  const issuer = await createTestIssuer();
  const wallet = await startTestWallet({ pool: db.pool, amqpUrl: vhost.url, auth: issuer.authOptions() });
  try {
    const user = randomUUID();
    await fundUser(db.pool, user, 'USD', 10_000n);
    const holdId = randomUUID();
    const res = await fetch(`${wallet.baseUrl}/internal/holds`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-internal-token': issuer.internalToken },
      body: JSON.stringify({
        holdId,
        userId: user,
        asset: 'USD',
        amount: '2500',
        reason: 'order',
        refType: 'order',
        refId: holdId,
      }),
    });
    expect(res.status).toBe(201);
    await assertLedgerInvariants(db.pool);
  } finally {
    await wallet.close();
    await issuer.close();
    await vhost.drop();
    await db.drop();
  }
});
