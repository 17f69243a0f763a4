import { lazy, Suspense, useEffect, useState, type ReactNode } from 'react';
import { Link, Navigate, NavLink, Route, Routes, useLocation } from 'react-router-dom';
import { useQueryClient } from '@tanstack/react-query';
import { client, isStaff, useAuth, useChannel, useStream } from './lib/api.tsx';
import { Loading } from './components/ui.tsx';
import { LoginPage, RegisterPage } from './pages/auth.tsx';
import { MarketsPage } from './pages/markets.tsx';
import { OrdersPage } from './pages/orders.tsx';
import { WalletPage } from './pages/wallet.tsx';
import { AccountPage } from './pages/account.tsx';
import { ConfirmWithdrawalPage, ResetPasswordPage, UnverifiedEmailBanner, VerifyEmailPage } from './pages/email.tsx';

// The chart library and the console load on first use, so the markets list and login come up faster.
const MarketPage = lazy(() => import('./pages/market.tsx').then((m) => ({ default: m.MarketPage })));
const ConsolePage = lazy(() => import('./console/console.tsx').then((m) => ({ default: m.ConsolePage })));

type Theme = 'dark' | 'light';

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => {
    const saved = localStorage.getItem('exchange.theme');
    if (saved === 'dark' || saved === 'light') return saved;
    return window.matchMedia?.('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
  });
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('exchange.theme', theme);
  }, [theme]);
  return [theme, () => setTheme((t) => (t === 'dark' ? 'light' : 'dark'))];
}

function RequireUser({ children }: { children: ReactNode }) {
  const { user, ready } = useAuth();
  const location = useLocation();
  if (!ready) return <Loading />;
  if (!user) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return <>{children}</>;
}

export function App() {
  const { user, logout } = useAuth();
  const { connected } = useStream();
  const [theme, toggleTheme] = useTheme();
  const qc = useQueryClient();
  // Own order updates: the lists and balances they change are refetched from the API (its numbers, not ours).
  useChannel(user ? 'orders' : null, () => {
    for (const k of ['orders', 'fills', 'balances']) void qc.invalidateQueries({ queryKey: [k] });
  });
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          Exchange
        </Link>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Markets
          </NavLink>
          {user ? (
            <>
              <NavLink to="/orders">Orders</NavLink>
              <NavLink to="/wallet">Wallet</NavLink>
              <NavLink to="/account">Account</NavLink>
              {isStaff(user) ? <NavLink to="/console">Console</NavLink> : null}
            </>
          ) : null}
        </nav>
        <div className="topbar-end">
          <span className={`dot ${connected ? 'on' : ''}`} title={connected ? 'live' : 'reconnecting'}>
            <span className="sr-only">{connected ? 'Live updates connected' : 'Live updates reconnecting'}</span>
          </span>
          <button
            type="button"
            onClick={toggleTheme}
            aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
          >
            {theme === 'dark' ? '☀' : '☾'}
          </button>
          {user ? (
            <>
              <span className="muted user-email" data-testid="user-email">
                {user.email}
              </span>
              <button type="button" onClick={() => void logout()}>
                Log out
              </button>
            </>
          ) : (
            <>
              <NavLink to="/login">Log in</NavLink>
              <NavLink to="/register" className="button primary">
                Sign up
              </NavLink>
            </>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <UnverifiedEmailBanner user={user} api={client} />
        <Suspense fallback={<Loading />}>
          <Routes>
            <Route path="/" element={<MarketsPage />} />
            <Route path="/verify-email" element={<VerifyEmailPage />} />
            <Route path="/reset-password" element={<ResetPasswordPage />} />
            <Route path="/confirm-withdrawal" element={<ConfirmWithdrawalPage />} />
            <Route path="/markets/:symbol" element={<MarketPage />} />
            <Route path="/login" element={<LoginPage />} />
            <Route path="/register" element={<RegisterPage />} />
            <Route
              path="/orders"
              element={
                <RequireUser>
                  <OrdersPage />
                </RequireUser>
              }
            />
            <Route
              path="/wallet"
              element={
                <RequireUser>
                  <WalletPage />
                </RequireUser>
              }
            />
            <Route
              path="/account"
              element={
                <RequireUser>
                  <AccountPage />
                </RequireUser>
              }
            />
            <Route
              path="/console/*"
              element={
                <RequireUser>
                  <ConsolePage />
                </RequireUser>
              }
            />
            <Route
              path="*"
              element={
                <p>
                  Page not found. <Link to="/">Markets</Link>
                </p>
              }
            />
          </Routes>
        </Suspense>
      </main>
    </>
  );
}
