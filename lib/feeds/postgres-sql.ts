// The Postgres side of pgStoreEvents: the trigger that notifies a deleted session's digest (never
// its ID) on a channel, its SQL, the check that it is in place, and what its payload says.

/** Options for {@link pgStoreEventsSql}: the table and channel of `pgStoreEvents`. */
export interface PgStoreEventsSqlOptions {
  /**
   * connect-pg-simple's `tableName`.
   * @default 'session'
   */
  table?: string;
  /**
   * connect-pg-simple's `schemaName`: the table's schema, where the trigger's function goes too.
   * @default undefined (the first schema of the `search_path`, as connect-pg-simple does)
   */
  schema?: string;
  /**
   * The `LISTEN`/`NOTIFY` channel.
   * @default 'session_ended'
   */
  channel?: string;
}

/** The table, schema and channel, checked. */
export interface PgNames {
  table: string;
  schema: string | undefined;
  channel: string;
}

/** The function's name (one per schema) and its row trigger's (one per table). */
export const TRIGGER_NAME = 'socket_io_session_auth_ended';
/** Its statement trigger's: a TRUNCATE fires no row trigger. */
export const TRUNCATE_TRIGGER_NAME = 'socket_io_session_auth_truncated';

// Postgres truncates longer identifiers (NAMEDATALEN - 1 bytes), so a longer name would not be
// the one the trigger check looks for, and pg_notify refuses a longer channel.
const MAX_NAME_BYTES = 63;

function checkName(helper: string, name: string, value: unknown): void {
  if (
    typeof value !== 'string' ||
    value === '' ||
    value.includes('\0') ||
    Buffer.byteLength(value) > MAX_NAME_BYTES
  ) {
    throw new TypeError(
      `${helper}: options.${name} must be a non-empty string of at most ${MAX_NAME_BYTES} bytes`,
    );
  }
}

/** The table, schema and channel of `options`, with their defaults; throws naming `helper`. */
export function checkNames(helper: string, options: PgStoreEventsSqlOptions): PgNames {
  const { table = 'session', schema, channel = 'session_ended' } = options;
  checkName(helper, 'table', table);
  if (schema !== undefined) checkName(helper, 'schema', schema);
  checkName(helper, 'channel', channel);
  return { table, schema, channel };
}

