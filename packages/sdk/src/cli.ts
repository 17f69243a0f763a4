#!/usr/bin/env node
/**
 * `exchange` — command line client of the exchange API.
 *
 *   exchange login --email me@example.com [--totp 123456]      (password: --password, $EXCHANGE_PASSWORD or prompt)
 *   exchange balances | deposit USD 1000 (returns once credited; --no-wait) | deposits | withdraw BTC 0.1 <address>
 *   exchange order place BTC-USD buy 0.01 --price 30000 | order cancel <id> | order list [--market BTC-USD] [--open]
 *   exchange order place BTC-USD sell 0.01 --price 29000 --stop-price 29500   (stop-limit; without --price: stop-loss)
 *   exchange order place BTC-USD sell 1 --price 30000 --display 0.1            (iceberg: shows 0.1 at a time)
 *   exchange order amend <id> [--price 30010] [--quantity 0.02] [--seq 1] | order amends <id>
 *   exchange book BTC-USD | trades BTC-USD | markets | watch book:BTC-USD trades:BTC-USD orders
 *
 * Gateway URL: --url, $EXCHANGE_URL, the stored session's, else http://localhost:8000. The session (tokens) is kept
 * in ~/.config/exchange/session.json (mode 0600) and refreshed automatically. With $EXCHANGE_API_KEY and
 * $EXCHANGE_API_SECRET every request is signed with that API key instead.
 */
import { createInterface } from 'node:readline/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { realpathSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ExchangeClient, type Session } from './client.ts';
import { ExchangeApiError, ExchangeNetworkError } from './errors.ts';
import { FileSessionStore } from './session-store.ts';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  sessionPath?: string;
  /** Prompt for a secret (password, TOTP code). */
  prompt?: (question: string) => Promise<string>;
}

async function ttyPrompt(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const write = (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput.bind(rl);
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
    write(s.startsWith(question) ? question : ''); // do not echo the secret
  };
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/** A commander argument parser: a whole number of at least `min`, else a usage error naming the argument. */
function wholeNumber(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`a whole number, at least ${min}`);
    return n;
  };
}

