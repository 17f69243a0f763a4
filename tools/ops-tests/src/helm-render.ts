// A renderer for the subset of Helm (Go text/template + the Sprig/Helm functions) that k8s/charts/exchange uses.
// Helm cannot be installed on the development machines or CI, so the chart tests render the chart with this instead
// and check the resulting manifests. It is an emulation, not Helm: it follows Go's template semantics for what it
// supports (actions, whitespace trimming, pipelines, variables and their scopes, if/else if/else, range over lists
// and sorted maps, with, define/include/template) and throws on anything it does not know, so a template it cannot
// render fails the tests instead of passing silently. `helm template` remains the authority wherever Helm exists.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';

export class HelmFail extends Error {}
export class TemplateError extends Error {}

type Tok =
  | { k: 'str'; v: string }
  | { k: 'num'; v: number }
  | { k: 'ident'; v: string }
  | { k: 'field'; base: 'dot' | 'var'; name?: string; path: string[] }
  | { k: 'op'; v: '(' | ')' | '|' | ',' | ':=' | '=' };

type Operand =
  | { k: 'lit'; v: unknown }
  | { k: 'field'; base: 'dot' | 'var'; name?: string; path: string[] }
  | { k: 'ident'; v: string }
  | { k: 'sub'; pipe: Pipe };
type Cmd = Operand[];
interface Pipe {
  decl: string[];
  assign: boolean;
  cmds: Cmd[];
}
type Node =
  | { t: 'text'; v: string }
  | { t: 'action'; pipe: Pipe }
  | { t: 'if' | 'range' | 'with'; pipe: Pipe; body: Node[]; alt: Node[] | null }
  | { t: 'template'; name: string; pipe: Pipe | null };

// ---------------------------------------------------------------- lexing

interface RawAction {
  text: string;
  trimLeft: boolean;
  trimRight: boolean;
  comment: boolean;
}
type Piece = { text: string } | { action: RawAction };

function splitTemplate(src: string, file: string): Piece[] {
  const out: Piece[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: src.slice(i) });
      break;
    }
    out.push({ text: src.slice(i, open) });
    let j = open + 2;
    const trimLeft = src[j] === '-' && /\s/.test(src[j + 1] ?? '');
    if (trimLeft) j += 1;
    // find the closing }} outside string literals
    let k = j;
    let quote: string | null = null;
    for (; k < src.length; k++) {
      const c = src[k]!;
      if (quote) {
        if (c === '\\' && quote === '"') k++;
        else if (c === quote) quote = null;
      } else if (c === '"' || c === '`') quote = c;
      else if (c === '}' && src[k + 1] === '}') break;
      else if (src.startsWith('/*', k)) {
        const end = src.indexOf('*/', k + 2);
        if (end < 0) throw new TemplateError(`${file}: unclosed comment`);
        k = end + 1;
      }
    }
    if (k >= src.length) throw new TemplateError(`${file}: unclosed action at ${open}`);
    let inner = src.slice(j, k);
    const trimRight = /\s-$/.test(inner);
    if (trimRight) inner = inner.slice(0, -1);
    const trimmed = inner.trim();
    out.push({
      action: { text: trimmed, trimLeft, trimRight, comment: trimmed.startsWith('/*') && trimmed.endsWith('*/') },
    });
    i = k + 2;
  }
  // apply trim markers
  for (let p = 0; p < out.length; p++) {
    const piece = out[p]!;
    if (!('action' in piece)) continue;
    const prev = out[p - 1];
    const next = out[p + 1];
    if (piece.action.trimLeft && prev && 'text' in prev) prev.text = prev.text.replace(/\s+$/, '');
    if (piece.action.trimRight && next && 'text' in next) next.text = next.text.replace(/^\s+/, '');
  }
  return out;
}

