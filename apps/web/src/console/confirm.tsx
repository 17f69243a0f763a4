import { useState, type FormEvent } from 'react';
import { ErrorBox } from '../components/ui.tsx';

/** A confirmation dialog that asks why: every operator write carries a reason into the audit log. */
export function ConfirmDialog({
  title,
  body,
  confirmLabel,
  onConfirm,
  onClose,
  reasonRequired = true,
}: {
  title: string;
  body: string;
  confirmLabel: string;
  onConfirm: (reason: string) => Promise<unknown>;
  onClose: () => void;
  reasonRequired?: boolean;
}) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onConfirm(reason.trim());
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="modal-backdrop">
      <form className="modal" role="dialog" aria-modal="true" aria-labelledby="confirm-h" onSubmit={submit}>
        <h2 id="confirm-h">{title}</h2>
        <p>{body}</p>
        <label>
          Reason{reasonRequired ? '' : ' (optional)'}
          <input
            name="reason"
            autoFocus
            required={reasonRequired}
            value={reason}
            onChange={(e) => setReason(e.target.value)}
          />
        </label>
        <ErrorBox error={error} />
        <div className="row">
          <button type="submit" className="primary danger" disabled={busy || (reasonRequired && !reason.trim())}>
            {confirmLabel}
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </div>
  );
}
