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
 * stack (`TypeError: …` then `deeper@app.js:5:27`), instead of a trap. A handler returns a
 * string: anything else (`undefined` from a forgotten `return`, an object) fails the call
 * naming the handler. What the host refuses (SQL on a missing table, a full quota) is
 * thrown as a `HostError` the module may catch.
 *
 * @module modhost_sdk
 */

import { log as hostLog } from 'modhost:module/log@0.1.0';
import * as hostKv from 'modhost:module/kv@0.1.0';
import * as hostDb from 'modhost:module/db@0.1.0';
import { fire as hostFire } from 'modhost:module/dispatch@0.1.0';

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
  if (value instanceof Uint8Array) return 'a Uint8Array';
  const type = typeof value;
  return type === 'object' ? 'an object' : `a ${type}`;
}

/** Refuses an argument that is not a string, naming the function and the argument. */
function text(what, name, value) {
  if (typeof value !== 'string') {
    throw new TypeError(`${what}: \`${name}\` must be a string, not ${kind(value)}`);
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
  if (typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value))) {
    const integer = BigInt(value);
    if (integer < S64_MIN || integer > S64_MAX) {
      throw new RangeError(`${what} = ${value} does not fit SQLite's 64-bit integers`);
    }
    return { tag: 'integer', val: integer };
  }
  if (typeof value === 'number') return { tag: 'real', val: value };
  if (typeof value === 'string') return { tag: 'text', val: value };
  if (value instanceof Uint8Array) return { tag: 'blob', val: value };
  throw new TypeError(
    `${what} is ${kind(value)}: bind null, a boolean, a number, a bigint, a string or a Uint8Array`,
  );
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

/** A log function for `level`: `(message, fields)`, fields rendered as text. */
function logAt(level) {
  return (message, fields = {}) => {
    text(`log.${level}`, 'message', message);
    const rendered = Object.entries(fields).map(([key, value]) => ({
      key,
      value: typeof value === 'string' ? value : String(value),
    }));
    hostLog(level, message, rendered);
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

/** The error result for `error`: its name and message, then the author's frames. */
function failure(error) {
  if (error instanceof HostError) return error.message;
  if (!(error instanceof Error)) return String(error);
  // The bindings' frames and the SDK's own say nothing about the author's code.
  const frames = String(error.stack ?? '')
    .split('\n')
    .filter((frame) => frame && !frame.includes('initializer.js') && !frame.includes('modhost_sdk.js'));
  return [`${error.name}: ${error.message}`, ...frames].join('\n');
}

/** `call` with what it throws turned into the call's error, thrown as WIT's `err`. */
function guarded(call) {
  try {
    return call();
  } catch (error) {
    throw failure(error);
  }
}

/** How a handler's wrong answer is said. */
function notText(name, value) {
  const hint = value === undefined ? 'did it forget `return`?' : 'JSON.stringify structured data';
  return `handler \`${name}\` returned ${kind(value)}: return a string (${hint})`;
}

/**
 * Makes a module of `spec`: `install()`, `upgrade(fromVersion)`, `uninstall()`,
 * `enable()` and `disable()` when it has them, and `handlers`, by the names module.xml
 * gives them, each `(hook, payload) => string`. Returns `{ lifecycle, hooks }`, which
 * app.js exports.
 */
export function defineModule(spec = {}) {
  const handlers = spec.handlers ?? {};
  const step = (name) => (...args) => {
    const run = spec[name];
    if (run !== undefined) guarded(() => run.apply(spec, args));
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
        const output = guarded(() => run.call(handlers, hook, payload));
        if (typeof output !== 'string') throw notText(handler, output);
        return output;
      },
    },
  };
}