/** An identifier as Postgres reads it exactly (case kept), as connect-pg-simple quotes its table. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A string literal (standard_conforming_strings, on by default since Postgres 9.1). */
function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The table, schema-qualified when a schema is given. */
export function qualifiedTable({ table, schema }: PgNames): string {
  return schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

function qualifiedFunction({ schema }: PgNames): string {
  return schema === undefined ? TRIGGER_NAME : `${quoteIdent(schema)}.${TRIGGER_NAME}`;
}

// The digest is lib/core/state.ts `sessionDigest`: SHA-256 of the ID's UTF-8 bytes, base64url,
// its first 22 characters (base64 of 32 bytes has its padding at the 44th, and no line break).
// `expired`: connect-pg-simple prunes expired rows with a DELETE; `now()` is the deleting
// transaction's start, as `to_timestamp(now)` is in its prune's `expire < …`. A TRUNCATE says
// only that: the feed has every session read again.
const FUNCTION_BODY = `
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify(TG_ARGV[0], '{"truncated":true}');
    RETURN NULL;
  END IF;
  PERFORM pg_notify(TG_ARGV[0], json_build_object(
    'digest', substr(translate(encode(sha256(convert_to(OLD.sid, 'UTF8')), 'base64'), '+/', '-_'), 1, 22),
    'expired', OLD.expire < now()
  )::text);
  RETURN NULL;
END`;

/**
 * The SQL that makes `pgStoreEvents` hear the session table: a function and a trigger `AFTER
 * DELETE … FOR EACH ROW` that `pg_notify`s the channel with `{"digest": …, "expired": …}`: the
 * session's digest (computed in SQL, so the session ID never leaves the database) and whether the
 * row had expired; and a trigger `AFTER TRUNCATE`, after which every session with sockets is read
 * again. Run it once (a migration), as a role that owns the table; or let
 * `pgStoreEvents({ createTrigger: true })` run it. Running it again replaces them. Needs
 * PostgreSQL 11 or later (`sha256`).
 *
 * @example
 * ```ts
 * await pool.query(pgStoreEventsSql({ table: 'session', channel: 'session_ended' }));
 * ```
 */
export function pgStoreEventsSql(options: PgStoreEventsSqlOptions = {}): string {
  const value: unknown = options;
  if (value === null || typeof value !== 'object') {
    throw new TypeError('pgStoreEventsSql: options must be an object');
  }
  return triggerSql(checkNames('pgStoreEventsSql', options));
}

/** The trigger's SQL for checked names. */
export function triggerSql(names: PgNames): string {
  const fn = qualifiedFunction(names);
  const table = qualifiedTable(names);
  const channel = quoteLiteral(names.channel);
  return [
    `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $socket_io_session_auth$${FUNCTION_BODY}
$socket_io_session_auth$;`,
    `DROP TRIGGER IF EXISTS ${TRIGGER_NAME} ON ${table};`,
    `CREATE TRIGGER ${TRIGGER_NAME} AFTER DELETE ON ${table}`,
    `  FOR EACH ROW EXECUTE FUNCTION ${fn}(${channel});`,
    `DROP TRIGGER IF EXISTS ${TRUNCATE_TRIGGER_NAME} ON ${table};`,
    `CREATE TRIGGER ${TRUNCATE_TRIGGER_NAME} AFTER TRUNCATE ON ${table}`,
    `  FOR EACH STATEMENT EXECUTE FUNCTION ${fn}(${channel});`,
    '',
  ].join('\n');
}

/**
 * The trigger's SQL as `createTrigger` runs it. One statement string is one transaction, so the
 * lock holds until the end: nodes starting at once create the triggers one after another
 * (concurrent `CREATE OR REPLACE FUNCTION`s fail with "tuple concurrently updated").
 */
export function creationSql(names: PgNames): string {
  return `SELECT pg_advisory_xact_lock(hashtext(${quoteLiteral(TRIGGER_NAME)}));\n${triggerSql(names)}`;
}

/** What `pgStoreEvents` needs of a query: the app's pool, or a client checked out of it. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * Why the triggers do not notify the channel on the table (missing, disabled, another channel, no
 * such table), or undefined when they do.
 */
export async function triggerProblem(db: PgQueryable, names: PgNames): Promise<string | undefined> {
  const table = qualifiedTable(names);
  // tgargs: the trigger's arguments in the database's encoding, each followed by a NUL byte.
  const { rows } = await db.query(
    `SELECT to_regclass($1) IS NOT NULL AS "table", (
       SELECT json_object_agg(t.tgname, json_build_object('enabled', t.tgenabled <> 'D',
         'channel', t.tgnargs = 1
           AND t.tgargs = convert_to($4, current_setting('server_encoding')) || decode('00', 'hex')))
       FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
       WHERE t.tgrelid = to_regclass($1) AND t.tgname = ANY($2::name[]) AND p.proname = $3
     ) AS "triggers"`,
    [table, [TRIGGER_NAME, TRUNCATE_TRIGGER_NAME], TRIGGER_NAME, names.channel],
  );
  const row = rows[0] as {
    table: boolean;
    triggers: Record<string, { enabled: boolean; channel: boolean } | undefined> | null;
  };
  if (!row.table) return `there is no table ${table}`;
  for (const name of [TRIGGER_NAME, TRUNCATE_TRIGGER_NAME]) {
    const trigger = row.triggers?.[name];
    if (trigger === undefined) return `the trigger ${name} is not on ${table}`;
    if (!trigger.enabled) return `the trigger ${name} on ${table} is disabled`;
    if (!trigger.channel) {
      return `the trigger ${name} on ${table} notifies another channel than ${quoteIdent(names.channel)}`;
    }
  }
  return undefined;
}

const DIGEST = /^[A-Za-z0-9_-]{22}$/;

/** What a notification says: a session gone, or the whole table emptied (TRUNCATE). */
export type Heard = { digest: string; reason: 'deleted' | 'expired' } | { truncated: true };

/** What the trigger's payload says, or undefined for a payload it never sends. */
export function parsePayload(payload: string | undefined): Heard | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload ?? '');
  } catch {
    return undefined;
  }
  const { digest, expired, truncated } = (parsed ?? {}) as Record<string, unknown>;
  if (truncated === true) return { truncated };
  if (typeof digest !== 'string' || !DIGEST.test(digest)) return undefined;
  return { digest, reason: expired === true ? 'expired' : 'deleted' };
}

/** A Postgres error that another try would meet again (a privilege, a syntax): not a dropped link. */
export function lasting(error: unknown): boolean {
  const { code } = (error ?? {}) as { code?: unknown };
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|53|57)/.test(code);
}
