/**
 * @jest-environment jsdom
 */
// The pages behind the emailed links, with a fake API in place of the SDK client (the server side is being built
// on another branch; the browser test covers them against the real stack once it lands). Each page sends exactly
// what the contract says, never sends without a token, and shows the API's code and message on refusal.
import { TextEncoder, TextDecoder } from 'node:util';
import { StrictMode, type ReactNode } from 'react';
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { ExchangeApiError, type User, type Withdrawal } from '@exchange/sdk';
import type { EmailLinksApi } from './email.tsx';

// jsdom has no TextEncoder, which the router needs when it loads: provide Node's before loading it.
Object.assign(globalThis, { TextEncoder, TextDecoder });
const { MemoryRouter } = await import('react-router-dom');
const { ConfirmWithdrawal, ForgotPassword, ResetPassword, UnverifiedEmailBanner, VerifyEmail } =
  await import('./email.tsx');

const apiError = (status: number, code: string, message: string) =>
  new ExchangeApiError({ status, code, message, requestId: 'req-1', method: 'POST', path: '/x' });

const WITHDRAWAL: Withdrawal = {
  id: '5f0c9a52-2a7e-4a53-9a43-6d1f7c1b0b01',
  asset: 'BTC',
  amount: '0.12345678',
  fee: '0.00010000',
  address: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq',
  status: 'pending',
  confirmationExpiresAt: null,
  railTxId: null,
  failureReason: null,
  createdAt: '2026-12-03T10:00:00.000Z',
  updatedAt: '2026-12-03T10:00:00.000Z',
};

/** A fake SDK: records each call; `answers` decides what each method returns or throws. */
function fakeApi(answers: Partial<Record<keyof EmailLinksApi, () => Promise<unknown>>> = {}) {
  const calls: Array<[string, ...unknown[]]> = [];
  const method =
    (name: keyof EmailLinksApi, dflt: unknown) =>
    (...args: unknown[]) => {
      calls.push([name, ...args]);
      return answers[name] ? answers[name]() : Promise.resolve(dflt);
    };
  const api = {
    verifyEmail: method('verifyEmail', { emailVerified: true }),
    resendVerificationEmail: method('resendVerificationEmail', { sent: true }),
    requestPasswordReset: method('requestPasswordReset', { accepted: true }),
    resetPassword: method('resetPassword', { reset: true }),
    confirmWithdrawal: method('confirmWithdrawal', WITHDRAWAL),
  } as EmailLinksApi;
  return { api, calls };
}

async function show(ui: ReactNode) {
  await act(async () => {
    render(
      <StrictMode>
        <MemoryRouter>{ui}</MemoryRouter>
      </StrictMode>,
    );
  });
}
const click = async (name: string | RegExp) => {
  await act(async () => {
    fireEvent.click(screen.getByRole('button', { name }));
  });
};
const type = (name: string, value: string) =>
  fireEvent.change(document.querySelector(`[name="${name}"]`)!, { target: { value } });
const submit = async (testId: string) => {
  await act(async () => {
    fireEvent.submit(screen.getByTestId(testId));
  });
};
const alertText = () => screen.getByTestId('error').textContent;

afterEach(cleanup);

describe('verify email', () => {
  test('posts the token once (also when React mounts twice) and says it is confirmed', async () => {
    const { api, calls } = fakeApi();
    let verified = 0;
    await show(<VerifyEmail token="tok-1" api={api} signedIn onVerified={() => void verified++} />);
    await screen.findByTestId('email-verified');
    expect(calls).toEqual([['verifyEmail', 'tok-1']]);
    expect(verified).toBe(1);
    expect(screen.getByTestId('email-verified').textContent).toContain('Your email address is confirmed.');
  });

  test.each([
    ['TOKEN_EXPIRED', 'this link has expired; ask for a new one'],
    ['INVALID_TOKEN', 'this link is not valid or was already used'],
  ])('%s: the API code and message, and a new link for the signed-in user', async (code, message) => {
    const { api, calls } = fakeApi({
      verifyEmail: () => Promise.reject(apiError(400, code, message)),
      resendVerificationEmail: () =>
        Promise.reject(apiError(429, 'RATE_LIMITED', 'too many requests; try again later')),
    });
    await show(<VerifyEmail token={`tok-${code}`} api={api} signedIn />);
    await screen.findByTestId('error');
    expect(alertText()).toBe(`${code}: ${message} (request req-1)`);
    expect(screen.queryByTestId('email-verified')).toBeNull();
    await click('Send a new link');
    expect(calls.at(-1)).toEqual(['resendVerificationEmail']);
    expect(screen.getAllByTestId('error').map((e) => e.textContent)).toContain(
      'RATE_LIMITED: too many requests; try again later (request req-1)',
    );
  });

  test('signed out, an expired link asks to log in for a new one', async () => {
    const { api } = fakeApi({ verifyEmail: () => Promise.reject(apiError(400, 'TOKEN_EXPIRED', 'expired')) });
    await show(<VerifyEmail token="tok-so" api={api} signedIn={false} />);
    await screen.findByTestId('error');
    expect(screen.queryByRole('button', { name: 'Send a new link' })).toBeNull();
    expect(screen.getByRole('link', { name: 'Log in' }).getAttribute('href')).toBe('/login');
  });

  test('a link without a token sends nothing', async () => {
    const { api, calls } = fakeApi();
    await show(<VerifyEmail token={null} api={api} signedIn={false} />);
    expect(screen.getByTestId('no-token')).toBeTruthy();
    expect(calls).toEqual([]);
  });
});

