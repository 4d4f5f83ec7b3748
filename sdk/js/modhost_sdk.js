/**
 * The modhost SDK for JavaScript: a module written in JavaScript, built into a component
 * with componentize-js against modhost's WIT contract (`wit/module.wit`).
 *
 * A module is what `defineModule` makes of its lifecycle functions (each does nothing
 * unless given) and its handlers, by the names module.xml's `<methods>` and `<hooks>`
 * give them; app.js exports the result:
 *
 *     export const { lifecycle, hooks } = defineModule({
 *       install() { kv.set('greeting', 'Hello'); },
 *       handlers: {
 *         hello_hello(hook, payload) { return `${kv.get('greeting')}, ${payload}!`; },
 *       },
 *     });
 *
 * Anything a handler or lifecycle function throws becomes the call's error, with its
 * stack (`TypeError: …` then `deeper@app.js:5:27`) and its `cause`, instead of a trap. A
 * handler returns a string: anything else (`undefined` from a forgotten `return`, an
 * object) fails the call naming the handler. What the host refuses (SQL on a missing
 * table, a full quota) is thrown as a `HostError` the module may catch.
 *
 * Calls are synchronous: a handler or lifecycle function that is `async` (returns a
 * Promise) fails the call, as modhost does not wait for it. There is no network (`fetch`
 * throws) and no timer (`setTimeout` throws): a call ends when its function returns.
 * Code at the top level of app.js runs once, when the component is built (componentize-js
 * snapshots it): it may not call the host, and what it computes (`Date.now()`) is the
 * build's. npm packages need a bundler: componentize-js reads app.js and what it imports
 * by relative path only.
 *
 * @module modhost_sdk
 */

import { log as hostLog } from 'modhost:module/log@0.1.0';
import * as hostKv from 'modhost:module/kv@0.1.0';
import * as hostDb from 'modhost:module/db@0.1.0';
import { fire as hostFire } from 'modhost:module/dispatch@0.1.0';

/** What a module cannot do here, as the function it would call says when called. */
function unavailable(name, why) {
  return () => {
    throw new TypeError(`${name}: ${why}`);
  };
}

// componentize-js links neither (build.sh leaves WASI's HTTP out); unreplaced, `fetch`
// traps without a word and a timer's callback silently never runs.
globalThis.fetch = unavailable('fetch', 'modhost modules have no network');
globalThis.setTimeout = unavailable(
  'setTimeout',
  'a modhost call ends when its function returns: a timer would never fire',
);
globalThis.setInterval = unavailable(
  'setInterval',
  'a modhost call ends when its function returns: a timer would never fire',
);

/** What the host refused: its message is the host's, naming the problem. */
export class HostError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'HostError';
  }
}

/** Runs `call`, an import returning a WIT `result`, turning its error into a HostError. */
function host(call) {
  try {
    return call();
  } catch (error) {
    if (error !== null && typeof error === 'object' && 'payload' in error) {
      throw new HostError(String(error.payload));
    }
    throw error;
  }
}

/** What kind of value `value` is, for a message. */
function kind(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor?.name ?? 'byte view'}`;
  const type = typeof value;
  return type === 'object' ? 'an object' : `a ${type}`;
}

/** Refuses an argument that is not a string, naming the function and the argument. */
function text(what, name, value) {
  if (typeof value !== 'string') {
    throw new TypeError(`${what}: \`${name}\` must be a string, not ${kind(value)}`);
  }
  wellFormed(`${what}: \`${name}\``, value);
}

/** A surrogate that is not half of a pair. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Refuses a string holding a lone surrogate, as Python's SDK does: the host takes Unicode
 * text, and the bindings would replace it with U+FFFD, so that two different keys became
 * one.
 */
function wellFormed(what, value) {
  const found = LONE_SURROGATE.exec(value);
  if (found) {
    const unit = found[0].charCodeAt(0).toString(16);
    throw new TypeError(
      `${what} holds a lone surrogate (\\u${unit}) at index ${found.index}, which is no Unicode text`,
    );
  }
}