function lex(s: string, where: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const fieldPath = (start: number): [string[], number] => {
    const m = /^(?:\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(s.slice(start))!;
    return [m[0] ? m[0].slice(1).split('.') : [], start + m[0].length];
  };
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      toks.push({ k: 'str', v: JSON.parse(s.slice(i, j + 1)) as string });
      i = j + 1;
    } else if (c === '`') {
      const j = s.indexOf('`', i + 1);
      toks.push({ k: 'str', v: s.slice(i + 1, j) });
      i = j + 1;
    } else if ('()|,'.includes(c)) {
      toks.push({ k: 'op', v: c as '(' | ')' | '|' | ',' });
      i++;
    } else if (s.startsWith(':=', i)) {
      toks.push({ k: 'op', v: ':=' });
      i += 2;
    } else if (c === '=') {
      toks.push({ k: 'op', v: '=' });
      i++;
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(s[i + 1] ?? ''))) {
      const m = /^-?[0-9]+(\.[0-9]+)?/.exec(s.slice(i))!;
      toks.push({ k: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*/.exec(s.slice(i))!;
      const [path, end] = fieldPath(i + m[0].length);
      toks.push({ k: 'field', base: 'var', name: m[0], path });
      i = end;
    } else if (c === '.') {
      const [path, end] = fieldPath(i);
      toks.push({ k: 'field', base: 'dot', path });
      i = end === i ? i + 1 : end;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i))!;
      toks.push({ k: 'ident', v: m[0] });
      i += m[0].length;
    } else {
      throw new TemplateError(`${where}: unexpected character ${JSON.stringify(c)} in {{ ${s} }}`);
    }
  }
  return toks;
}

// ---------------------------------------------------------------- parsing

function parsePipe(toks: Tok[], where: string): Pipe {
  let pos = 0;
  const decl: string[] = [];
  let assign = false;
  // declarations: $a := / $a, $b := / $a =
  const declEnd = toks.findIndex((t) => t.k === 'op' && (t.v === ':=' || t.v === '='));
  if (
    declEnd > 0 &&
    toks
      .slice(0, declEnd)
      .every((t) => (t.k === 'field' && t.base === 'var' && t.path.length === 0) || (t.k === 'op' && t.v === ','))
  ) {
    for (const t of toks.slice(0, declEnd)) if (t.k === 'field') decl.push(t.name!);
    assign = (toks[declEnd] as { v: string }).v === '=';
    pos = declEnd + 1;
  }
  const parseCmds = (stopAtParen: boolean): Cmd[] => {
    const cmds: Cmd[] = [];
    let cmd: Cmd = [];
    while (pos < toks.length) {
      const t = toks[pos]!;
      if (t.k === 'op' && t.v === ')') {
        if (!stopAtParen) throw new TemplateError(`${where}: unexpected )`);
        break;
      }
      pos++;
      if (t.k === 'op' && t.v === '|') {
        cmds.push(cmd);
        cmd = [];
      } else if (t.k === 'op' && t.v === '(') {
        const inner = parseCmds(true);
        if (!(toks[pos] && toks[pos]!.k === 'op' && (toks[pos] as { v: string }).v === ')'))
          throw new TemplateError(`${where}: missing )`);
        pos++;
        cmd.push({ k: 'sub', pipe: { decl: [], assign: false, cmds: inner } });
      } else if (t.k === 'str' || t.k === 'num') cmd.push({ k: 'lit', v: t.v });
      else if (t.k === 'ident' && (t.v === 'true' || t.v === 'false')) cmd.push({ k: 'lit', v: t.v === 'true' });
      else if (t.k === 'ident' && t.v === 'nil') cmd.push({ k: 'lit', v: null });
      else if (t.k === 'ident') cmd.push({ k: 'ident', v: t.v });
      else if (t.k === 'field')
        cmd.push({ k: 'field', base: t.base, ...(t.name ? { name: t.name } : {}), path: t.path });
      else throw new TemplateError(`${where}: unexpected token ${JSON.stringify(t)}`);
    }
    if (cmd.length === 0) throw new TemplateError(`${where}: empty command`);
    cmds.push(cmd);
    return cmds;
  };
  const cmds = parseCmds(false);
  return { decl, assign, cmds };
}

