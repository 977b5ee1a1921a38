/**
 * Proves that each service's hand-written migrations produce exactly the database its
 * schema.prisma describes (the job `prisma migrate diff` would do if its engine could run here).
 * The expected side comes from Prisma's own DMMF, so editing schema.prisma without a migration fails.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import internals from '@prisma/internals';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_NAMES, type ServiceName } from '@commerce/local/demo-data';
import { MIGRATIONS_DIRS } from '@commerce/local/services';
import { migrate, openDatabase, type Database } from '@commerce/service-kit';

type Datamodel = Awaited<ReturnType<typeof internals.getDMMF>>['datamodel'];
type Model = Datamodel['models'][number];
type Field = Model['fields'][number];

/** What both sides are reduced to; `toEqual` on two of these prints a readable diff. */
interface SchemaShape {
  enums: Record<string, string[]>;
  tables: Record<string, TableShape>;
}

interface TableShape {
  columns: Record<string, { type: string; nullable: boolean; default: string | null }>;
  primaryKey: string | null;
  uniqueIndexes: string[];
  indexes: string[];
  foreignKeys: string[];
}

const LEDGER = '_prisma_migrations';
const MAX_IDENTIFIER = 63;

// ---------------------------------------------------------------- Prisma side

async function expectedShape(service: ServiceName): Promise<SchemaShape> {
  const file = path.resolve(import.meta.dirname, '../prisma', service, 'schema.prisma');
  const { datamodel } = await internals.getDMMF({ datamodel: readFileSync(file, 'utf8') });
  const enums: SchemaShape['enums'] = {};
  for (const e of datamodel.enums) enums[e.dbName ?? e.name] = e.values.map((v) => v.dbName ?? v.name);
  const tables: SchemaShape['tables'] = {};
  for (const model of datamodel.models) tables[tableOf(model)] = expectedTable(datamodel, model);
  return { enums, tables };
}

function expectedTable(datamodel: Datamodel, model: Model): TableShape {
  const table = tableOf(model);
  const column = (fieldName: string): string => columnOf(fieldOf(model, fieldName));
  const shape: TableShape = { columns: {}, primaryKey: null, uniqueIndexes: [], indexes: [], foreignKeys: [] };
  for (const field of model.fields) {
    if (field.kind === 'object') continue;
    shape.columns[columnOf(field)] = {
      type: expectedType(datamodel, field),
      nullable: !field.isRequired,
      default: expectedDefault(datamodel, field),
    };
  }
  for (const index of datamodel.indexes.filter((i) => i.model === model.name)) {
    const columns = index.fields.map((f) => column(f.name) + (f.sortOrder === 'desc' ? ' DESC' : ''));
    const plain = index.fields.map((f) => column(f.name));
    const method = index.algorithm && index.algorithm.toLowerCase() !== 'btree' ? ` USING ${index.algorithm.toLowerCase()}` : '';
    if (index.type === 'id') shape.primaryKey = describeIndex(index.dbName ?? prismaName(table, [], '_pkey'), columns, '');
    else if (index.type === 'unique') shape.uniqueIndexes.push(describeIndex(index.dbName ?? prismaName(table, plain, '_key'), columns, method));
    else if (index.type === 'normal') shape.indexes.push(describeIndex(index.dbName ?? prismaName(table, plain, '_idx'), columns, method));
    else throw new Error(`schema-match does not handle ${index.type} indexes yet (${model.name})`);
  }
  for (const field of model.fields) {
    const from = field.relationFromFields ?? [];
    if (field.kind !== 'object' || from.length === 0) continue;
    const target = datamodel.models.find((m) => m.name === field.type);
    if (!target) throw new Error(`Relation ${model.name}.${field.name} points at unknown model ${field.type}`);
    const required = from.every((name) => fieldOf(model, name).isRequired);
    // Prisma's defaults when the relation does not say: Restrict (or SetNull if optional), Cascade on update.
    const onDelete = field.relationOnDelete ?? (required ? 'Restrict' : 'SetNull');
    const onUpdate = field.relationOnUpdate ?? 'Cascade';
    const to = (field.relationToFields ?? []).map((name) => columnOf(fieldOf(target, name)));
    shape.foreignKeys.push(describeForeignKey(from.map(column), tableOf(target), to, onDelete, onUpdate));
  }
  return sortLists(shape);
}

