// config/alertmanager.yml made runnable by the Debian Alertmanager 0.25 the tests use: it predates `url_file`
// (compose runs 0.28), so each url_file becomes the url the file would hold. Hosts and secret file paths can be
// replaced for a live run.
import { parse, stringify } from 'yaml';
import { readText } from './helpers.ts';

export function alertmanagerConfig(opts: {
  urlFiles: Record<string, string>;
  hosts?: Record<string, string>;
  credentialFiles?: Record<string, string>;
  timing?: Record<string, string>;
}): string {
  const cfg = parse(readText('config/alertmanager.yml'));
  for (const r of cfg.receivers)
    for (const w of r.webhook_configs) {
      if (w.url_file) {
        const url = opts.urlFiles[w.url_file];
        if (!url) throw new Error(`no url for ${w.url_file}`);
        w.url = url;
        delete w.url_file;
      }
      for (const [from, to] of Object.entries(opts.hosts ?? {})) w.url = w.url.replace(from, to);
      const auth = w.http_config?.authorization;
      if (auth?.credentials_file && opts.credentialFiles?.[auth.credentials_file])
        auth.credentials_file = opts.credentialFiles[auth.credentials_file];
    }
  const walk = (route: any) => {
    for (const [k, v] of Object.entries(opts.timing ?? {})) if (k in route) route[k] = v;
    for (const r of route.routes ?? []) walk(r);
  };
  walk(cfg.route);
  return stringify(cfg);
}
