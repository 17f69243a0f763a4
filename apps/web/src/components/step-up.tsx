/**
 * Step-up 2FA: actions the API guards with a fresh 2FA check (withdrawals, API keys, admin writes) answer
 * 403 MFA_REQUIRED; `withStepUp` then asks for a code, exchanges it for a fresh token and repeats the action once.
 */
import { createContext, useCallback, useContext, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { ExchangeApiError } from '@exchange/sdk';
import { client } from '../lib/api.tsx';
import { ErrorBox } from './ui.tsx';

type WithStepUp = <T>(action: () => Promise<T>) => Promise<T>;
const StepUpContext = createContext<WithStepUp | null>(null);

export function StepUpProvider({ children }: { children: ReactNode }) {
  const [open, setOpen] = useState(false);
  const [code, setCode] = useState('');
  const [error, setError] = useState<unknown>(null);
  const pending = useRef<{ resolve: () => void; reject: (e: unknown) => void } | null>(null);

  const ask = () =>
    new Promise<void>((resolve, reject) => {
      pending.current = { resolve, reject };
      setCode('');
      setError(null);
      setOpen(true);
    });

  const withStepUp: WithStepUp = useCallback(async (action) => {
    try {
      return await action();
    } catch (err) {
      if (!(err instanceof ExchangeApiError && err.code === 'MFA_REQUIRED')) throw err;
      await ask();
      return action();
    }
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await client.challenge2fa(/^\d{6}$/.test(code) ? { totpCode: code } : { recoveryCode: code });
      setOpen(false);
      pending.current?.resolve();
    } catch (err) {
      setError(err);
    }
  };
  const cancel = () => {
    setOpen(false);
    pending.current?.reject(
      new ExchangeApiError({
        status: 403,
        code: 'MFA_REQUIRED',
        message: '2FA check cancelled',
        method: 'POST',
        path: '',
      }),
    );
  };

  return (
    <StepUpContext.Provider value={withStepUp}>
      {children}
      {open ? (
        <div className="modal-backdrop">
          <form className="modal" role="dialog" aria-modal="true" aria-labelledby="stepup-h" onSubmit={submit}>
            <h2 id="stepup-h">Confirm with 2FA</h2>
            <p>
              This action needs a fresh 2FA check. Enter the 6-digit code from your authenticator app (or a recovery
              code).
            </p>
            <label>
              Code
              <input
                name="stepup-code"
                autoFocus
                autoComplete="one-time-code"
                inputMode="numeric"
                value={code}
                onChange={(e) => setCode(e.target.value.trim())}
              />
            </label>
            <ErrorBox error={error} />
            <div className="row">
              <button type="submit" className="primary">
                Confirm
              </button>
              <button type="button" onClick={cancel}>
                Cancel
              </button>
            </div>
          </form>
        </div>
      ) : null}
    </StepUpContext.Provider>
  );
}

export function useStepUp(): WithStepUp {
  const v = useContext(StepUpContext);
  if (!v) throw new Error('useStepUp outside StepUpProvider');
  return v;
}