const tableOf = (model: Model): string => model.dbName ?? model.name;
const columnOf = (field: Field): string => field.dbName ?? field.name;

function fieldOf(model: Model, name: string): Field {
  const field = model.fields.find((f) => f.name === name);
  if (!field) throw new Error(`${model.name} has no field ${name}`);
  return field;
}

/** Prisma's default constraint names: `<table>_<columns>_<suffix>`, cut to PostgreSQL's 63 bytes. */
function prismaName(table: string, columns: string[], suffix: string): string {
  const base = columns.length > 0 ? `${table}_${columns.join('_')}` : table;
  const limit = MAX_IDENTIFIER - suffix.length;
  return (base.length >= limit ? base.slice(0, limit) : base) + suffix;
}

const SCALAR_TYPES: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Float: 'double precision',
  Decimal: 'numeric(65,30)',
  Boolean: 'boolean',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
  Bytes: 'bytea',
};

/** `@db.X(args)` to PostgreSQL's `format_type()` spelling. */
function nativeType(name: string, args: string[]): string {
  const a = args.length > 0 ? `(${args.join(',')})` : '';
  const timePrecision = (base: string, tz: boolean): string => `${base}${a} ${tz ? 'with' : 'without'} time zone`;
  const simple: Record<string, string> = {
    Text: 'text',
    Uuid: 'uuid',
    Integer: 'integer',
    SmallInt: 'smallint',
    BigInt: 'bigint',
    Boolean: 'boolean',
    Real: 'real',
    DoublePrecision: 'double precision',
    Date: 'date',
    Json: 'json',
    JsonB: 'jsonb',
    ByteA: 'bytea',
    Inet: 'inet',
    Citext: 'citext',
    Xml: 'xml',
    Money: 'money',
    Oid: 'oid',
  };
  if (name in simple) return simple[name] as string;
  switch (name) {
    case 'VarChar':
      return `character varying${a}`;
    case 'Char':
      return `character${a || '(1)'}`;
    case 'Decimal':
      return `numeric${a}`;
    case 'Bit':
      return `bit${a || '(1)'}`;
    case 'VarBit':
      return `bit varying${a}`;
    case 'Timestamptz':
      return timePrecision('timestamp', true);
    case 'Timestamp':
      return timePrecision('timestamp', false);
    case 'Timetz':
      return timePrecision('time', true);
    case 'Time':
      return timePrecision('time', false);
    default:
      throw new Error(`schema-match does not know @db.${name} yet; add it to nativeType()`);
  }
}

function expectedType(datamodel: Datamodel, field: Field): string {
  let type: string;
  if (field.kind === 'enum') {
    const e = datamodel.enums.find((x) => x.name === field.type);
    type = `enum ${e?.dbName ?? field.type}`;
  } else if (field.nativeType) {
    const [name, args] = field.nativeType as [string, string[]];
    type = nativeType(name, args);
  } else {
    const scalar = SCALAR_TYPES[field.type];
    if (!scalar) throw new Error(`schema-match does not know Prisma type ${field.type} yet`);
    type = scalar;
  }
  return field.isList ? `${type}[]` : type;
}

/** The default the database itself holds; uuid(), cuid() and @updatedAt live in the Prisma client, not in SQL. */
function expectedDefault(datamodel: Datamodel, field: Field): string | null {
  const value: unknown = field.default;
  if (value === undefined || value === null) return null;
  if (typeof value === 'object' && 'name' in value) {
    const fn = value as { name: string; args: unknown[] };
    if (fn.name === 'now') return 'CURRENT_TIMESTAMP';
    if (fn.name === 'autoincrement') return 'autoincrement';
    if (fn.name === 'dbgenerated') return typeof fn.args[0] === 'string' ? fn.args[0] : '';
    if (['uuid', 'cuid', 'nanoid', 'ulid'].includes(fn.name)) return null;
    throw new Error(`schema-match does not know default ${fn.name}() yet`);
  }
  if (field.kind === 'enum') {
    const e = datamodel.enums.find((x) => x.name === field.type);
    const v = e?.values.find((x) => x.name === value);
    return `'${v?.dbName ?? scalarText(value)}'`;
  }
  if (typeof value === 'string' && !['Int', 'BigInt', 'Float', 'Decimal'].includes(field.type)) return `'${value}'`;
  return scalarText(value);
}

