/** The signed-in user's security log (GET /api/v1/auth/security-log): what happened to the account, from where. */
import { useQuery } from '@tanstack/react-query';
import type { SecurityEvent } from '@exchange/sdk';
import { client } from '../lib/api.tsx';
import { DataTable, Empty, ErrorBox, Loading, Panel, Time } from './ui.tsx';

const LABELS: Record<string, string> = {
  'auth.register': 'Account created',
  'auth.register_duplicate': 'Sign-up attempted with your email',
  'auth.login': 'Logged in',
  'auth.login_failed': 'Failed login',
  'auth.login_blocked': 'Login blocked (too many failures)',
  'auth.logout': 'Logged out',
  'auth.session_revoked': 'Session ended',
  'auth.2fa_setup': '2FA setup started',
  'auth.2fa_setup_failed': '2FA setup: wrong code',
  'auth.2fa_enabled': '2FA turned on',
  'auth.2fa_disabled': '2FA turned off',
  'auth.2fa_step_up': '2FA check passed',
  'auth.2fa_challenge_failed': '2FA check failed',
  'auth.recovery_code_used': 'Recovery code used',
  'auth.password_changed': 'Password changed',
  'auth.password_change_failed': 'Password change failed',
  'auth.password_reset': 'Password reset by email link',
  'auth.email_verified': 'Email address confirmed',
  'auth.api_key_created': 'API key created',
  'auth.api_key_revoked': 'API key revoked',
  'admin.user_locked': 'Account locked by staff',
  'admin.user_unlocked': 'Account unlocked by staff',
  'admin.user_roles_changed': 'Roles changed by staff',
  'security.refresh_token_reuse': 'Old session token reused: all sessions ended',
  'security.api_signature_replay': 'Replayed API request refused',
};

/** Failures and security alerts stand out. */
const ALERT = /failed|blocked|reuse|replay|locked|register_duplicate/;

/** A short, readable line from the event's details (the scalar fields; API keys by label and scopes). */
function detailText(e: SecurityEvent): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(e.details ?? {})) {
    if (v === null || v === undefined || k === 'apiKeyId') continue;
    if (Array.isArray(v)) parts.push(`${k}: ${v.join(', ')}`);
    else if (typeof v !== 'object') parts.push(`${k}: ${String(v)}`);
  }
  return parts.join(' · ');
}

export function SecurityLog() {
  const log = useQuery({ queryKey: ['security-log'], queryFn: () => client.securityLog({ limit: 50 }) });
  return (
    <Panel title="Security log" id="security-log">
      <p className="muted small">
        The last 50 security events of your account. Something you do not recognise? Change your password, end the other
        sessions above and revoke API keys.
      </p>
      <ErrorBox error={log.error} />
      {log.isPending ? <Loading /> : null}
      {log.data && log.data.length === 0 ? <Empty>No events yet.</Empty> : null}
      {log.data?.length ? (
        <DataTable
          label="Security log"
          rows={log.data}
          rowKey={(e, i) => `${e.at}-${i}`}
          rowAttrs={(e) => ({ 'data-action': e.action })}
          columns={[
            { head: 'When', cell: (e) => <Time iso={e.at} /> },
            {
              head: 'What',
              cell: (e) => (
                <>
                  {ALERT.test(e.action) ? <span className="badge warn">{LABELS[e.action] ?? e.action}</span> : null}
                  {ALERT.test(e.action) ? null : (LABELS[e.action] ?? e.action)}
                </>
              ),
            },
            { head: 'IP', className: 'mono', cell: (e) => e.ip ?? '—' },
            { head: ['Device', 'hide-sm'], className: 'hide-sm small', cell: (e) => e.userAgent ?? '—' },
            { head: ['Details', 'hide-sm'], className: 'hide-sm small', cell: (e) => detailText(e) || '—' },
          ]}
        />
      ) : null}
    </Panel>
  );
}