describe('unverified email banner', () => {
  const user: User = {
    id: 'u1',
    email: 'ann@example.com',
    roles: ['user'],
    mfaEnabled: false,
    emailVerified: false,
    locked: false,
    createdAt: '2026-01-01T00:00:00Z',
  };

  test('shown only while the address is unverified; resend sends a new link', async () => {
    const { api, calls } = fakeApi();
    await show(<UnverifiedEmailBanner user={{ ...user, emailVerified: true }} api={api} />);
    expect(screen.queryByTestId('unverified-banner')).toBeNull();
    cleanup();
    await show(<UnverifiedEmailBanner user={null} api={api} />);
    expect(screen.queryByTestId('unverified-banner')).toBeNull();
    cleanup();
    await show(<UnverifiedEmailBanner user={user} api={api} />);
    expect(screen.getByTestId('unverified-banner').textContent).toContain('ann@example.com');
    await click('Send a new link');
    expect(calls).toEqual([['resendVerificationEmail']]);
    expect(screen.getByTestId('resend-sent').textContent).toContain('A new link is on its way to ann@example.com');
  });
});

describe('forgot password', () => {
  test('asks for the link and answers the same whether or not the account exists', async () => {
    const { api, calls } = fakeApi();
    await show(<ForgotPassword api={api} initialEmail="ann@example.com" />);
    await submit('forgot-password');
    expect(calls).toEqual([['requestPasswordReset', 'ann@example.com']]);
    expect(screen.getByTestId('reset-requested').textContent).toContain('If an account exists for ann@example.com');
  });

  test('RATE_LIMITED shows the API message and keeps the form', async () => {
    const { api } = fakeApi({
      requestPasswordReset: () => Promise.reject(apiError(429, 'RATE_LIMITED', 'too many requests; try again later')),
    });
    await show(<ForgotPassword api={api} />);
    type('forgot-email', 'bob@example.com');
    await submit('forgot-password');
    expect(alertText()).toBe('RATE_LIMITED: too many requests; try again later (request req-1)');
    expect(screen.getByTestId('forgot-password')).toBeTruthy();
  });
});

describe('reset password', () => {
  test('two different passwords are refused in the form and nothing is sent', async () => {
    const { api, calls } = fakeApi();
    await show(<ResetPassword token="tok-r" api={api} />);
    type('new-password', 'correct horse 1');
    type('repeat-password', 'correct horse 2');
    await submit('reset-password');
    expect(screen.getByRole('alert').textContent).toBe('the two passwords differ');
    expect(calls).toEqual([]);
  });

  test('sends token and password, then ends the local session and asks to log in', async () => {
    const { api, calls } = fakeApi();
    let resets = 0;
    await show(<ResetPassword token="tok-r" api={api} onReset={() => void resets++} />);
    type('new-password', 'correct horse 1');
    type('repeat-password', 'correct horse 1');
    await submit('reset-password');
    expect(calls).toEqual([['resetPassword', 'tok-r', 'correct horse 1']]);
    expect(resets).toBe(1);
    expect(screen.getByTestId('password-reset').textContent).toContain('Your password is changed.');
  });

  test.each([
    ['INVALID_TOKEN', 'this link is not valid or was already used'],
    ['TOKEN_EXPIRED', 'this link has expired; ask for a new one'],
    ['WEAK_PASSWORD', 'password is too common'],
  ])('%s: the API code and message', async (code, message) => {
    const { api } = fakeApi({ resetPassword: () => Promise.reject(apiError(400, code, message)) });
    await show(<ResetPassword token="tok-r" api={api} />);
    type('new-password', 'password1');
    type('repeat-password', 'password1');
    await submit('reset-password');
    expect(alertText()).toBe(`${code}: ${message} (request req-1)`);
    expect(screen.queryByRole('link', { name: 'Ask for a new reset link' }) !== null).toBe(code !== 'WEAK_PASSWORD');
  });

  test('without a token the form cannot be sent', async () => {
    const { api, calls } = fakeApi();
    await show(<ResetPassword token={null} api={api} />);
    expect(screen.getByTestId('no-token')).toBeTruthy();
    expect((screen.getByRole('button', { name: 'Set new password' }) as HTMLButtonElement).disabled).toBe(true);
    await submit('reset-password');
    expect(calls).toEqual([]);
  });
});

describe('confirm withdrawal', () => {
  test('nothing is confirmed on load (mail scanners open links); a click confirms and shows it exactly', async () => {
    const { api, calls } = fakeApi();
    await show(<ConfirmWithdrawal token="tok-w" api={api} signedIn />);
    expect(calls).toEqual([]);
    await click('Confirm withdrawal');
    expect(calls).toEqual([['confirmWithdrawal', 'tok-w']]);
    expect(screen.getByTestId('withdrawal-confirmed').textContent).toBe(
      `Withdrawal confirmed: 0.12345678 BTC to ${WITHDRAWAL.address} (fee 0.00010000), status pending. See it in your wallet`,
    );
  });

  test.each([
    ['TOKEN_EXPIRED', 'this link has expired; ask for a new one'],
    ['INVALID_TOKEN', 'this link is not valid or was already used'],
    ['EMAIL_NOT_VERIFIED', 'confirm your email address first'],
  ])('%s: the API code and message', async (code, message) => {
    const { api } = fakeApi({ confirmWithdrawal: () => Promise.reject(apiError(400, code, message)) });
    await show(<ConfirmWithdrawal token="tok-w" api={api} signedIn={false} />);
    await click('Confirm withdrawal');
    expect(alertText()).toBe(`${code}: ${message} (request req-1)`);
    expect(screen.queryByTestId('withdrawal-confirmed')).toBeNull();
  });
});