const scalarText = (value: unknown): string =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' ? String(value) : JSON.stringify(value);

// ---------------------------------------------------------------- database side

async function actualShape(db: Database): Promise<SchemaShape> {
  return db.sql.withConnection(async (conn) => {
    const params = [db.schema, LEDGER];
    const columns = await conn.query<{
      table: string;
      column: string;
      type: string;
      typtype: string;
      typname: string;
      elem_typtype: string | null;
      elem_typname: string | null;
      nullable: boolean;
      default: string | null;
    }>(
      `SELECT c.relname AS "table", a.attname AS "column", format_type(a.atttypid, a.atttypmod) AS type,
              t.typtype::text AS typtype, t.typname::text AS typname, et.typtype::text AS elem_typtype, et.typname::text AS elem_typname,
              NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS "default"
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> $2 AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum`,
      params,
    );
    const enumRows = await conn.query<{ name: string; label: string }>(
      `SELECT t.typname::text AS name, e.enumlabel::text AS label
         FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = $1 ORDER BY t.typname, e.enumsortorder`,
      [db.schema],
    );
    const indexes = await conn.query<{
      table: string;
      name: string;
      unique: boolean;
      primary: boolean;
      columns: string | null;
      method: string;
      expressions: boolean;
      predicate: string | null;
    }>(
      `SELECT t.relname AS "table", i.relname AS name, ix.indisunique AS "unique", ix.indisprimary AS "primary", am.amname::text AS method,
              ix.indexprs IS NOT NULL AS expressions, pg_get_expr(ix.indpred, ix.indrelid) AS predicate,
              (SELECT string_agg(a.attname || CASE WHEN pg_index_column_has_property(ix.indexrelid, k.ord::int, 'desc') THEN ' DESC' ELSE '' END, ',' ORDER BY k.ord)
                 FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum) AS columns
         FROM pg_index ix
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         JOIN pg_am am ON am.oid = i.relam
        WHERE n.nspname = $1 AND t.relname <> $2`,
      params,
    );
    const fks = await conn.query<{ table: string; columns: string; ref_table: string; ref_columns: string; on_delete: string; on_update: string }>(
      `SELECT t.relname AS "table", rt.relname AS ref_table, c.confdeltype::text AS on_delete, c.confupdtype::text AS on_update,
              (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS columns,
              (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum) AS ref_columns
         FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid
         JOIN pg_class rt ON rt.oid = c.confrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE c.contype = 'f' AND n.nspname = $1`,
      [db.schema],
    );

    const tables: SchemaShape['tables'] = {};
    const tableShape = (name: string): TableShape => (tables[name] ??= { columns: {}, primaryKey: null, uniqueIndexes: [], indexes: [], foreignKeys: [] });
    for (const c of columns.rows) {
      let type = c.type;
      if (c.typtype === 'e') type = `enum ${c.typname}`;
      else if (c.elem_typtype === 'e') type = `enum ${c.elem_typname}[]`;
      tableShape(c.table).columns[c.column] = { type, nullable: c.nullable, default: normalizeDefault(c.default) };
    }
    for (const ix of indexes.rows) {
      const shape = tableShape(ix.table);
      // Prisma cannot express expression or partial indexes, so they show up as a difference.
      const columnsText = ix.expressions ? `${ix.columns ?? ''},<expression>` : (ix.columns ?? '');
      const method = (ix.method !== 'btree' ? ` USING ${ix.method}` : '') + (ix.predicate ? ` WHERE ${ix.predicate}` : '');
      const text = describeIndex(ix.name, columnsText.split(','), method);
      if (ix.primary) shape.primaryKey = text;
      else if (ix.unique) shape.uniqueIndexes.push(text);
      else shape.indexes.push(text);
    }
    for (const fk of fks.rows) {
      tableShape(fk.table).foreignKeys.push(
        describeForeignKey(
          fk.columns.split(','),
          fk.ref_table,
          fk.ref_columns.split(','),
          FK_ACTIONS[fk.on_delete] ?? fk.on_delete,
          FK_ACTIONS[fk.on_update] ?? fk.on_update,
        ),
      );
    }
    const enums: SchemaShape['enums'] = {};
    for (const e of enumRows.rows) (enums[e.name] ??= []).push(e.label);
    for (const name of Object.keys(tables)) sortLists(tables[name] as TableShape);
    return { enums, tables };
  });
}

