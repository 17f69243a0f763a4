/**
 * The one SDK client of the app (same origin as the gateway), its session kept in localStorage so a reload stays
 * signed in, the signed-in user, and the WebSocket stream shared by every screen.
 */
import { useQueryClient } from '@tanstack/react-query';
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import {
  ExchangeApiError,
  ExchangeClient,
  ExchangeStream,
  type Session,
  type StreamMessage,
  type User,
} from '@exchange/sdk';

const SESSION_KEY = 'exchange.session';

function loadSession(): Session | undefined {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    return raw ? (JSON.parse(raw) as Session) : undefined;
  } catch {
    return undefined;
  }
}

let onSessionEnded: (() => void) | undefined;

export const client = new ExchangeClient({
  baseUrl: window.location.origin,
  retries: 2,
  ...(loadSession() ? { session: loadSession()! } : {}),
  onSession: (s) => {
    if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else {
      localStorage.removeItem(SESSION_KEY);
      onSessionEnded?.();
    }
  },
});

interface AuthState {
  user: User | null;
  /** False until a stored session has been checked with /auth/me. */
  ready: boolean;
  setUser(u: User | null): void;
  logout(): Promise<void>;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(client.getSession()?.user ?? null);
  const [ready, setReady] = useState(!client.getSession());
  const qc = useQueryClient();
  useEffect(() => {
    onSessionEnded = () => setUser(null);
    if (!client.getSession()) return;
    client
      .me()
      .then((u) => setUser(u))
      // Only a refused session ends it; a slow or failed network keeps the stored user until the next call.
      .catch((err) => {
        if (err instanceof ExchangeApiError && err.status === 401) void client.setSession(null);
      })
      .finally(() => setReady(true));
  }, []);
  const logout = useCallback(async () => {
    await client.logout().catch(() => undefined);
    setUser(null);
    qc.clear();
  }, [qc]);
  const value = useMemo(() => ({ user, ready, setUser, logout }), [user, ready, logout]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const v = useContext(AuthContext);
  if (!v) throw new Error('useAuth outside AuthProvider');
  return v;
}

export const isStaff = (u: User | null) => Boolean(u?.roles.includes('admin') || u?.roles.includes('support'));
export const isAdmin = (u: User | null) => Boolean(u?.roles.includes('admin'));

// ------------------------------------------------------------------ stream

type Listener = (m: StreamMessage) => void;

interface StreamState {
  connected: boolean;
  subscribe(channel: string, fn: Listener): () => void;
  /** Asked for: cancel the user's open orders when this window's socket drops (re-sent on every reconnect). */
  cancelOnDisconnect: boolean;
  /** The server confirmed the current socket's cancel-on-disconnect setting. */
  cancelOnDisconnectArmed: boolean;
  setCancelOnDisconnect(on: boolean): void;
}

const StreamContext = createContext<StreamState | null>(null);

/**
 * One socket for the app. Channels are reference counted; on reconnect (backoff up to 10 s) the socket
 * re-authenticates and re-subscribes, and listeners get the fresh snapshots.
 */
export function StreamProvider({ children }: { children: ReactNode }) {
  const { user } = useAuth();
  const listeners = useRef(new Map<string, Set<Listener>>());
  const stream = useRef<ExchangeStream | null>(null);
  const [connected, setConnected] = useState(false);
  const cod = useRef(false);
  const [codWanted, setCodWanted] = useState(false);
  const [codArmed, setCodArmed] = useState(false);

  useEffect(() => {
    let stopped = false;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connect = async () => {
      let s: ExchangeStream;
      try {
        // Channels are subscribed on open (after auth), so ones added while connecting are not missed.
        s = user ? await client.openStream() : client.stream();
      } catch {
        timer = setTimeout(() => void connect(), Math.min(10_000, 500 * 2 ** attempt++));
        return;
      }
      if (stopped) return s.close();
      stream.current = s;
      s.on('open', () => {
        attempt = 0;
        const channels = [...listeners.current.keys()];
        if (channels.length) s.subscribe(channels);
        // a new socket is a new session: the setting is asked for again (the old one's orders were cancelled)
        if (cod.current) s.setCancelOnDisconnect(true);
        setConnected(true);
      });
      s.on('message', (m: StreamMessage) => {
        if (m.type === 'cancel_on_disconnect') {
          setCodArmed(m['enabled'] === true);
          return;
        }
        if (!m.channel) return;
        for (const fn of listeners.current.get(m.channel) ?? []) fn(m);
      });
      s.on('close', () => {
        setConnected(false);
        setCodArmed(false);
        if (stream.current === s) stream.current = null;
        if (!stopped) timer = setTimeout(() => void connect(), Math.min(10_000, 500 * 2 ** attempt++));
      });
    };
    void connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      stream.current?.close();
      stream.current = null;
    };
  }, [user?.id]);

  const subscribe = useCallback((channel: string, fn: Listener) => {
    let set = listeners.current.get(channel);
    if (!set) {
      set = new Set();
      listeners.current.set(channel, set);
      const s = stream.current;
      if (s && s.socket.readyState === s.socket.OPEN) s.subscribe([channel]);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) {
        listeners.current.delete(channel);
        const s = stream.current;
        if (s && s.socket.readyState === s.socket.OPEN) s.unsubscribe([channel]);
      }
    };
  }, []);

  const setCancelOnDisconnect = useCallback((on: boolean) => {
    cod.current = on;
    setCodWanted(on);
    const s = stream.current;
    if (s && s.socket.readyState === s.socket.OPEN) s.setCancelOnDisconnect(on);
  }, []);

  const value = useMemo(
    () => ({
      connected,
      subscribe,
      cancelOnDisconnect: codWanted,
      cancelOnDisconnectArmed: codArmed,
      setCancelOnDisconnect,
    }),
    [connected, subscribe, codWanted, codArmed, setCancelOnDisconnect],
  );
  return <StreamContext.Provider value={value}>{children}</StreamContext.Provider>;
}

export function useStream(): StreamState {
  const v = useContext(StreamContext);
  if (!v) throw new Error('useStream outside StreamProvider');
  return v;
}

/** Calls `fn` with every snapshot/update frame of `channel` while mounted. */
export function useChannel(channel: string | null, fn: Listener): void {
  const { subscribe } = useStream();
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (!channel) return;
    return subscribe(channel, (m) => ref.current(m));
  }, [channel, subscribe]);
}
