import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { Role, User } from '@exchange/sdk';
import { client, isAdmin, useAuth } from '../lib/api.tsx';
import { useStepUp } from '../components/step-up.tsx';
import { ErrorBox, Head, Panel, Time } from '../components/ui.tsx';
import { ConfirmDialog } from './confirm.tsx';

const ROLES: Role[] = ['user', 'support', 'admin'];

export function UsersSection() {
  const { user: me } = useAuth();
  const admin = isAdmin(me);
  const qc = useQueryClient();
  const withStepUp = useStepUp();
  const [draft, setDraft] = useState('');
  const [email, setEmail] = useState('');
  const [locking, setLocking] = useState<User | null>(null);
  // Every search is audited, so it runs on submit, not per keystroke.
  const users = useQuery({
    queryKey: ['users', email],
    queryFn: () => client.admin.users({ limit: 50, email }),
    enabled: email !== '',
  });
  const refresh = () => void qc.invalidateQueries({ queryKey: ['users'] });
  const unlock = useMutation({
    mutationFn: (id: string) => withStepUp(() => client.admin.unlockUser(id)),
    onSuccess: refresh,
  });
  const roles = useMutation({
    mutationFn: (p: { id: string; roles: Role[] }) => withStepUp(() => client.admin.setUserRoles(p.id, p.roles)),
    onSuccess: refresh,
  });
  return (
    <Panel title="Users" id="users">
      <form
        className="row"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setEmail(draft);
        }}
      >
        <label className="inline-label">
          Email (exact, or a prefix ending in *)
          <input name="user-email" type="search" value={draft} onChange={(e) => setDraft(e.target.value.trim())} />
        </label>
        <button type="submit" disabled={!draft}>
          Search
        </button>
      </form>
      <ErrorBox error={users.error ?? unlock.error ?? roles.error} />
      <div className="table-wrap" tabIndex={0}>
        <table>
          <Head cols={['Email', 'Roles', '2FA', 'State', ['Created', 'hide-sm'], '']} />
          <tbody>
            {(users.data ?? []).map((u) => (
              <tr key={u.id} data-user={u.email}>
                <td>{u.email}</td>
                <td>
                  {admin && u.id !== me?.id ? (
                    <select
                      aria-label={`Roles of ${u.email}`}
                      value={u.roles.includes('admin') ? 'admin' : u.roles.includes('support') ? 'support' : 'user'}
                      onChange={(e) => {
                        const r = e.target.value as Role;
                        roles.mutate({ id: u.id, roles: r === 'user' ? ['user'] : ['user', r] });
                      }}
                    >
                      {ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r}
                        </option>
                      ))}
                    </select>
                  ) : (
                    u.roles.join(', ')
                  )}
                </td>
                <td>{u.mfaEnabled ? 'on' : 'off'}</td>
                <td>{u.locked ? <span className="badge warn">locked</span> : 'active'}</td>
                <td className="hide-sm">
                  <Time iso={u.createdAt} />
                </td>
                <td>
                  {u.locked ? (
                    admin ? (
                      <button type="button" onClick={() => unlock.mutate(u.id)}>
                        Unlock
                      </button>
                    ) : null
                  ) : u.id !== me?.id ? (
                    <button type="button" className="danger" onClick={() => setLocking(u)}>
                      Lock
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {locking ? (
        <ConfirmDialog
          title={`Lock ${locking.email}?`}
          body="The account cannot log in and its sessions end until an admin unlocks it."
          confirmLabel="Lock account"
          onConfirm={async (reason) => {
            await withStepUp(() => client.admin.lockUser(locking.id, reason));
            refresh();
          }}
          onClose={() => setLocking(null)}
        />
      ) : null}
    </Panel>
  );
}