/** The module's own key-value store. */
export const kv = {
  /** The value stored under `key`, or `null`. @param {string} key @returns {string|null} */
  get(key) {
    text('kv.get', 'key', key);
    return hostKv.get(key) ?? null;
  },
  /** Stores `value` under `key`. @param {string} key @param {string} value */
  set(key, value) {
    text('kv.set', 'key', key);
    text('kv.set', 'value', value);
    host(() => hostKv.set(key, value));
  },
  /** Removes `key`; whether it was there. @param {string} key @returns {boolean} */
  delete(key) {
    text('kv.delete', 'key', key);
    return hostKv.delete(key);
  },
  /** The keys starting with `prefix`, in byte order. @param {string} [prefix] */
  keys(prefix = '') {
    text('kv.keys', 'prefix', prefix);
    return hostKv.keys(prefix);
  },
};

const S64_MIN = -(2n ** 63n);
const S64_MAX = 2n ** 63n - 1n;

/** Parameter `?number` as the host binds it. */
function toSql(value, number) {
  const what = `db: parameter ?${number}`;
  if (value === null || value === undefined) return { tag: 'null' };
  if (typeof value === 'boolean') return { tag: 'integer', val: value ? 1n : 0n };
  if (typeof value === 'bigint') {
    if (value < S64_MIN || value > S64_MAX) {
      throw new RangeError(`${what} = ${value} does not fit SQLite's 64-bit integers`);
    }
    return { tag: 'integer', val: value };
  }
  // A whole number within SQLite's 64-bit integers is an integer (every whole number a
  // JavaScript number holds is exact); any other number, a real. NaN, which SQLite would
  // store as NULL, is refused.
  if (typeof value === 'number') {
    if (Number.isNaN(value)) {
      throw new RangeError(`${what} is NaN, which SQLite stores as NULL: bind null if that is meant`);
    }
    return Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63
      ? { tag: 'integer', val: BigInt(value) }
      : { tag: 'real', val: value };
  }
  if (typeof value === 'string') {
    wellFormed(what, value);
    return { tag: 'text', val: value };
  }
  // Any byte view, a blob read back from a query among them (the bindings' arrays are
  // not always this realm's Uint8Array): its bytes as they are.
  if (ArrayBuffer.isView(value)) {
    return { tag: 'blob', val: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) };
  }
  const hint = Array.isArray(value)
    ? 'pass the values as arguments of their own: db.execute(sql, a, b)'
    : 'bind null, a boolean, a number, a bigint, a string or a Uint8Array';
  throw new TypeError(`${what} is ${kind(value)}: ${hint}`);
}

/** A column's value as JavaScript has it: integers as numbers while exact, else bigints. */
function fromSql(value) {
  switch (value.tag) {
    case 'null':
      return null;
    case 'integer': {
      const integer = BigInt(value.val);
      const exact = integer >= BigInt(Number.MIN_SAFE_INTEGER)
        && integer <= BigInt(Number.MAX_SAFE_INTEGER);
      return exact ? Number(integer) : integer;
    }
    case 'blob':
      // A Uint8Array of its own, which binds again as it came.
      return Uint8Array.from(value.val);
    default:
      return value.val;
  }
}

/** SQL on the tables module.xml's `<database>` declares, and only those. */
export const db = {
  /**
   * Runs one statement that changes data, binding `params` to `?1`, `?2`, …; the number
   * of rows changed.
   * @param {string} sql
   * @returns {number}
   */
  execute(sql, ...params) {
    text('db.execute', 'sql', sql);
    const bound = params.map((value, i) => toSql(value, i + 1));
    return Number(host(() => hostDb.execute(sql, bound)));
  },
  /**
   * Runs one query, binding `params`; its rows, each an object by column name.
   * @param {string} sql
   * @returns {Array<Object<string, *>>}
   */
  query(sql, ...params) {
    text('db.query', 'sql', sql);
    const bound = params.map((value, i) => toSql(value, i + 1));
    const { columns, rows } = host(() => hostDb.query(sql, bound));
    return rows.map((row) => Object.fromEntries(columns.map((c, i) => [c, fromSql(row[i])])));
  },
};

/** `value` as a log field shows it: text as it is, dates in ISO 8601, JSON otherwise. */
function rendered(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    return String(value);
  }
  try {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return String(value);
  }
}

/** A log function for `level`: `(message, fields)`, each field's value rendered as text. */
function logAt(level) {
  return (message, fields = {}) => {
    const what = `log.${level}`;
    text(what, 'message', message);
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
      throw new TypeError(
        `${what}: \`fields\` must be an object of names to values, not ${kind(fields)}`,
      );
    }
    const all = Object.entries(fields).map(([key, value]) => ({ key, value: rendered(value) }));
    hostLog(level, message, all);
  };
}

