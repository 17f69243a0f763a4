/** Small shared pieces: the API error box, exact number cells, loading and empty states. */
import type { ReactNode } from 'react';
import { errorOf } from '../lib/errors.ts';
import { sign } from '../lib/decimal.ts';

/** Shows the API's code, message and request id exactly as it answered. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = errorOf(error);
  return (
    <div className="error" role="alert" data-testid="error">
      <strong>{e.code}</strong>: {e.message}
      {e.requestId ? <span className="muted"> (request {e.requestId})</span> : null}
    </div>
  );
}

/** A decimal string from the API, shown as it came (never parsed into a float). */
export function Num({ value, className }: { value: string | null | undefined; className?: string }) {
  return <span className={`num ${className ?? ''}`}>{value ?? '—'}</span>;
}

export function Change({ value }: { value: string | null | undefined }) {
  if (!value) return <span className="num muted">—</span>;
  const s = sign(value);
  return (
    <span className={`num ${s > 0 ? 'up' : s < 0 ? 'down' : ''}`}>
      {s > 0 ? '+' : ''}
      {value}
    </span>
  );
}

export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span className="muted">—</span>;
  const d = new Date(iso);
  return <time dateTime={iso}>{d.toLocaleString(undefined, { hour12: false })}</time>;
}

export function Panel({
  title,
  children,
  actions,
  id,
}: {
  title: string;
  children: ReactNode;
  actions?: ReactNode;
  id?: string;
}) {
  const headingId = `${id ?? title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-h`;
  return (
    <section className="panel" aria-labelledby={headingId} data-testid={id}>
      <header className="panel-head">
        <h2 id={headingId}>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="muted empty">{children}</p>;
}

export function Loading() {
  return (
    <p className="muted" aria-live="polite">
      Loading…
    </p>
  );
}

/** A column heading: its label, or [label, className]; an empty label is the (screen-reader only) actions column. */
export type Col = string | [string, string];

export function Head({ cols }: { cols: Col[] }) {
  return (
    <thead>
      <tr>
        {cols.map((c, i) => {
          const [label, className] = typeof c === 'string' ? [c, undefined] : c;
          return (
            <th key={i} scope="col" className={className}>
              {label || <span className="sr-only">Actions</span>}
            </th>
          );
        })}
      </tr>
    </thead>
  );
}

/** A column of a DataTable: its heading, what a cell shows, and the cells' class (default: the heading's class). */
export interface Column<T> {
  head: Col;
  cell: (row: T) => ReactNode;
  className?: string | ((row: T) => string);
}

/**
 * One table shape for every list (open orders, fills, payouts, security log…): the scrolling wrapper, the heading
 * row, then one row per item. `rowAttrs` gives a row its data-* attributes (tests and the console find rows by them).
 */
export function DataTable<T>({
  columns,
  rows,
  rowKey,
  rowAttrs,
  label,
}: {
  columns: Array<Column<T>>;
  rows: readonly T[];
  rowKey: (row: T, index: number) => string;
  rowAttrs?: (row: T) => Record<`data-${string}`, string>;
  label?: string;
}) {
  return (
    <div className="table-wrap" tabIndex={0} aria-label={label}>
      <table>
        <Head cols={columns.map((c) => c.head)} />
        <tbody>
          {rows.map((row, i) => (
            <tr key={rowKey(row, i)} {...rowAttrs?.(row)}>
              {columns.map((c, j) => (
                <td
                  key={j}
                  className={
                    typeof c.className === 'function'
                      ? c.className(row)
                      : (c.className ?? (typeof c.head === 'string' ? undefined : c.head[1]))
                  }
                >
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