export function createProgram(io: CliIo): Command {
  const store = new FileSessionStore(io.sessionPath);
  const program = new Command('exchange')
    .description('Command line client of the exchange API')
    .addOption(new Option('--url <url>', 'gateway base URL'))
    .option('--json', 'print raw JSON')
    .showHelpAfterError()
    // commander's own messages (usage errors, help) go through io like everything else the CLI says
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride();

  const print = (value: unknown, rows?: Array<Record<string, unknown>>) => {
    if (program.opts().json || !rows) io.out(JSON.stringify(value, null, 2));
    else if (rows.length === 0) io.out('(none)');
    else {
      const cols = Object.keys(rows[0] as object);
      const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
      const line = (vals: string[]) =>
        vals
          .map((v, i) => v.padEnd(width[i] ?? 0))
          .join('  ')
          .trimEnd();
      io.out(line(cols));
      for (const r of rows) io.out(line(cols.map((c) => String(r[c] ?? ''))));
    }
  };

  const client = async (): Promise<ExchangeClient> => {
    const stored = await store.load();
    const baseUrl =
      program.opts<{ url?: string }>().url ?? io.env.EXCHANGE_URL ?? stored?.baseUrl ?? 'http://localhost:8000';
    const apiKey =
      io.env.EXCHANGE_API_KEY && io.env.EXCHANGE_API_SECRET
        ? { key: io.env.EXCHANGE_API_KEY, secret: io.env.EXCHANGE_API_SECRET }
        : undefined;
    return new ExchangeClient({
      baseUrl,
      ...(apiKey ? { apiKey } : {}),
      ...(stored?.session && stored.baseUrl === baseUrl ? { session: stored.session } : {}),
      onSession: async (session: Session | null) => {
        if (session) await store.save({ baseUrl, session });
        else await store.clear();
      },
      userAgent: 'exchange-cli',
    });
  };

  program
    .command('register')
    .description('create an account')
    .requiredOption('--email <email>')
    .option('--password <password>', 'default: $EXCHANGE_PASSWORD or prompt')
    .action(async (o: { email: string; password?: string }) => {
      const password = o.password ?? io.env.EXCHANGE_PASSWORD ?? (await (io.prompt ?? ttyPrompt)('Password: '));
      print(await (await client()).register({ email: o.email, password }));
    });

  program
    .command('login')
    .description('log in and keep the session in ~/.config/exchange/session.json')
    .requiredOption('--email <email>')
    .option('--password <password>', 'default: $EXCHANGE_PASSWORD or prompt')
    .option('--totp <code>', '6-digit 2FA code (prompted when the account needs one)')
    .action(async (o: { email: string; password?: string; totp?: string }) => {
      const c = await client();
      const ask = io.prompt ?? ttyPrompt;
      const password = o.password ?? io.env.EXCHANGE_PASSWORD ?? (await ask('Password: '));
      let result;
      try {
        result = await c.login({ email: o.email, password, ...(o.totp ? { totpCode: o.totp } : {}) });
      } catch (err) {
        if (!(err instanceof ExchangeApiError && err.code === 'MFA_REQUIRED') || o.totp) throw err;
        result = await c.login({ email: o.email, password, totpCode: await ask('2FA code: ') });
      }
      io.out(`logged in as ${result.user.email} (${result.user.roles.join(', ')})`);
    });

  program
    .command('logout')
    .description('end the session')
    .action(async () => {
      const c = await client();
      if (c.getSession()) await c.logout().catch(() => undefined);
      await store.clear();
      io.out('logged out');
    });

  program
    .command('balances')
    .description('your balances per asset')
    .action(async () => {
      const b = await (await client()).balances();
      print(b, b as unknown as Array<Record<string, unknown>>);
    });

  program
    .command('deposit')
    .description('deposit from the sandbox rail; waits until it is credited (--no-wait returns at once)')
    .argument('<asset>')
    .argument('<amount>')
    .option('--idempotency-key <key>')
    .option('--no-wait', 'print the pending deposit without waiting for its confirmation')
    .option('--timeout <seconds>', 'how long to wait for the confirmation', wholeNumber(1), 120)
    .action(async (asset: string, amount: string, o: { idempotencyKey?: string; wait: boolean; timeout: number }) => {
      const c = await client();
      let d = await c.deposit({ asset, amount }, o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : undefined);
      // `deposit … && order place …` is the first thing a newcomer types: a pending deposit would make the order
      // fail with INSUFFICIENT_FUNDS, so the command ends when the funds can be used.
      const deadline = Date.now() + o.timeout * 1000;
      while (o.wait && d.status === 'pending' && Date.now() < deadline) {
        const untilConfirm = Date.parse(d.confirmAt) - Date.now();
        await sleep(Math.min(Math.max(untilConfirm, 250), 1000, Math.max(deadline - Date.now(), 0)));
        d = await c.getDeposit(d.id);
      }
      print(d);
      if (o.wait && d.status === 'pending') {
        throw new Error(
          `deposit ${d.id} is still pending after ${o.timeout} s; \`exchange deposits\` shows when it is credited`,
        );
      }
    });

  program
    .command('deposits')
    .description('your latest deposits, pending and credited')
    .option('--limit <n>', 'how many', wholeNumber(1))
    .action(async (o: { limit?: number }) => {
      const list = await (await client()).deposits(o.limit ? { limit: o.limit } : {});
      print(list, list as unknown as Array<Record<string, unknown>>);
    });

  program
    .command('withdraw')
    .description('withdraw to an address (may need a fresh 2FA check)')
    .argument('<asset>')
    .argument('<amount>')
    .argument('<address>')
    .option('--idempotency-key <key>')
    .action(async (asset: string, amount: string, address: string, o: { idempotencyKey?: string }) => {
      print(
        await (
          await client()
        ).withdraw({ asset, amount, address }, o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : undefined),
      );
    });

  const order = program.command('order').description('place, amend, cancel and list orders');
  order
    .command('place')
    .argument('<market>', 'e.g. BTC-USD')
    .argument('<side>', 'buy or sell')
    .argument('<quantity>')
    .option('--price <price>', 'limit price (omit with --type market)')
    .addOption(new Option('--type <type>').choices(['limit', 'market']))
    .addOption(new Option('--tif <tif>', 'time in force').choices(['GTC', 'IOC', 'FOK']))
    .option('--post-only')
    .addOption(
      new Option('--stp <mode>', 'self-trade prevention').choices([
        'cancel_newest',
        'cancel_oldest',
        'cancel_both',
        'decrement',
      ]),
    )
    .option('--client-order-id <id>')
    .option(
      '--stop-price <price>',
      'stop order: trigger on the last trade price (stop-limit with --price, else stop-loss)',
    )
    .option('--display <quantity>', 'iceberg: the quantity shown in the book at a time (GTC limit orders)')
    .action(
      async (
        market: string,
        side: string,
        quantity: string,
        o: {
          price?: string;
          type?: 'limit' | 'market';
          tif?: 'GTC' | 'IOC' | 'FOK';
          postOnly?: boolean;
          stp?: 'cancel_newest';
          clientOrderId?: string;
          stopPrice?: string;
          display?: string;
        },
      ) => {
        if (side !== 'buy' && side !== 'sell') throw new Error('side is buy or sell');
        const type = o.type ?? (o.price ? 'limit' : 'market');
        print(
          await (
            await client()
          ).placeOrder({
            market,
            side,
            type,
            quantity,
            ...(o.price ? { price: o.price } : {}),
            ...(o.tif ? { timeInForce: o.tif } : {}),
            ...(o.postOnly ? { postOnly: true } : {}),
            ...(o.stp ? { stp: o.stp } : {}),
            ...(o.clientOrderId ? { clientOrderId: o.clientOrderId } : {}),
            ...(o.stopPrice ? { stopPrice: o.stopPrice } : {}),
            ...(o.display ? { displayQuantity: o.display } : {}),
          }),
        );
      },
    );
  order
    .command('amend')
    .description('new price and/or new TOTAL quantity; a lower quantity at the same price keeps time priority')
    .argument('<id>')
    .option('--price <price>')
    .option('--quantity <quantity>', 'new total quantity (filled + open)')
    .option('--seq <n>', 'amend number (order amendSeq + 1): resending it replays the amend', wholeNumber(1))
    .action(async (id: string, o: { price?: string; quantity?: string; seq?: number }) => {
      if (o.price === undefined && o.quantity === undefined) throw new Error('give --price and/or --quantity');
      print(
        await (
          await client()
        ).amendOrder(id, {
          ...(o.price ? { price: o.price } : {}),
          ...(o.quantity ? { quantity: o.quantity } : {}),
          ...(o.seq !== undefined ? { amendSeq: o.seq } : {}),
        }),
      );
    });
  order
    .command('amends')
    .description("an order's amends and the engine's answers")
    .argument('<id>')
    .action(async (id: string) => print(await (await client()).orderAmends(id)));
  order
    .command('cancel')
    .argument('<id>')
    .action(async (id: string) => print(await (await client()).cancelOrder(id)));
  order
    .command('cancel-all-after')
    .description("dead-man's switch: cancel all your open orders unless this is run again within <seconds> (0 disarms)")
    .argument('<seconds>', 'countdown in seconds, 0 disarms', wholeNumber(0))
    .action(async (seconds: number) => print(await (await client()).cancelAllAfter(seconds)));
  order
    .command('dead-man')
    .description("your dead-man's switch: armed or not, and when it fires")
    .action(async () => print(await (await client()).deadManSwitch()));
  order
    .command('list')
    .option('--market <market>')
    .option('--open', 'only open orders')
    .option('--limit <n>', 'page size', wholeNumber(1))
    .action(async (o: { market?: string; open?: boolean; limit?: number }) => {
      const page = await (
        await client()
      ).orders({
        ...(o.market ? { market: o.market } : {}),
        ...(o.open ? { open: true } : {}),
        ...(o.limit ? { limit: o.limit } : {}),
      });
      print(
        page,
        page.items.map((x) => ({
          id: x.id,
          market: x.market,
          side: x.side,
          type: x.type,
          price: x.price,
          quantity: x.quantity,
          filled: x.filledQuantity,
          status: x.status,
          // what the other columns do not say: a stop not yet triggered rests nowhere, an iceberg shows a slice
          details: [
            x.stopPrice ? `stop ${x.stopPrice}${x.stopTriggered ? ' (triggered)' : ''}` : '',
            x.displayQuantity ? `shows ${x.displayQuantity}` : '',
            x.cancelRequested && x.status !== 'cancelled' ? 'cancel requested' : '',
          ]
            .filter(Boolean)
            .join(', '),
        })),
      );
    });

  program
    .command('fees')
    .description('your fee tier per market: 30-day volume, rates (bps; negative maker = rebate), next tier')
    .action(async () => {
      const f = await (await client()).accountFees();
      print(
        f,
        f.markets.map((m) => ({
          market: m.market,
          volume30d: `${m.volume30d} ${m.volumeAsset}`,
          tier: m.tier.tier,
          makerBps: m.tier.makerFeeBps,
          takerBps: m.tier.takerFeeBps,
          nextTierAt: m.nextTier ? m.nextTier.minVolume : '',
          toNextTier: m.volumeToNextTier ?? '',
        })),
      );
    });

  program.command('markets').action(async () => {
    const m = await (await client()).markets();
    print(
      m,
      m.map((x) => ({ symbol: x.symbol, tick: x.tickSize, lot: x.lotSize, last: x.lastPrice, halted: x.halted })),
    );
  });

  program
    .command('book')
    .argument('<market>')
    .option('--depth <n>', 'levels per side', wholeNumber(1))
    .action(async (market: string, o: { depth?: number }) => {
      const book = await (await client()).book(market, o.depth ? { depth: o.depth } : {});
      const rows = Array.from({ length: Math.max(book.bids.length, book.asks.length) }, (_, i) => ({
        bidQty: book.bids[i]?.[1] ?? '',
        bid: book.bids[i]?.[0] ?? '',
        ask: book.asks[i]?.[0] ?? '',
        askQty: book.asks[i]?.[1] ?? '',
      }));
      if (book.auction && !program.opts().json) {
        const a = book.auction;
        io.err(
          `${market} is in a call auction (reference ${a.referencePrice}): indicative ` +
            (a.indicativePrice === null ? 'none' : `${a.indicativeQuantity} at ${a.indicativePrice}`),
        );
      }
      print(book, rows);
    });

  program
    .command('trades')
    .argument('<market>')
    .option('--limit <n>', 'how many', wholeNumber(1))
    .action(async (market: string, o: { limit?: number }) => {
      const t = await (await client()).trades(market, o.limit ? { limit: o.limit } : {});
      print(
        t,
        t.map((x) => ({ at: x.at, side: x.side, price: x.price, quantity: x.quantity })),
      );
    });

  program
    .command('watch')
    .description('stream channels (book:<market>, trades:<market>, orders) as JSON lines until interrupted')
    .argument('<channels...>')
    .option('--count <n>', 'exit after n data messages', wholeNumber(1))
    .option(
      '--cancel-on-disconnect [market]',
      'cancel your open orders (of [market], or all) when this stream drops, however it ends',
    )
    .action(async (channels: string[], o: { count?: number; cancelOnDisconnect?: boolean | string }) => {
      const c = await client();
      const cod =
        o.cancelOnDisconnect === undefined
          ? {}
          : {
              cancelOnDisconnect: typeof o.cancelOnDisconnect === 'string' ? { market: o.cancelOnDisconnect } : true,
            };
      let stream: Awaited<ReturnType<typeof c.openStream>>;
      try {
        stream = await c.openStream({ channels, ...cod });
      } catch (err) {
        // public channels still work; say why private ones will not
        if (!(err instanceof ExchangeApiError)) throw err;
        io.err(`session ended (${err.code}); log in again for the orders channel`);
        stream = c.stream({ channels });
      }
      let seen = 0;
      await new Promise<void>((resolve, reject) => {
        stream.on('message', (m: { type: string; code?: string; message?: string }) => {
          io.out(JSON.stringify(m));
          if ((m.type === 'update' || m.type === 'snapshot') && o.count && ++seen >= o.count) stream.close();
        });
        stream.on('stream-error', (m: { code?: string; message?: string }) =>
          io.err(`stream error ${m.code}: ${m.message}`),
        );
        stream.on('close', () => resolve());
        stream.ready.catch(reject);
        process.once('SIGINT', () => stream.close());
      });
    });

  return program;
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = createProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) return e.exitCode ?? 1;
    if (err instanceof ExchangeApiError) {
      io.err(`error ${err.status} ${err.code}: ${err.message}${err.requestId ? ` (request ${err.requestId})` : ''}`);
    } else if (err instanceof ExchangeNetworkError) {
      io.err(`cannot reach the exchange: ${err.message}`);
    } else {
      io.err(err instanceof Error ? err.message : String(err));
    }
    return 1;
  }
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
})();
if (invokedDirectly) {
  const code = await runCli(process.argv.slice(2), {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
    env: process.env,
  });
  process.exit(code);
}