/** Structured logging, under the module's rawname in the host's log. */
export const log = {
  trace: logAt('trace'),
  debug: logAt('debug'),
  info: logAt('info'),
  warn: logAt('warn'),
  error: logAt('error'),
};

/**
 * Fires hook point `hook` with `payload` in the running modules; each handler's outcome,
 * `{ module, ok, output }`, in the order they ran.
 * @param {string} hook
 * @param {string} payload
 */
export function fire(hook, payload) {
  text('fire', 'hook', hook);
  text('fire', 'payload', payload);
  return host(() => hostFire(hook, payload));
}

/** `read()`, or `fallback` when reading throws or gives nothing: an author's getter or
 * `toString` that throws must not turn a failed call into a trap. */
function safely(read, fallback) {
  try {
    const value = read();
    return value === undefined ? fallback : value;
  } catch {
    return fallback;
  }
}

/** The error result for `error`: its name and message, the author's frames, and its
 * causes the same way (`seen`: the errors said already, for causes that go round). */
function failure(error, seen = new Set()) {
  // What SpiderMonkey throws when it can allocate no more: the module's memory, not a
  // value the author threw.
  if (error === 'out of memory') return 'ran out of memory';
  if (!(error instanceof Error)) {
    // Said as what it is: a thrown value has no name and no stack to point at the code.
    const shown = safely(
      () => String(error !== null && typeof error === 'object' ? rendered(error) : error),
      '(a thrown value that cannot be shown)',
    );
    return `threw ${kind(error)}, not an Error (throw an Error to see where): ${shown}`;
  }
  if (seen.has(error)) return '(the same error again: its causes go round)';
  seen.add(error);
  // The bindings' frames and the SDK's own say nothing about the author's code.
  const frames = collapsed(
    safely(() => String(error.stack ?? ''), '')
      .split('\n')
      .filter((frame) => frame && !frame.includes('initializer.js') && !frame.includes('modhost_sdk.js')),
  );
  const name = safely(() => String(error.name), 'Error');
  const message = safely(() => String(error.message), '(its message cannot be read)');
  const said = [`${name}: ${message}`, ...frames].join('\n');
  const cause = safely(() => error.cause, undefined);
  return cause === undefined ? said : `${said}\nCaused by: ${failure(cause, seen)}`;
}

/** `frames` with each run of one frame repeated (a recursion's) said once, then how many
 * more times it came, as Python's tracebacks do. */
function collapsed(frames) {
  const out = [];
  let repeated = 0;
  const flush = () => {
    if (repeated > 0) {
      out.push(`  [the frame above repeated ${repeated} more time${repeated === 1 ? '' : 's'}]`);
    }
    repeated = 0;
  };
  for (const frame of frames) {
    if (out.length > 0 && frame === out[out.length - 1]) {
      repeated += 1;
      continue;
    }
    flush();
    out.push(frame);
  }
  flush();
  return out;
}

/** Whether `value` is a Promise, or behaves as one. */
function thenable(value) {
  return value !== null && typeof value === 'object' && typeof value.then === 'function';
}

/** `call` with what it throws turned into the call's error, thrown as WIT's `err`. */
/** The line the host reads on stderr as where a call is (see `running`). */
const RUNNING_MARK = '[modhost] running ';

/**
 * Tells the host which of the author's functions the call runs now: a call stopped at
 * its deadline is then said to have been stopped in it (`handlers.onCall`), where the
 * engine's own frames would name nothing of the author's. The host reads the line on
 * stderr and shows it as no output of the module's.
 */
function running(where) {
  try {
    console.error(`${RUNNING_MARK}${where}`);
  } catch {
    // Saying where is a courtesy: the call goes on without it.
  }
}

function guarded(call) {
  try {
    return call();
  } catch (error) {
    throw failure(error);
  }
}

/** What a call must not be: `async`. */
const SYNCHRONOUS = 'modhost does not wait for it: make it synchronous, without async/await';

/** How a handler's wrong answer is said. */
function notText(name, value) {
  if (thenable(value)) return `handler \`${name}\` returned a Promise: ${SYNCHRONOUS}`;
  const hint = value === undefined ? 'did it forget `return`?' : 'JSON.stringify structured data';
  return `handler \`${name}\` returned ${kind(value)}: return a string (${hint})`;
}

