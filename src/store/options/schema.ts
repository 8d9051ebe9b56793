/**
 * Declarative remote options: each backend states its keys once (type, default, bounds, one doc
 * line), and that table drives parsing of `-o key=value`, config files and the server's
 * `[storage.*]` tables, the "valid keys" list of every refusal, and the docs check in the tests.
 * A key that is not in the table is an error, never silently dropped or silently saved.
 */
import { ConfigError } from '../../errors/index.js';

/** A value as it arrives from the command line, a config file or TOML. */
export type OptionInput = string | number | boolean;

interface SpecBase {
  /** One line for messages and the docs check. */
  readonly doc: string;
  /** Never printed, never put in a message (keys, connection strings). */
  readonly secret?: boolean;
}

export interface StringOption extends SpecBase {
  readonly type: 'string';
  readonly choices?: readonly string[];
}

export interface IntegerOption extends SpecBase {
  readonly type: 'integer';
  readonly min: number;
  readonly max?: number;
  /** The value must be a multiple of this (GCS chunk sizes: 256 KiB). */
  readonly multipleOf?: number;
  readonly default?: number;
  /** A size in bytes: bounds are shown as "5 MiB" in messages. */
  readonly bytes?: boolean;
}

export interface BooleanOption extends SpecBase {
  readonly type: 'boolean';
  readonly default?: boolean;
}

export type OptionSpec = StringOption | IntegerOption | BooleanOption;

/** One backend's keys. */
export type OptionTable = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S extends IntegerOption
  ? number
  : S extends BooleanOption
    ? boolean
    : string;

/** What a backend's constructor accepts: every key optional, already typed. */
export type OptionValues<T extends OptionTable> = { [K in keyof T]?: ValueOf<T[K]> };

/** After parsing: keys with a default always have a value. */
export type ParsedOptions<T extends OptionTable> = {
  readonly [K in keyof T]: T[K] extends { readonly default: unknown }
    ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined;
};

/** The keys of a table, sorted, as a message lists them. */
export function validKeys(table: OptionTable): string[] {
  return Object.keys(table).sort();
}

export function unknownOptionError(
  key: string,
  what: string,
  valid: readonly string[],
): ConfigError {
  return new ConfigError(`unknown option '${key}' for ${what}`, {
    hint: valid.length ? `valid keys: ${valid.join(', ')}` : `${what} takes no options`,
  });
}

/** 5242880 → "5 MiB", so bounds read as the docs state them. */
function size(n: number): string {
  for (const [unit, factor] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const)
    if (n >= factor && n % factor === 0) return `${n / factor} ${unit}`;
  return String(n);
}

function bad(key: string, what: string, expected: string): ConfigError {
  // The value itself stays out: it may be a secret typed under the wrong key.
  return new ConfigError(`option ${key} of ${what} must be ${expected}`);
}

/** One value checked and converted against its spec. */
export function parseValue(
  key: string,
  spec: OptionSpec,
  raw: OptionInput,
  what: string,
): OptionInput {
  switch (spec.type) {
    case 'string': {
      const text = typeof raw === 'string' ? raw : String(raw);
      if (spec.choices && !spec.choices.includes(text))
        throw bad(key, what, `one of ${spec.choices.join(', ')}`);
      return text;
    }
    case 'boolean':
      if (raw === true || raw === 'true' || raw === 1 || raw === '1') return true;
      if (raw === false || raw === 'false' || raw === 0 || raw === '0') return false;
      throw bad(key, what, 'true or false');
    case 'integer': {
      const n = typeof raw === 'number' ? raw : /^\s*\d+\s*$/.test(String(raw)) ? Number(raw) : NaN;
      const show = (v: number): string => (spec.bytes ? size(v) : String(v));
      const range =
        spec.max === undefined
          ? `at least ${show(spec.min)}`
          : `from ${show(spec.min)} to ${show(spec.max)}`;
      if (!Number.isSafeInteger(n) || n < spec.min || (spec.max !== undefined && n > spec.max))
        throw bad(key, what, `an integer ${range}`);
      if (spec.multipleOf !== undefined && n % spec.multipleOf !== 0)
        throw bad(key, what, `a multiple of ${show(spec.multipleOf)}`);
      return n;
    }
  }
}

/**
 * Checks every key of `raw` against `table` (unknown → ConfigError listing the valid keys),
 * converts each value to its type, and fills in defaults. `what` names the remote in messages,
 * e.g. "an s3 remote".
 */
export function parseOptions<T extends OptionTable>(
  table: T,
  raw: Readonly<Record<string, OptionInput | undefined>>,
  what: string,
): ParsedOptions<T> {
  const out: Record<string, OptionInput | undefined> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const spec = table[key];
    if (spec === undefined) throw unknownOptionError(key, what, validKeys(table));
    out[key] = parseValue(key, spec, value, what);
  }
  for (const [key, spec] of Object.entries(table))
    if (out[key] === undefined && spec.type !== 'string' && spec.default !== undefined)
      out[key] = spec.default;
  return out as ParsedOptions<T>;
}

/**
 * The typed subset of an options object that a table knows; keys it does not know are left for
 * the caller (constructor-only settings such as the bucket or test hooks).
 */
export function pickOptions<T extends OptionTable>(
  table: T,
  options: object,
): Record<string, OptionInput | undefined> {
  const out: Record<string, OptionInput | undefined> = {};
  for (const [key, value] of Object.entries(options))
    if (key in table && (typeof value !== 'object' || value === null))
      out[key] = value as OptionInput | undefined;
  return out;
}

/** Read by the retry wrapper every remote gets (openStore), so every remote kind accepts it. */
export const RETRY_OPTIONS = {
  max_retries: {
    type: 'integer',
    min: 0,
    max: 100,
    default: 5,
    doc: 'Retries of a failed request by the retry wrapper; the backend itself never retries.',
  },
} as const satisfies OptionTable;

/**
 * The per-attempt deadline of the timeout wrapper openStore puts around every cloud backend, so a
 * stalled connection becomes a failed attempt that the retry wrapper repeats, never a hang.
 */
export const REQUEST_TIMEOUT_OPTIONS = {
  request_timeout_ms: {
    type: 'integer',
    min: 1,
    default: 600_000,
    doc: 'Milliseconds one attempt of one call may take in all before it fails and is retried.',
  },
} as const satisfies OptionTable;

/** REQUEST_TIMEOUT_OPTIONS plus the connect and idle timers of backends whose client has them. */
export const TIMEOUT_OPTIONS = {
  connect_timeout_ms: {
    type: 'integer',
    min: 1,
    default: 10_000,
    doc: 'Milliseconds to wait for a TCP connection.',
  },
  read_timeout_ms: {
    type: 'integer',
    min: 1,
    default: 120_000,
    doc: 'Milliseconds a request may go without receiving a byte before the attempt fails.',
  },
  ...REQUEST_TIMEOUT_OPTIONS,
} as const satisfies OptionTable;