function parseTemplate(src: string, file: string, defines: Map<string, Node[]>): Node[] {
  const pieces = splitTemplate(src, file);
  let p = 0;
  const parseList = (terminators: string[]): { nodes: Node[]; term: string; rest: string } => {
    const nodes: Node[] = [];
    while (p < pieces.length) {
      const piece = pieces[p++]!;
      if ('text' in piece) {
        if (piece.text) nodes.push({ t: 'text', v: piece.text });
        continue;
      }
      const a = piece.action;
      if (a.comment) continue;
      const kw = /^([a-z]+)\b\s*([\s\S]*)$/.exec(a.text);
      const word = kw?.[1];
      const rest = kw?.[2] ?? '';
      if (word === 'end' || word === 'else') {
        if (!terminators.includes(word)) throw new TemplateError(`${file}: unexpected {{ ${a.text} }}`);
        return { nodes, term: word, rest };
      }
      if (word === 'if' || word === 'range' || word === 'with') {
        nodes.push(parseBlock(word, rest));
      } else if (word === 'define') {
        const name = JSON.parse(rest.trim()) as string;
        const { nodes: body, term } = parseList(['end']);
        if (term !== 'end') throw new TemplateError(`${file}: define without end`);
        defines.set(name, body);
      } else if (word === 'template') {
        const toks = lex(rest, file);
        const name = (toks[0] as { v: string }).v;
        nodes.push({ t: 'template', name, pipe: toks.length > 1 ? parsePipe(toks.slice(1), file) : null });
      } else if (word === 'block' || word === 'break' || word === 'continue') {
        throw new TemplateError(`${file}: {{ ${word} }} is not supported by this renderer`);
      } else {
        nodes.push({ t: 'action', pipe: parsePipe(lex(a.text, file), file) });
      }
    }
    if (terminators.length) throw new TemplateError(`${file}: missing {{ end }}`);
    return { nodes, term: '', rest: '' };
  };
  const parseBlock = (word: 'if' | 'range' | 'with', cond: string): Node => {
    const pipe = parsePipe(lex(cond, file), file);
    const { nodes: body, term, rest } = parseList(['end', 'else']);
    let alt: Node[] | null = null;
    if (term === 'else') {
      const elseIf = /^(if|with)\b\s*([\s\S]*)$/.exec(rest);
      if (elseIf) alt = [parseBlock(elseIf[1] as 'if' | 'with', elseIf[2]!)];
      else {
        const r = parseList(['end']);
        alt = r.nodes;
      }
    }
    return { t: word, pipe, body, alt };
  };
  return parseList([]).nodes;
}

// ---------------------------------------------------------------- evaluation

type Scope = Map<string, unknown>;
interface Ctx {
  dot: unknown;
  scopes: Scope[];
}

export function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function printValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') throw new TemplateError(`cannot print ${JSON.stringify(v)} (use toYaml)`);
  return String(v);
}

function goQuote(s: string): string {
  return JSON.stringify(s);
}

function sprintf(fmt: string, args: unknown[]): string {
  let i = 0;
  return fmt.replace(/%([%sdvq])/g, (_m, c: string) => {
    if (c === '%') return '%';
    const a = args[i++];
    if (c === 'q') return goQuote(String(a));
    if (c === 'd') return String(Math.trunc(Number(a)));
    return a === null || a === undefined ? '<nil>' : typeof a === 'object' ? JSON.stringify(a) : String(a);
  });
}

function indentLines(n: number, s: string): string {
  const pad = ' '.repeat(n);
  return pad + s.replace(/\n/g, `\n${pad}`);
}

export interface RenderOptions {
  releaseName?: string;
  namespace?: string;
  /** Objects "in the cluster" for lookup: key `${apiVersion}/${kind}/${namespace}/${name}`. Absent: helm template mode. */
  cluster?: Map<string, unknown>;
}

export class Chart {
  readonly dir: string;
  readonly values: Record<string, unknown>;
  readonly meta: Record<string, unknown>;
  private readonly defines = new Map<string, Node[]>();
  private readonly files = new Map<string, Node[]>();

