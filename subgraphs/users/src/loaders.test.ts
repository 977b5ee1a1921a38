import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PrismaClient } from './generated/prisma/client.ts';
import { createLoaders } from './loaders.ts';
import { startUsersApp, type UsersApp } from './test-support.ts';

let app: UsersApp;
let dispose: () => Promise<void>;
let prisma: PrismaClient;
let before = 0;
/** SQL statements the service sent since the test began. */
const statements = () => app.sqlStats.statements - before;
const ids: string[] = [];

beforeAll(async () => {
  ({ app, dispose } = await startUsersApp());
  prisma = app.prisma;
  for (let i = 0; i < 4; i++) {
    const u = await prisma.user.create({ data: { email: `user${i}@example.com`, name: `User ${i}`, passwordHash: 'x' } });
    ids.push(u.id);
  }
});

afterAll(async () => {
  await dispose?.();
});

beforeEach(() => {
  before = app.sqlStats.statements;
});

describe('userById', () => {
  it("shares one statement with other requests' lookups in the same turn of the loop, each request answered its own users", async () => {
    const [one, two] = [createLoaders(app.raw, app.db.schema), createLoaders(app.raw, app.db.schema)];
    const [a, b] = await Promise.all([one.userById.load(ids[0]!), two.userById.load(ids[1]!)]);
    expect([a?.id, b?.id]).toEqual([ids[0], ids[1]]);
    expect(statements()).toBe(1);
  });

  it('finds an id sent in upper case, like every loader keyed by uuid', async () => {
    const loaders = createLoaders(app.raw, app.db.schema);
    const [upper, lower] = await Promise.all([loaders.userById.load(ids[0]!.toUpperCase()), loaders.userById.load(ids[1]!)]);
    expect([upper?.id, lower?.id]).toEqual([ids[0], ids[1]]);
    expect(statements()).toBe(1);
  });

  it('loads many users in one SQL statement, in key order, with null for unknown and malformed ids', async () => {
    const loaders = createLoaders(app.raw, app.db.schema);
    const keys = [ids[3]!, 'not-a-uuid', ids[0]!, '00000000-0000-4000-8000-000000000000', ids[1]!];
    const users = await Promise.all(keys.map((id) => loaders.userById.load(id)));
    expect(users.map((u) => u?.id ?? null)).toEqual([ids[3], null, ids[0], null, ids[1]]);
    expect(statements()).toBe(1);
    // Whole rows, as Prisma reads them (raw SQL with the columns aliased to the model's fields).
    expect(users[0]).toEqual(await prisma.user.findUnique({ where: { id: ids[3]! } }));
  });

  it('is per request: a new set of loaders queries again, the same set does not', async () => {
    const a = createLoaders(app.raw, app.db.schema);
    await a.userById.load(ids[0]!);
    await a.userById.load(ids[0]!);
    expect(statements()).toBe(1);
    await createLoaders(app.raw, app.db.schema).userById.load(ids[0]!);
    expect(statements()).toBe(2);
  });
});

describe('the users table', () => {
  it('refuses an e-mail that is not lower-case, so the unique index is case-insensitive', async () => {
    await expect(prisma.user.create({ data: { email: 'Mixed@Example.com', name: 'Mixed', passwordHash: 'x' } })).rejects.toThrow();
  });
});
