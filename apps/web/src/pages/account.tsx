import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import QRCode from 'qrcode';
import { useState, type FormEvent } from 'react';
import type { ApiKeyScope, CreatedApiKey, TwoFactorSetup } from '@exchange/sdk';
import { client, useAuth } from '../lib/api.tsx';
import { useStepUp } from '../components/step-up.tsx';
import { Empty, ErrorBox, Head, Panel, Time } from '../components/ui.tsx';
import { SecurityLog } from '../components/security-log.tsx';

function TwoFactor() {
  const { user, setUser } = useAuth();
  const withStepUp = useStepUp();
  const [password, setPassword] = useState('');
  const [setup, setSetup] = useState<(TwoFactorSetup & { qr: string }) | null>(null);
  const [code, setCode] = useState('');
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const start = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const s = await client.setup2fa(password);
      setSetup({ ...s, qr: await QRCode.toDataURL(s.otpauthUri, { margin: 1, width: 200 }) });
      setPassword('');
    } catch (err) {
      setError(err);
    }
  };
  const verify = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const r = await client.verify2fa(code);
      setRecovery(r.recoveryCodes);
      setSetup(null);
      setUser(await client.me());
    } catch (err) {
      setError(err);
    }
  };
  const disable = async () => {
    setError(null);
    try {
      await withStepUp(() => client.disable2fa());
      setUser(await client.me());
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Panel title="Two-factor authentication" id="twofa">
      {recovery ? (
        <div className="notice" data-testid="recovery-codes">
          <p>
            <strong>2FA is on.</strong> Save these recovery codes now; each works once and they are not shown again.
          </p>
          <ul className="codes">
            {recovery.map((c) => (
              <li key={c} className="mono">
                {c}
              </li>
            ))}
          </ul>
          <button type="button" onClick={() => setRecovery(null)}>
            I saved them
          </button>
        </div>
      ) : null}
      {user?.mfaEnabled && !recovery ? (
        <div className="row spread">
          <p data-testid="mfa-on">2FA is on for {user.email}.</p>
          <button type="button" onClick={() => void disable()}>
            Turn off 2FA
          </button>
        </div>
      ) : null}
      {!user?.mfaEnabled && !setup ? (
        <form onSubmit={start} className="form">
          <p>Protect your account with an authenticator app (TOTP). Confirm your password to start.</p>
          <label>
            Password
            <input
              name="mfa-password"
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          </label>
          <button type="submit" className="primary">
            Set up 2FA
          </button>
        </form>
      ) : null}
      {setup ? (
        <form onSubmit={verify} className="form">
          <p>Scan this code with your authenticator app, then enter the 6-digit code it shows.</p>
          <img
            src={setup.qr}
            width={200}
            height={200}
            alt="QR code of the 2FA secret for your authenticator app"
            data-testid="mfa-qr"
          />
          <p className="small">
            Or enter the secret by hand: <code data-testid="mfa-secret">{setup.secret}</code>
          </p>
          <label>
            Code
            <input
              name="mfa-code"
              autoComplete="one-time-code"
              inputMode="numeric"
              required
              value={code}
              onChange={(e) => setCode(e.target.value.trim())}
            />
          </label>
          <button type="submit" className="primary">
            Turn on 2FA
          </button>
        </form>
      ) : null}
      <ErrorBox error={error} />
    </Panel>
  );
}

const SCOPES: ApiKeyScope[] = ['read', 'trade', 'withdraw'];

function ApiKeys() {
  const qc = useQueryClient();
  const withStepUp = useStepUp();
  const keys = useQuery({ queryKey: ['api-keys'], queryFn: () => client.listApiKeys() });
  const [label, setLabel] = useState('');
  const [scopes, setScopes] = useState<ApiKeyScope[]>(['read']);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const create = useMutation({
    mutationFn: () => withStepUp(() => client.createApiKey({ label, scopes })),
    onSuccess: (k) => {
      setCreated(k);
      setLabel('');
      void qc.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => withStepUp(() => client.deleteApiKey(id)),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['api-keys'] }),
  });
  return (
    <Panel title="API keys" id="api-keys">
      {created ? (
        <div className="notice" role="status" data-testid="api-key-created">
          <p>
            <strong>Copy the secret now</strong>: it is shown only once.
          </p>
          <p className="mono small">
            Key: {created.apiKey}
            <br />
            Secret: {created.secret}
          </p>
          <button type="button" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      ) : null}
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label>
          Label
          <input name="key-label" required value={label} onChange={(e) => setLabel(e.target.value)} />
        </label>
        <fieldset className="inline">
          <legend>Scopes</legend>
          {SCOPES.map((s) => (
            <label key={s} className="check">
              <input
                type="checkbox"
                name={`scope-${s}`}
                checked={scopes.includes(s)}
                onChange={(e) => setScopes((cur) => (e.target.checked ? [...cur, s] : cur.filter((x) => x !== s)))}
              />
              {s}
            </label>
          ))}
        </fieldset>
        <ErrorBox error={create.error ?? revoke.error} />
        <button type="submit" className="primary" disabled={!label || scopes.length === 0 || create.isPending}>
          Create key
        </button>
      </form>
      <ErrorBox error={keys.error} />
      {(keys.data ?? []).length === 0 ? (
        <Empty>No API keys.</Empty>
      ) : (
        <table>
          <Head cols={['Label', 'Key', 'Scopes', ['Last used', 'hide-sm'], '']} />
          <tbody>
            {(keys.data ?? []).map((k) => (
              <tr key={k.id}>
                <td>{k.label}</td>
                <td className="mono">{k.keyPrefix}…</td>
                <td>{k.scopes.join(', ')}</td>
                <td className="hide-sm">
                  <Time iso={k.lastUsedAt} />
                </td>
                <td>
                  <button type="button" onClick={() => revoke.mutate(k.id)} aria-label={`Revoke key ${k.label}`}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

function Sessions() {
  const qc = useQueryClient();
  const sessions = useQuery({ queryKey: ['sessions'], queryFn: () => client.sessions() });
  const revoke = useMutation({
    mutationFn: (id: string) => client.revokeSession(id),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['sessions'] }),
  });
  return (
    <Panel title="Sessions" id="sessions">
      <ErrorBox error={sessions.error ?? revoke.error} />
      <div className="table-wrap" tabIndex={0}>
        <table>
          <Head cols={['Signed in', ['Last used', 'hide-sm'], 'IP', ['Device', 'hide-sm'], '']} />
          <tbody>
            {(sessions.data ?? []).map((s) => (
              <tr key={s.id}>
                <td>
                  <Time iso={s.createdAt} /> {s.current ? <span className="badge ok">this device</span> : null}
                </td>
                <td className="hide-sm">
                  <Time iso={s.lastUsedAt} />
                </td>
                <td className="mono">{s.ip ?? '—'}</td>
                <td className="hide-sm small">{s.userAgent ?? '—'}</td>
                <td>
                  {s.current ? null : (
                    <button type="button" onClick={() => revoke.mutate(s.id)}>
                      End
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Panel>
  );
}

export function AccountPage() {
  return (
    <div className="stack">
      <TwoFactor />
      <ApiKeys />
      <Sessions />
      <SecurityLog />
    </div>
  );
}
