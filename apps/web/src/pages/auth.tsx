import { useState, type FormEvent } from 'react';
import { Link, useLocation, useNavigate, useSearchParams } from 'react-router-dom';
import { ExchangeApiError } from '@exchange/sdk';
import { client, useAuth } from '../lib/api.tsx';
import { ErrorBox } from '../components/ui.tsx';
import { ForgotPassword } from './email.tsx';

/** Email and password inputs, shared by log-in and sign-up. */
function CredentialFields(p: {
  email: string;
  password: string;
  onEmail: (v: string) => void;
  onPassword: (v: string) => void;
  passwordAutoComplete: 'current-password' | 'new-password';
}) {
  return (
    <>
      <label>
        Email
        <input
          name="email"
          type="email"
          autoComplete="username"
          required
          value={p.email}
          onChange={(e) => p.onEmail(e.target.value)}
        />
      </label>
      <label>
        Password
        <input
          name="password"
          type="password"
          autoComplete={p.passwordAutoComplete}
          required
          value={p.password}
          onChange={(e) => p.onPassword(e.target.value)}
        />
      </label>
    </>
  );
}

export function LoginPage() {
  const { setUser } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [needCode, setNeedCode] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [params] = useSearchParams();
  const [forgot, setForgot] = useState(params.get('forgot') === '1');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const second = code.trim();
      const r = await client.login({
        email,
        password,
        ...(second ? (/^\d{6}$/.test(second) ? { totpCode: second } : { recoveryCode: second }) : {}),
      });
      setUser(r.user);
      navigate((location.state as { from?: string } | null)?.from ?? '/', { replace: true });
    } catch (err) {
      // With 2FA on, the first attempt tells us a code is needed: ask for it instead of showing an error.
      if (err instanceof ExchangeApiError && err.code === 'MFA_REQUIRED' && !needCode) setNeedCode(true);
      else setError(err);
    } finally {
      setBusy(false);
    }
  };

  const form = (
    <form className="card narrow" onSubmit={submit} aria-labelledby="login-h">
      <h1 id="login-h">Log in</h1>
      <CredentialFields
        email={email}
        password={password}
        onEmail={setEmail}
        onPassword={setPassword}
        passwordAutoComplete="current-password"
      />
      {needCode ? (
        <label>
          2FA code (or a recovery code)
          <input
            name="totp"
            autoFocus
            autoComplete="one-time-code"
            inputMode="numeric"
            required
            value={code}
            onChange={(e) => setCode(e.target.value)}
          />
        </label>
      ) : null}
      <ErrorBox error={error} />
      <button type="submit" className="primary" disabled={busy}>
        {needCode ? 'Verify and log in' : 'Log in'}
      </button>
      <p className="muted">
        New here? <Link to="/register">Create an account</Link>
      </p>
    </form>
  );
  return (
    <>
      {form}
      <div className="card narrow follow">
        {forgot ? (
          <ForgotPassword api={client} initialEmail={email} />
        ) : (
          <button type="button" className="link underline" onClick={() => setForgot(true)}>
            Forgot your password?
          </button>
        )}
      </div>
    </>
  );
}

export function RegisterPage() {
  const { setUser } = useAuth();
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await client.register({ email, password });
      const r = await client.login({ email, password });
      setUser(r.user);
      navigate('/wallet', { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card narrow" onSubmit={submit} aria-labelledby="register-h">
      <h1 id="register-h">Create an account</h1>
      <CredentialFields
        email={email}
        password={password}
        onEmail={setEmail}
        onPassword={setPassword}
        passwordAutoComplete="new-password"
      />
      <ErrorBox error={error} />
      <button type="submit" className="primary" disabled={busy}>
        Sign up
      </button>
      <p className="muted">
        Already registered? <Link to="/login">Log in</Link>
      </p>
    </form>
  );
}
