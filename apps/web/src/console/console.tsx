/**
 * Operator console (roles admin and support, 2FA on): the runbook's dashboard on the public admin API. Support
 * sees the sections support may use (health, users, audit, reconciliation reports, payouts, order traces);
 * admin-only sections are not offered to support and answer "admins only" when reached by URL (the API refuses
 * them too).
 */
import { Link, NavLink, Route, Routes } from 'react-router-dom';
import type { ReactNode } from 'react';
import { isAdmin, isStaff, useAuth } from '../lib/api.tsx';
import { HealthSection } from './health.tsx';
import { MarketsSection } from './markets.tsx';
import { DeadLettersSection } from './dead-letters.tsx';
import { ReconciliationSection } from './reconciliation.tsx';
import { AuditSection } from './audit.tsx';
import { UsersSection } from './users.tsx';
import { BackupsSection } from './backups.tsx';
import { TraceSection } from './trace.tsx';
import { PayoutsSection } from './payouts.tsx';

function AdminOnly({ children }: { children: ReactNode }) {
  const { user } = useAuth();
  if (!isAdmin(user))
    return (
      <div className="error" role="alert" data-testid="admins-only">
        Admins only: your role ({user?.roles.join(', ')}) cannot use this section.
      </div>
    );
  return <>{children}</>;
}

export function ConsolePage() {
  const { user } = useAuth();
  if (!isStaff(user))
    return (
      <div className="error" role="alert" data-testid="staff-only">
        The operator console is for admin and support staff.
      </div>
    );
  if (!user?.mfaEnabled)
    return (
      <div className="notice" role="alert" data-testid="console-needs-2fa">
        The operator console needs 2FA on your account. <Link to="/account">Set up 2FA</Link> first.
      </div>
    );
  const admin = isAdmin(user);
  return (
    <div className="console">
      <nav className="subnav" aria-label="Console">
        <NavLink to="/console" end>
          Health
        </NavLink>
        {admin ? <NavLink to="/console/markets">Markets &amp; kill switches</NavLink> : null}
        {admin ? <NavLink to="/console/dead-letters">Dead letters</NavLink> : null}
        <NavLink to="/console/reconciliation">Reconciliation</NavLink>
        <NavLink to="/console/payouts">Payouts</NavLink>
        <NavLink to="/console/users">Users</NavLink>
        <NavLink to="/console/audit">Audit log</NavLink>
        {admin ? <NavLink to="/console/backups">Backups</NavLink> : null}
        <NavLink to="/console/trace">Order traces</NavLink>
      </nav>
      <div className="console-body">
        <Routes>
          <Route index element={<HealthSection />} />
          <Route
            path="markets"
            element={
              <AdminOnly>
                <MarketsSection />
              </AdminOnly>
            }
          />
          <Route
            path="dead-letters"
            element={
              <AdminOnly>
                <DeadLettersSection />
              </AdminOnly>
            }
          />
          <Route path="reconciliation" element={<ReconciliationSection />} />
          <Route path="payouts" element={<PayoutsSection />} />
          <Route path="users" element={<UsersSection />} />
          <Route path="audit" element={<AuditSection />} />
          <Route
            path="backups"
            element={
              <AdminOnly>
                <BackupsSection />
              </AdminOnly>
            }
          />
          <Route path="trace" element={<TraceSection />} />
        </Routes>
      </div>
    </div>
  );
}
