/**
 * The pages behind the emailed links (verify the address, reset the password, confirm a withdrawal), "forgot
 * password" and the "email not verified" banner. The components take the API as a prop (the SDK client in the app,
 * a fake in the component tests); the *Page wrappers connect them to the app's client, session and URL.
 * Errors show the API's code and message (INVALID_TOKEN, TOKEN_EXPIRED, EMAIL_NOT_VERIFIED, RATE_LIMITED, …).
 */
import { useEffect, useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import type { User, Withdrawal } from '@exchange/sdk';
import { client, useAuth } from '../lib/api.tsx';
import { errorOf } from '../lib/errors.ts';
import { ErrorBox, Loading, Num } from '../components/ui.tsx';

export interface EmailLinksApi {
  verifyEmail(token: string): Promise<unknown>;
  resendVerificationEmail(): Promise<unknown>;
  requestPasswordReset(email: string): Promise<unknown>;
  resetPassword(token: string, newPassword: string): Promise<unknown>;
  confirmWithdrawal(token: string): Promise<Withdrawal>;
}

const codeOf = (err: unknown) => (err ? errorOf(err).code : null);

/** A token from the URL, or a note that the link is incomplete (nothing is sent then). */
function NoToken() {
  return (
    <div className="error" role="alert" data-testid="no-token">
      This link is incomplete: it has no token. Open the link from the email again, or copy all of it into the address
      bar.
    </div>
  );
}

// ------------------------------------------------------------------------------------------------ resend link

/** "Send a new link" for the signed-in user; RATE_LIMITED and other refusals show the API's message. */
export function ResendVerification({
  api,
  email,
}: {
  api: Pick<EmailLinksApi, 'resendVerificationEmail'>;
  email?: string;
}) {
  const [state, setState] = useState<'idle' | 'busy' | 'sent'>('idle');
  const [error, setError] = useState<unknown>(null);
  const resend = async () => {
    setState('busy');
    setError(null);
    try {
      await api.resendVerificationEmail();
      setState('sent');
    } catch (err) {
      setError(err);
      setState('idle');
    }
  };
  if (state === 'sent')
    return (
      <span role="status" data-testid="resend-sent">
        A new link is on its way{email ? ` to ${email}` : ''}. Earlier links no longer work.
      </span>
    );
  return (
    <>
      <button type="button" onClick={() => void resend()} disabled={state === 'busy'}>
        Send a new link
      </button>
      <ErrorBox error={error} />
    </>
  );
}

/** Shown under the header while the signed-in user's address is unverified (withdrawals need it). */
export function UnverifiedEmailBanner({ user, api }: { user: User | null; api: EmailLinksApi }) {
  if (!user || user.emailVerified !== false) return null;
  return (
    <div className="notice banner" role="region" aria-label="Email not verified" data-testid="unverified-banner">
      <span>
        Your email address <strong>{user.email}</strong> is not verified yet: open the link we emailed you. Withdrawals
        need a verified address.
      </span>{' '}
      <ResendVerification api={api} email={user.email} />
    </div>
  );
}

// ------------------------------------------------------------------------------------------------ verify email

/** One POST per token, even when React mounts the page twice (development) or the user reloads quickly. */
const verifying = new Map<string, Promise<unknown>>();

export function VerifyEmail(p: {
  token: string | null;
  api: EmailLinksApi;
  signedIn: boolean;
  onVerified?: () => void | Promise<void>;
}) {
  const [done, setDone] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const { token, api, onVerified } = p;
  useEffect(() => {
    if (!token) return;
    let live = true;
    let call = verifying.get(token);
    if (!call) {
      call = api.verifyEmail(token);
      verifying.set(token, call);
    }
    call.then(
      async () => {
        if (!live) return;
        setDone(true);
        await onVerified?.();
      },
      (err: unknown) => {
        verifying.delete(token);
        if (live) setError(err);
      },
    );
    return () => {
      live = false;
    };
  }, [token, api, onVerified]);
  const code = codeOf(error);
  return (
    <section className="card narrow" aria-labelledby="verify-h" data-testid="verify-email">
      <h1 id="verify-h">Confirm your email</h1>
      {!token ? <NoToken /> : null}
      {token && !done && !error ? <Loading /> : null}
      {done ? (
        <p className="ok-msg" role="status" data-testid="email-verified">
          Your email address is confirmed.{' '}
          {p.signedIn ? <Link to="/wallet">Go to your wallet</Link> : <Link to="/login">Log in</Link>}
        </p>
      ) : null}
      <ErrorBox error={error} />
      {code === 'INVALID_TOKEN' || code === 'TOKEN_EXPIRED' ? (
        // a <div>: the resend button's error box is one, and a <p> cannot hold it
        <div className="resend">
          {p.signedIn ? (
            <ResendVerification api={api} />
          ) : (
            <>
              <Link to="/login">Log in</Link> to ask for a new link.
            </>
          )}
        </div>
      ) : null}
    </section>
  );
}

export function VerifyEmailPage() {
  const [params] = useSearchParams();
  const { user, setUser } = useAuth();
  const [onVerified] = useState(() => async () => {
    // the header banner goes away: ask the API for the user as it is now
    if (client.getSession()) setUser(await client.me().catch(() => null));
  });
  return <VerifyEmail token={params.get('token')} api={client} signedIn={Boolean(user)} onVerified={onVerified} />;
}

// ------------------------------------------------------------------------------------------------ forgot password

export function ForgotPassword({
  api,
  initialEmail = '',
}: {
  api: Pick<EmailLinksApi, 'requestPasswordReset'>;
  initialEmail?: string;
}) {
  const [email, setEmail] = useState(initialEmail);
  const [sentTo, setSentTo] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.requestPasswordReset(email.trim());
      setSentTo(email.trim());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  if (sentTo)
    return (
      <p className="ok-msg" role="status" data-testid="reset-requested">
        If an account exists for {sentTo}, we emailed it a link to set a new password. The link works once, for 30
        minutes.
      </p>
    );
  return (
    <form className="form-col" onSubmit={submit} aria-labelledby="forgot-h" data-testid="forgot-password">
      <h2 id="forgot-h">Reset your password</h2>
      <label>
        Email for the reset link
        <input
          name="forgot-email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
      </label>
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        Email me a reset link
      </button>
    </form>
  );
}

// ------------------------------------------------------------------------------------------------ reset password

export function ResetPassword(p: { token: string | null; api: EmailLinksApi; onReset?: () => void | Promise<void> }) {
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const [done, setDone] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!p.token) return;
    setError(null);
    if (password !== repeat) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    setBusy(true);
    try {
      await p.api.resetPassword(p.token, password);
      setDone(true);
      await p.onReset?.();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const code = codeOf(error);
  if (done)
    return (
      <section className="card narrow" aria-labelledby="reset-h">
        <h1 id="reset-h">Password changed</h1>
        <p className="ok-msg" role="status" data-testid="password-reset">
          Your password is changed. Every session and API key of your account was ended. <Link to="/login">Log in</Link>{' '}
          with the new password.
        </p>
      </section>
    );
  return (
    <form className="card narrow" onSubmit={submit} aria-labelledby="reset-h" data-testid="reset-password">
      <h1 id="reset-h">Set a new password</h1>
      {!p.token ? <NoToken /> : null}
      <label>
        New password
        <input
          name="new-password"
          type="password"
          autoComplete="new-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
      </label>
      <label>
        Repeat the new password
        <input
          name="repeat-password"
          type="password"
          autoComplete="new-password"
          required
          aria-invalid={mismatch}
          aria-describedby={mismatch ? 'repeat-error' : undefined}
          value={repeat}
          onChange={(e) => setRepeat(e.target.value)}
        />
      </label>
      {mismatch ? (
        <p className="field-error" id="repeat-error" role="alert">
          the two passwords differ
        </p>
      ) : null}
      <ErrorBox error={error} />
      {code === 'INVALID_TOKEN' || code === 'TOKEN_EXPIRED' ? (
        <p>
          <Link to="/login?forgot=1">Ask for a new reset link</Link>
        </p>
      ) : null}
      <button type="submit" className="primary" disabled={busy || !p.token}>
        Set new password
      </button>
    </form>
  );
}

export function ResetPasswordPage() {
  const [params] = useSearchParams();
  const { logout } = useAuth();
  // the reset ended every session, this browser's too
  return <ResetPassword token={params.get('token')} api={client} onReset={() => logout()} />;
}

// ------------------------------------------------------------------------------------------------ confirm withdrawal

/**
 * Confirms only on the user's click, never on load: a mail scanner that opens the link must not confirm a
 * withdrawal.
 */
export function ConfirmWithdrawal(p: { token: string | null; api: EmailLinksApi; signedIn: boolean }) {
  const [withdrawal, setWithdrawal] = useState<Withdrawal | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const confirm = async () => {
    if (!p.token) return;
    setBusy(true);
    setError(null);
    try {
      setWithdrawal(await p.api.confirmWithdrawal(p.token));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const code = codeOf(error);
  return (
    <section className="card narrow" aria-labelledby="confirm-w-h" data-testid="confirm-withdrawal">
      <h1 id="confirm-w-h">Confirm your withdrawal</h1>
      {!p.token ? <NoToken /> : null}
      {withdrawal ? (
        <div className="ok-msg" role="status" data-testid="withdrawal-confirmed">
          Withdrawal confirmed: <Num value={withdrawal.amount} /> {withdrawal.asset} to{' '}
          <span className="mono">{withdrawal.address}</span> (fee <Num value={withdrawal.fee} />
          ), status <strong>{withdrawal.status}</strong>.{' '}
          {p.signedIn ? <Link to="/wallet">See it in your wallet</Link> : <Link to="/login">Log in to follow it</Link>}
        </div>
      ) : (
        <>
          <p>
            Only confirm a withdrawal you asked for. If you did not, do not confirm: change your password and turn on
            2FA.
          </p>
          <ErrorBox error={error} />
          {code === 'INVALID_TOKEN' || code === 'TOKEN_EXPIRED' ? (
            <p>An unconfirmed withdrawal is cancelled when its link expires; request it again from the wallet.</p>
          ) : null}
          <button type="button" className="primary" onClick={() => void confirm()} disabled={busy || !p.token}>
            Confirm withdrawal
          </button>
        </>
      )}
    </section>
  );
}

export function ConfirmWithdrawalPage() {
  const [params] = useSearchParams();
  const { user } = useAuth();
  return <ConfirmWithdrawal token={params.get('token')} api={client} signedIn={Boolean(user)} />;
}
