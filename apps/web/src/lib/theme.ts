import { useSyncExternalStore } from 'react';

/** The current theme (the `data-theme` attribute of <html>), for code that paints with colors, like the chart. */
export function useThemeName(): string {
  return useSyncExternalStore(
    (cb) => {
      const o = new MutationObserver(cb);
      o.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
      return () => o.disconnect();
    },
    () => document.documentElement.dataset.theme ?? 'dark',
  );
}