  constructor(dir: string) {
    this.dir = dir;
    this.values = parseYaml(readFileSync(join(dir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    this.meta = parseYaml(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
    const names = readdirSync(join(dir, 'templates')).sort();
    // partials first, as Helm does: defines are global to the chart
    for (const f of [...names.filter((n) => n.startsWith('_')), ...names.filter((n) => !n.startsWith('_'))]) {
      const nodes = parseTemplate(readFileSync(join(dir, 'templates', f), 'utf8'), f, this.defines);
      if (!f.startsWith('_')) this.files.set(f, nodes);
    }
  }

  templateNames(): string[] {
    return [...this.files.keys()];
  }

  /** Renders every template (NOTES.txt included) with values.yaml merged with `overrides`. */
  render(overrides: Record<string, unknown> = {}, opts: RenderOptions = {}): Map<string, string> {
    const values = mergeValues(this.values, overrides);
    const root = {
      Values: values,
      Release: {
        Name: opts.releaseName ?? 'exchange',
        Namespace: opts.namespace ?? 'exchange',
        Service: 'Helm',
        IsInstall: true,
        IsUpgrade: false,
        Revision: 1,
      },
      Chart: {
        Name: this.meta.name,
        Version: this.meta.version,
        AppVersion: this.meta.appVersion,
      },
      Files: { Get: (p: string) => readFileSync(join(this.dir, p), 'utf8') },
      Capabilities: { KubeVersion: { Version: 'v1.30.0' } },
    };
    const out = new Map<string, string>();
    for (const [name, nodes] of this.files)
      out.set(name, this.exec(nodes, { dot: root, scopes: [new Map([['$', root]])] }, opts, name));
    return out;
  }

  /** Rendered Kubernetes objects (NOTES.txt excluded), with the template each came from. */
  manifests(overrides: Record<string, unknown> = {}, opts: RenderOptions = {}): { file: string; obj: any }[] {
    const objs: { file: string; obj: any }[] = [];
    for (const [file, text] of this.render(overrides, opts)) {
      if (file === 'NOTES.txt') continue;
      for (const doc of parseAllDocuments(text)) {
        if (doc.errors.length)
          throw new TemplateError(`${file}: rendered YAML is invalid: ${doc.errors[0]!.message}\n${text}`);
        const obj = doc.toJS();
        if (obj !== null && obj !== undefined) objs.push({ file, obj });
      }
    }
    return objs;
  }

  private exec(nodes: Node[], ctx: Ctx, opts: RenderOptions, file: string): string {
    let out = '';
    for (const n of nodes) {
      switch (n.t) {
        case 'text':
          out += n.v;
          break;
        case 'action': {
          const v = this.evalPipe(n.pipe, ctx, opts, file);
          if (n.pipe.decl.length === 0) out += printValue(v);
          break;
        }
        case 'if': {
          const scope: Ctx = { dot: ctx.dot, scopes: [...ctx.scopes, new Map()] };
          const v = this.evalPipe(n.pipe, scope, opts, file);
          if (truthy(v)) out += this.exec(n.body, scope, opts, file);
          else if (n.alt) out += this.exec(n.alt, { dot: ctx.dot, scopes: [...ctx.scopes, new Map()] }, opts, file);
          break;
        }
        case 'with': {
          const scope: Ctx = { dot: ctx.dot, scopes: [...ctx.scopes, new Map()] };
          const v = this.evalPipe(n.pipe, scope, opts, file);
          if (truthy(v)) out += this.exec(n.body, { dot: v, scopes: scope.scopes }, opts, file);
          else if (n.alt) out += this.exec(n.alt, { dot: ctx.dot, scopes: [...ctx.scopes, new Map()] }, opts, file);
          break;
        }
        case 'range': {
          const pipe = { ...n.pipe, decl: [] };
          const coll = this.evalPipe(pipe, ctx, opts, file);
          let entries: [unknown, unknown][] = [];
          if (Array.isArray(coll)) entries = coll.map((v, i) => [i, v]);
          else if (coll && typeof coll === 'object')
            entries = Object.keys(coll)
              .sort()
              .map((k) => [k, (coll as Record<string, unknown>)[k]]);
          else if (coll !== null && coll !== undefined) throw new TemplateError(`${file}: range over ${typeof coll}`);
          if (entries.length === 0) {
            if (n.alt) out += this.exec(n.alt, ctx, opts, file);
            break;
          }
          for (const [k, v] of entries) {
            const scope = new Map<string, unknown>();
            if (n.pipe.decl.length === 1) scope.set(n.pipe.decl[0]!, v);
            if (n.pipe.decl.length === 2) {
              scope.set(n.pipe.decl[0]!, k);
              scope.set(n.pipe.decl[1]!, v);
            }
            out += this.exec(n.body, { dot: v, scopes: [...ctx.scopes, scope] }, opts, file);
          }
          break;
        }
        case 'template': {
          const data = n.pipe ? this.evalPipe(n.pipe, ctx, opts, file) : undefined;
          out += this.include(n.name, data, opts);
          break;
        }
      }
    }
    return out;
  }

  private include(name: string, data: unknown, opts: RenderOptions): string {
    const body = this.defines.get(name);
    if (!body) throw new TemplateError(`no template "${name}"`);
    return this.exec(body, { dot: data, scopes: [new Map([['$', data]])] }, opts, name);
  }

  private evalPipe(pipe: Pipe, ctx: Ctx, opts: RenderOptions, file: string): unknown {
    let val: unknown;
    pipe.cmds.forEach((cmd, i) => {
      val = this.evalCmd(cmd, ctx, opts, file, i > 0 ? { v: val } : null);
    });
    if (pipe.decl.length) {
      const name = pipe.decl[0]!;
      if (pipe.assign) {
        const scope = [...ctx.scopes].reverse().find((s) => s.has(name));
        if (!scope) throw new TemplateError(`${file}: undefined variable ${name}`);
        scope.set(name, val);
      } else ctx.scopes[ctx.scopes.length - 1]!.set(name, val);
    }
    return val;
  }

  private evalCmd(cmd: Cmd, ctx: Ctx, opts: RenderOptions, file: string, piped: { v: unknown } | null): unknown {
    const [head, ...rest] = cmd;
    const args = () => {
      const a = rest.map((o) => this.evalOperand(o, ctx, opts, file));
      if (piped) a.push(piped.v);
      return a;
    };
    if (head!.k === 'ident') return this.call(head!.v, args(), opts, file);
    const v = this.evalOperand(head!, ctx, opts, file);
    if (typeof v === 'function') return (v as (...a: unknown[]) => unknown)(...args());
    if (rest.length || piped) throw new TemplateError(`${file}: cannot give arguments to a non-function`);
    return v;
  }

  private evalOperand(o: Operand, ctx: Ctx, opts: RenderOptions, file: string): unknown {
    switch (o.k) {
      case 'lit':
        return o.v;
      case 'ident':
        return this.call(o.v, [], opts, file);
      case 'sub':
        return this.evalPipe(o.pipe, ctx, opts, file);
      case 'field': {
        let v: unknown;
        if (o.base === 'dot') v = ctx.dot;
        else {
          const scope = [...ctx.scopes].reverse().find((s) => s.has(o.name!));
          if (!scope) throw new TemplateError(`${file}: undefined variable ${o.name}`);
          v = scope.get(o.name!);
        }
        for (const [i, part] of o.path.entries()) {
          if (v === null || v === undefined)
            throw new TemplateError(`${file}: nil pointer evaluating .${o.path.slice(0, i + 1).join('.')}`);
          if (typeof v !== 'object') throw new TemplateError(`${file}: can't evaluate field ${part} in ${typeof v}`);
          v = (v as Record<string, unknown>)[part];
        }
        return v;
      }
    }
  }

  private call(name: string, a: unknown[], opts: RenderOptions, file: string): unknown {
    const str = (v: unknown) => (v === null || v === undefined ? '' : String(v));
    const num = (v: unknown) => {
      const n = Number(v);
      if (Number.isNaN(n)) throw new TemplateError(`${file}: ${name}: not a number: ${JSON.stringify(v)}`);
      return n;
    };
    switch (name) {
      case 'include':
        return this.include(str(a[0]), a[1], opts);
      case 'fail':
        throw new HelmFail(str(a[0]));
      case 'required':
        if (!truthy(a[1])) throw new HelmFail(str(a[0]));
        return a[1];
      case 'lookup': {
        if (!opts.cluster) return {};
        return opts.cluster.get(`${a[0]}/${a[1]}/${a[2]}/${a[3]}`) ?? {};
      }
      case 'toYaml':
        if (a[0] === null || a[0] === undefined) return 'null';
        return stringify(a[0], { sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '');
      case 'fromYaml':
        return parseYaml(str(a[0])) ?? {};
      case 'nindent':
        return '\n' + indentLines(num(a[0]), str(a[1]));
      case 'indent':
        return indentLines(num(a[0]), str(a[1]));
      case 'quote':
        return a
          .filter((x) => x !== null && x !== undefined)
          .map((x) => goQuote(String(x)))
          .join(' ');
      case 'squote':
        return a
          .filter((x) => x !== null && x !== undefined)
          .map((x) => `'${String(x)}'`)
          .join(' ');
      case 'default':
        return truthy(a[1]) ? a[1] : a[0];
      case 'empty':
        return !truthy(a[0]);
      case 'dict': {
        const d: Record<string, unknown> = {};
        for (let i = 0; i < a.length; i += 2) d[str(a[i])] = a[i + 1];
        return d;
      }
      case 'list':
        return [...a];
      case 'index': {
        let v = a[0];
        for (const k of a.slice(1))
          v = v === null || v === undefined ? undefined : (v as Record<string, unknown>)[k as string];
        return v;
      }
      case 'printf':
        return sprintf(str(a[0]), a.slice(1));
      case 'trimSuffix':
        return str(a[1]).endsWith(str(a[0])) ? str(a[1]).slice(0, str(a[1]).length - str(a[0]).length) : str(a[1]);
      case 'trimPrefix':
        return str(a[1]).startsWith(str(a[0])) ? str(a[1]).slice(str(a[0]).length) : str(a[1]);
      case 'trunc':
        return num(a[0]) >= 0 ? str(a[1]).slice(0, num(a[0])) : str(a[1]).slice(num(a[0]));
      case 'lower':
        return str(a[0]).toLowerCase();
      case 'upper':
        return str(a[0]).toUpperCase();
      case 'replace':
        return str(a[2]).split(str(a[0])).join(str(a[1]));
      case 'regexReplaceAll':
        return str(a[1]).replace(new RegExp(str(a[0]), 'g'), str(a[2]));
      case 'concat':
        return a.flatMap((x) => (Array.isArray(x) ? x : []));
      case 'join': // sprig: join SEP LIST
        return Array.isArray(a[1]) ? a[1].map((x) => String(x)).join(String(a[0])) : String(a[1] ?? '');
      case 'and': {
        for (const x of a) if (!truthy(x)) return x;
        return a[a.length - 1];
      }
      case 'or': {
        for (const x of a) if (truthy(x)) return x;
        return a[a.length - 1];
      }
      case 'not':
        return !truthy(a[0]);
      case 'eq':
        return a.slice(1).some((x) => x === a[0]);
      case 'ne':
        return a[0] !== a[1];
      case 'lt':
        return num(a[0]) < num(a[1]);
      case 'le':
        return num(a[0]) <= num(a[1]);
      case 'gt':
        return num(a[0]) > num(a[1]);
      case 'ge':
        return num(a[0]) >= num(a[1]);
      case 'int':
        return a[0] === null || a[0] === undefined || a[0] === '' ? 0 : Math.trunc(num(a[0]));
      case 'toString':
        return str(a[0]);
      case 'len':
        return Array.isArray(a[0]) || typeof a[0] === 'string'
          ? a[0].length
          : Object.keys((a[0] as object) ?? {}).length;
      case 'hasKey':
        return Object.hasOwn((a[0] as object) ?? {}, str(a[1]));
      case 'keys':
        return Object.keys((a[0] as object) ?? {}).sort();
      case 'sha256sum':
        return createHash('sha256').update(str(a[0])).digest('hex');
      default:
        throw new TemplateError(`${file}: function "${name}" is not supported by this renderer`);
    }
  }
}

/** The functions this renderer implements (what the chart may call). */
export const SUPPORTED_FUNCTIONS = [
  'sha256sum',
  'include',
  'fail',
  'required',
  'lookup',
  'toYaml',
  'fromYaml',
  'nindent',
  'indent',
  'quote',
  'squote',
  'default',
  'empty',
  'dict',
  'list',
  'index',
  'printf',
  'trimSuffix',
  'trimPrefix',
  'trunc',
  'lower',
  'upper',
  'replace',
  'regexReplaceAll',
  'concat',
  'join',
  'and',
  'or',
  'not',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'int',
  'toString',
  'len',
  'hasKey',
  'keys',
];

/** Helm's value coalescing: maps merge deeply, anything else replaces, null deletes the key. */
export function mergeValues(base: any, over: any): any {
  if (over === null) return undefined;
  if (
    typeof base !== 'object' ||
    base === null ||
    Array.isArray(base) ||
    typeof over !== 'object' ||
    Array.isArray(over)
  )
    return over;
  const out: any = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const m = mergeValues(base[k], v);
    if (m === undefined) delete out[k];
    else out[k] = m;
  }
  return out;
}