const FK_ACTIONS: Record<string, string> = { a: 'NoAction', r: 'Restrict', c: 'Cascade', n: 'SetNull', d: 'SetDefault' };

/** `'CUSTOMER'::"Role"` → `'CUSTOMER'`, `now()` → `CURRENT_TIMESTAMP`, `nextval(...)` → `autoincrement`. */
function normalizeDefault(expr: string | null): string | null {
  if (expr === null) return null;
  if (/^nextval\(/.test(expr)) return 'autoincrement';
  if (expr === 'now()' || expr === 'CURRENT_TIMESTAMP') return 'CURRENT_TIMESTAMP';
  const literal = /^('(?:[^']|'')*')::[\w\s".()[\],]+$/.exec(expr);
  if (literal) return literal[1] as string;
  return expr.replace(/^\((-?[\d.]+)\)$/, '$1');
}

// ---------------------------------------------------------------- shared

const describeIndex = (name: string, columns: string[], method: string): string => `${name} (${columns.join(', ')})${method}`;

const describeForeignKey = (columns: string[], refTable: string, refColumns: string[], onDelete: string, onUpdate: string): string =>
  `(${columns.join(', ')}) REFERENCES ${refTable} (${refColumns.join(', ')}) ON DELETE ${onDelete} ON UPDATE ${onUpdate}`;

function sortLists(shape: TableShape): TableShape {
  shape.uniqueIndexes.sort();
  shape.indexes.sort();
  shape.foreignKeys.sort();
  return shape;
}

// ---------------------------------------------------------------- backends

interface Backend {
  name: string;
  setup(): Promise<void>;
  /** An empty database for the service, as a first start would see it. */
  fresh(service: ServiceName): Promise<Database>;
  teardown(): Promise<void>;
}

// One in-memory PGlite (opening one costs seconds) whose public schema is emptied per service.
function pgliteBackend(): Backend {
  let db: Database | undefined;
  return {
    name: 'pglite',
    setup: async () => {
      db = await openDatabase({ kind: 'pglite' });
    },
    fresh: async () => {
      if (!db) throw new Error('pglite backend not set up');
      await db.sql.exec('DROP SCHEMA public CASCADE; CREATE SCHEMA public;');
      return db;
    },
    teardown: async () => db?.close(),
  };
}

// A throwaway database holding one schema per service, the way services share PostgreSQL in production.
function postgresBackend(adminUrl: string): Backend {
  const dbName = `schema_match_${process.pid}_${randomBytes(4).toString('hex')}`;
  const maintenance = new URL(adminUrl);
  maintenance.pathname = '/postgres';
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const opened: Database[] = [];
  const admin = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: maintenance.toString() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'postgres',
    setup: () => admin(`CREATE DATABASE "${dbName}"`),
    fresh: async (service) => {
      const db = await openDatabase({ kind: 'postgres', url: url.toString(), schema: service });
      opened.push(db);
      await db.sql.exec(`DROP SCHEMA "${service}" CASCADE; CREATE SCHEMA "${service}"`);
      return db;
    },
    teardown: async () => {
      await Promise.all(opened.map((db) => db.close()));
      await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    },
  };
}

const backends: Backend[] = [pgliteBackend()];
if (process.env.TEST_DATABASE_URL) backends.push(postgresBackend(process.env.TEST_DATABASE_URL));

describe.each(backends)('migrations match schema.prisma on $name', (backend) => {
  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());

  it.each(SERVICE_NAMES)('%s', async (service) => {
    const expected = await expectedShape(service);
    const db = await backend.fresh(service);
    await migrate(db, { migrationsDir: MIGRATIONS_DIRS[service] });

    expect(await actualShape(db)).toEqual(expected);
  });

  it('notices a drifted column (guards against a comparison that can never fail)', async () => {
    const expected = await expectedShape('users');
    const db = await backend.fresh('users');
    await migrate(db, { migrationsDir: MIGRATIONS_DIRS.users });
    await db.sql.withConnection((c) => c.exec('ALTER TABLE "users" ALTER COLUMN "name" TYPE VARCHAR(99)'));

    const actual = await actualShape(db);
    expect(actual).not.toEqual(expected);
    expect(actual.tables.users?.columns.name?.type).toBe('character varying(99)');
  });
});