/** What `defineModule` reads of its spec. */
const LIFECYCLE = ['install', 'upgrade', 'uninstall', 'enable', 'disable'];
const SPEC_KEYS = [...LIFECYCLE, 'handlers'];

/**
 * Whether `name` is one typing slip from `meant`: the same but for case, an `on` prefix,
 * or one letter added (not at its end), dropped, changed or two swapped (`instal`,
 * `handler`, `enabel`).
 */
function slipOf(name, meant) {
  const lower = name.toLowerCase().replace(/^on_?/, '');
  if (lower === meant) return true;
  const [a, b] = [lower, meant];
  // A word made longer (`enabled`, `installs`) is a name of its own, not a slip.
  if (Math.abs(a.length - b.length) > 1 || a.startsWith(b)) return false;
  // Optimal string alignment distance, stopped past 1.
  const rows = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[i].push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, rows[i - 2][j - 2] + 1);
      }
      rows[i].push(best);
    }
  }
  return rows[a.length][b.length] <= 1;
}

/**
 * Refuses, at build time (where app.js's top level runs), a spec modhost would read
 * wrong: a key one slip from one it reads (`instal`, `handler`), whose function would
 * silently never run, and a lifecycle entry or handler that is not a function.
 */
function checkSpec(spec) {
  for (const key of Object.keys(spec)) {
    if (SPEC_KEYS.includes(key)) continue;
    const meant = SPEC_KEYS.find((known) => slipOf(key, known));
    if (meant !== undefined) {
      throw new TypeError(
        `defineModule: \`${key}\` is not something modhost reads: did you mean \`${meant}\`? ` +
          `(it reads ${SPEC_KEYS.join(', ')}; name a helper otherwise)`,
      );
    }
  }
  for (const name of LIFECYCLE) {
    if (spec[name] !== undefined && typeof spec[name] !== 'function') {
      throw new TypeError(`defineModule: \`${name}\` must be a function, not ${kind(spec[name])}`);
    }
  }
  const handlers = spec.handlers;
  if (handlers === undefined) return;
  if (handlers === null || typeof handlers !== 'object') {
    throw new TypeError(
      `defineModule: \`handlers\` must be an object of functions, by the names module.xml ` +
        `gives them, not ${kind(handlers)}`,
    );
  }
  for (const [name, run] of Object.entries(handlers)) {
    if (typeof run !== 'function') {
      throw new TypeError(
        `defineModule: handler \`${name}\` must be a function (hook, payload) => string, ` +
          `not ${kind(run)}`,
      );
    }
  }
}

/**
 * Makes a module of `spec`: `install()`, `upgrade(fromVersion)`, `uninstall()`,
 * `enable()` and `disable()` when it has them, and `handlers`, by the names module.xml
 * gives them, each `(hook, payload) => string`. Returns `{ lifecycle, hooks }`, which
 * app.js exports. A key one slip from one of those (`instal`, `handler`) is refused, as
 * is an entry that is not a function: either would never run.
 */
export function defineModule(spec = {}) {
  checkSpec(spec);
  const handlers = spec.handlers ?? {};
  const step = (name) => (...args) => {
    const run = spec[name];
    if (run === undefined) return;
    running(`${name}()`);
    const returned = guarded(() => run.apply(spec, args));
    // What an async function does after its first `await` would happen after the call,
    // and its failure would be lost: refused, so that the change is undone.
    if (thenable(returned)) throw `${name}() returned a Promise: ${SYNCHRONOUS}`;
  };
  return {
    lifecycle: {
      install: step('install'),
      upgrade: step('upgrade'),
      uninstall: step('uninstall'),
      enable: step('enable'),
      disable: step('disable'),
    },
    hooks: {
      handle(handler, hook, payload) {
        const run = Object.hasOwn(handlers, handler) ? handlers[handler] : undefined;
        if (typeof run !== 'function') {
          const known = Object.keys(handlers).join(', ') || 'none';
          throw `no handler \`${handler}\` for hook \`${hook}\` (this module has: ${known})`;
        }
        running(`handlers.${handler}`);
        const output = guarded(() => run.call(handlers, hook, payload));
        if (typeof output !== 'string') throw notText(handler, output);
        guarded(() => wellFormed(`handler \`${handler}\`'s result`, output));
        return output;
      },
    },
  };
}
