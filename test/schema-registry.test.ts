/**
 * Schema registry checks on fixture changes: modified subgraph SDL goes in through runCheck's `sdl`
 * override, and operations, approvals and registry copies live in temp dirs, so the real files are
 * never touched. Also the trusted-documents manifest built from an operations folder.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kind, parse, print, type OperationDefinitionNode } from 'graphql';
import { getValidManifest, sha256Hex, type Manifest, type ManifestOperation } from '@commerce/gateway/trusted-documents';
import { DEFAULT_OPERATION_LIMITS } from '@commerce/gateway/limits';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOperations } from '../schema/client-operations.ts';
import { API_SCHEMA_PATH, SUPERGRAPH_PATH } from '../schema/compose-lib.ts';
import { buildManifest, serializeManifest } from '../schema/manifest.ts';
import { OPERATIONS_DIR, publish, runCheck, type CheckReport } from '../schema/registry-lib.ts';

const root = path.resolve(import.meta.dirname, '..');
const sdlOf = (name: string) => readFileSync(path.join(root, 'subgraphs', name, 'schema.graphql'), 'utf8');
const PRODUCTS = sdlOf('products');
const SKU = '  id: ID!\n  sku: String!\n'; // Product.sku (CreateProductInput has one too)
const STOCK = '  "Units in stock; never negative."\n  stock: Int!\n';
const ORDERS = sdlOf('orders');

/** Replaces `from` exactly once, so a fixture fails loudly when the SDL it edits changes. */
function edit(sdl: string, from: string, to: string): string {
  const at = sdl.indexOf(from);
  if (at === -1 || sdl.indexOf(from, at + 1) !== -1) throw new Error(`fixture: ${JSON.stringify(from)} must occur exactly once`);
  return sdl.slice(0, at) + to + sdl.slice(at + from.length);
}

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A temp dir holding the given files (relative path → content). */
function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'schema-registry-'));
  temps.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const APPROVALS_NONE = JSON.stringify({ approvals: [] });
const change = (report: CheckReport, coordinate: string) => report.changes.find((c) => c.coordinate === coordinate);

// The stock badge reads stock; nothing here reads Product.description.
const STOREFRONT_OPS = {
  'web/product.graphql': `# Product page.

query ProductTile($id: ID!) {
  product(id: $id) { id name priceCents stock }
}
`,
};

describe('schema registry check', () => {
  it('passes on the committed registry, operations and approvals', async () => {
    const report = await runCheck();
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.changes).toEqual([]);
    expect(report.operations.length).toBeGreaterThanOrEqual(20);
  });

  it('passes a safe addition and lists it as safe', async () => {
    const sdl = {
      products: edit(
        PRODUCTS,
        '  category: String!\n  active: Boolean!\n',
        '  category: String!\n  "Shipping weight in grams."\n  weightGrams: Int\n  active: Boolean!\n',
      ),
    };
    const report = await runCheck({ sdl });
    expect(report.ok).toBe(true);
    expect(report.failures).toEqual([]);
    expect(change(report, 'Product.weightGrams')).toMatchObject({ level: 'safe', criticality: 'NON_BREAKING', type: 'FIELD_ADDED', approved: false });
  });

  it('fails when a field an operation uses is removed, naming the operation and its file', async () => {
    const ops = tempDir(STOREFRONT_OPS);
    const sdl = { products: edit(PRODUCTS, STOCK, '') };
    const report = await runCheck({ sdl, operationsDir: ops, approvalsPath: path.join(tempDir({ 'a.json': APPROVALS_NONE }), 'a.json') });
    expect(report.ok).toBe(false);
    expect(change(report, 'Product.stock')).toMatchObject({
      level: 'breaking',
      type: 'FIELD_REMOVED',
      usedBy: [path.join(ops, 'web/product.graphql')],
      usedByOperations: ['ProductTile'],
      approved: false,
    });
    expect(report.failures.some((f) => f.includes('Product.stock') && f.includes('ProductTile'))).toBe(true);
  });

  it('warns when a field no operation uses is removed, and fails with strict', async () => {
    const ops = tempDir(STOREFRONT_OPS);
    const sdl = { products: edit(PRODUCTS, '  description: String!\n', '') };
    const report = await runCheck({ sdl, operationsDir: ops });
    expect(change(report, 'Product.description')).toMatchObject({ level: 'breaking', usedBy: [], approved: false });
    expect(report.ok).toBe(true);
    expect(report.warnings).toEqual([expect.stringContaining('Product.description')]);

    const strict = await runCheck({ sdl, operationsDir: ops, strict: true });
    expect(strict.ok).toBe(false);
    expect(strict.failures).toEqual([expect.stringContaining('Product.description')]);
  });

  it("reports a field's type change as breaking", async () => {
    const sdl = { products: edit(PRODUCTS, '(cents)."\n  priceCents: Int!\n', '(cents)."\n  priceCents: Float!\n') };
    const report = await runCheck({ sdl });
    expect(change(report, 'Product.priceCents')).toMatchObject({
      level: 'breaking',
      type: 'FIELD_TYPE_CHANGED',
      message: "Field 'Product.priceCents' changed type from 'Int!' to 'Float!'",
    });
    // The storefront reads prices, so this is not a warning but a failure.
    expect(change(report, 'Product.priceCents')?.usedByOperations).toContain('Catalogue');
    expect(report.ok).toBe(false);
  });

  it('fails composition when two subgraphs give a shared field conflicting types, naming both and the field', async () => {
    const sdl = { orders: edit(ORDERS, 'type PageInfo @shareable {\n  hasNextPage: Boolean!', 'type PageInfo @shareable {\n  hasNextPage: Int!') };
    const report = await runCheck({ sdl });
    expect(report.ok).toBe(false);
    expect(report.composition.errors).toHaveLength(1);
    const [error] = report.composition.errors;
    expect(error).toMatchObject({ code: 'FIELD_TYPE_MISMATCH', coordinate: 'PageInfo.hasNextPage', subgraphs: ['orders', 'products', 'users'] });
    expect(error?.message).toMatch(/"PageInfo\.hasNextPage".*"Int!" in subgraph "orders".*"Boolean!" in subgraphs "products" and "users"/);
    expect(error?.locations).toContain('orders (provided SDL):53:3');
    expect(report.failures).toEqual([expect.stringContaining('FIELD_TYPE_MISMATCH')]);
  });

  it('passes an approved breaking change, and the approval covers only that change', async () => {
    const ops = tempDir(STOREFRONT_OPS);
    // Nullable stock still validates, but every reader of stock must now handle null.
    const sdl = { products: edit(PRODUCTS, STOCK, '  stock: Int\n') };
    const approvals = (entries: object[]) => path.join(tempDir({ 'approved-changes.json': JSON.stringify({ approvals: entries }) }), 'approved-changes.json');
    const approval = {
      change: 'FIELD_TYPE_CHANGED',
      coordinate: 'Product.stock',
      reason: 'bundles have no stock of their own',
      approvedBy: 'jane',
      date: '2026-11-22',
    };

    const unapproved = await runCheck({ sdl, operationsDir: ops, approvalsPath: approvals([]) });
    expect(unapproved.ok).toBe(false);
    expect(change(unapproved, 'Product.stock')).toMatchObject({ level: 'breaking', usedByOperations: ['ProductTile'], approved: false });

    const approved = await runCheck({ sdl, operationsDir: ops, approvalsPath: approvals([approval]) });
    expect(approved.failures).toEqual([]);
    expect(approved.ok).toBe(true);
    expect(change(approved, 'Product.stock')).toMatchObject({ approved: true, approval });

    const byMessage = await runCheck({
      sdl,
      operationsDir: ops,
      approvalsPath: approvals([{ message: "Field 'Product.stock' changed type from 'Int!' to 'Int'", reason: 'r', date: '2026-11-22' }]),
    });
    expect(byMessage.ok).toBe(true);

    // An approval of another change at the same coordinate does not carry over.
    const removal = await runCheck({ sdl, operationsDir: ops, approvalsPath: approvals([{ ...approval, change: 'FIELD_REMOVED' }]) });
    expect(removal.ok).toBe(false);
    // A coordinate alone would approve anything there: refused.
    const vague = await runCheck({ sdl, operationsDir: ops, approvalsPath: approvals([{ coordinate: 'Product.stock', reason: 'r', date: '2026-11-22' }]) });
    expect(vague.ok).toBe(false);
    expect(vague.failures).toContainEqual(expect.stringMatching(/approval 1: give "change" and "coordinate", or "message"/));
  });

  it('reports an operation that no longer validates with its file and line', async () => {
    const ops = tempDir({
      ...STOREFRONT_OPS,
      'mobile/search.graphql': `# Search screen.
query MobileSearchResults($search: String!) {
  products(first: 20, filter: { search: $search }) {
    edges {
      node {
        id
        sku
        name
      }
    }
  }
}
`,
    });
    const sdl = { products: edit(PRODUCTS, SKU, '  id: ID!\n') };
    const report = await runCheck({ sdl, operationsDir: ops });
    const file = path.join(ops, 'mobile/search.graphql');
    expect(report.operations.find((o) => o.name === 'MobileSearchResults')).toEqual({
      file,
      name: 'MobileSearchResults',
      errors: [{ message: 'Cannot query field "sku" on type "Product".', line: 7, file }],
    });
    expect(report.operations.find((o) => o.name === 'ProductTile')?.errors).toEqual([]);
    expect(report.failures).toContainEqual(`operation ${file}:7 MobileSearchResults: Cannot query field "sku" on type "Product".`);
    expect(report.ok).toBe(false);
  });

  it('fails on a registry that differs from the composition only in formatting', async () => {
    const registry = tempDir({ 'api.graphql': `\n${readFileSync(API_SCHEMA_PATH, 'utf8')}`, 'supergraph.graphql': readFileSync(SUPERGRAPH_PATH, 'utf8') });
    const report = await runCheck({ registryApiPath: path.join(registry, 'api.graphql'), registrySupergraphPath: path.join(registry, 'supergraph.graphql') });
    expect(report.changes).toEqual([]);
    expect(report.failures).toEqual([expect.stringContaining('registry out of date')]);
  });

  it('keeps every README example as a client operation', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const examples = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].flatMap((m) =>
      parse(m[1]!).definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION),
    );
    const kept = new Map(loadOperations(OPERATIONS_DIR).operations.map((op) => [op.name, print(op.document.definitions[0]!)]));
    for (const example of examples) expect(kept.get(example.name?.value ?? null), example.name?.value).toBe(print(example));
  });
});

describe('schema registry publish', () => {
  it('refuses on failures, then rewrites the registry and appends to the changelog', async () => {
    const registry = tempDir({ 'api.graphql': readFileSync(API_SCHEMA_PATH, 'utf8'), 'supergraph.graphql': readFileSync(SUPERGRAPH_PATH, 'utf8') });
    const paths = {
      registryApiPath: path.join(registry, 'api.graphql'),
      registrySupergraphPath: path.join(registry, 'supergraph.graphql'),
      changelogPath: path.join(registry, 'CHANGELOG.md'),
      now: new Date('2026-11-22T12:00:00Z'),
    };
    const before = readFileSync(paths.registryApiPath, 'utf8');

    const removal = { products: edit(PRODUCTS, SKU, '  id: ID!\n') };
    const refused = await publish({ ...paths, sdl: removal });
    expect(refused).toMatchObject({ published: false, written: [] });
    expect(readFileSync(paths.registryApiPath, 'utf8')).toBe(before);

    const addition = { products: edit(PRODUCTS, '  category: String!\n  active: Boolean!\n', '  category: String!\n  active: Boolean!\n  weightGrams: Int\n') };
    const published = await publish({ ...paths, sdl: addition });
    expect(published.published).toBe(true);
    expect(published.written).toEqual([paths.registrySupergraphPath, paths.registryApiPath, paths.changelogPath]);
    expect(readFileSync(paths.registryApiPath, 'utf8')).toContain('weightGrams: Int');
    const changelog = readFileSync(paths.changelogPath, 'utf8');
    expect(changelog).toContain('## 2026-11-22');
    expect(changelog).toContain("- `Product.weightGrams`: Field 'weightGrams' was added to object type 'Product'");

    // Published: the same SDL is no change any more.
    const again = await runCheck({ ...paths, sdl: addition });
    expect(again).toMatchObject({ ok: true, changes: [] });
  });
});

describe('schema registry CLI', () => {
  it('check --json on the repository exits 0 with the stable report shape', async () => {
    const { stdout } = await promisify(execFile)('npx', ['tsx', 'schema/registry.ts', 'check', '--json'], { cwd: root });
    const report = JSON.parse(stdout) as CheckReport;
    expect(Object.keys(report).sort()).toEqual(['changes', 'composition', 'failures', 'limits', 'ok', 'operations', 'warnings']);
    expect(report).toMatchObject({ ok: true, composition: { errors: [] }, changes: [], failures: [] });
    expect(report.operations[0]).toEqual({ file: expect.stringMatching(/^schema\/operations\/.+\.graphql$/), name: expect.any(String), errors: [] });
  });

  it('check measures each operation against the gateway limits and fails on one the gateway would refuse', async () => {
    const ops = tempDir({
      'web/a.graphql': 'query Small { me { id } }\nquery Wide { products(first: 50) { edges { node { id name } } } }',
    });
    const ok = await runCheck({ operationsDir: ops });
    expect(ok.limits?.operations.map((o) => [o.name, o.measure.cost, o.exceeded])).toEqual([
      ['Small', 2, []],
      ['Wide', 201, []],
    ]);
    const tight = await runCheck({ operationsDir: ops, operationLimits: { ...DEFAULT_OPERATION_LIMITS, maxCost: 200 } });
    expect(tight.ok).toBe(false);
    expect(tight.failures).toEqual([expect.stringMatching(/^limits: .*a\.graphql Wide: OPERATION_TOO_COMPLEX: .*201 exceeds the budget of 200$/)]);
  });

  it('check reads the limits from the gateway variables and prints each cost', async () => {
    const run = promisify(execFile)('npx', ['tsx', 'schema/registry.ts', 'check'], { cwd: root, env: { ...process.env, OPERATION_MAX_DEPTH: '3' } });
    const failed = (await run.catch((e: unknown) => e)) as { code: number; stdout: string };
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/Operation limits \(depth 3,/);
    expect(failed.stdout).toMatch(/✗ cost +\d+ +depth 7 .*MyOrders .*over: OPERATION_TOO_DEEP/);
  });

  it('check exits 1 on an unknown command', async () => {
    await expect(promisify(execFile)('npx', ['tsx', 'schema/registry.ts', 'chek'], { cwd: root })).rejects.toMatchObject({ code: 1 });
  });
});

// Two clients; the mobile subscription uses a fragment the web file defines.
const OPERATIONS = {
  'web/product.graphql': `
    # The product page
    query ProductPage($id: ID!) {
      product(id: $id) { ...ProductFields level }
    }

    mutation Rename($id: ID!, $name: String!) {
      rename(id: $id, name: $name) { ...ProductFields }
    }

    fragment ProductFields on Product { id name ...Pricing }
    fragment Pricing on Product { price }
    fragment Unused on Product { id }
  `,
  'mobile/live.graphql': `
    subscription StockLive($productId: ID!) {
      stockChanged(productId: $productId) { level product { ...ProductFields } }
    }
  `,
};

function byName(manifest: Manifest, name: string): ManifestOperation {
  const op = manifest.operations.find((o) => o.name === name);
  if (!op) throw new Error(`no operation ${name} in the manifest`);
  return op;
}

describe('schema manifest (buildManifest)', () => {
  it('writes one document per operation, with the fragments it uses, sorted by name, id = sha256(body)', () => {
    const manifest = buildManifest(tempDir(OPERATIONS));

    expect(manifest.format).toBe('apollo-persisted-query-manifest');
    expect(manifest.version).toBe(1);
    expect(manifest.operations.map((o) => [o.name, o.type, o.source])).toEqual([
      ['ProductPage', 'query', 'web/product.graphql'],
      ['Rename', 'mutation', 'web/product.graphql'],
      ['StockLive', 'subscription', 'mobile/live.graphql'],
    ]);
    for (const op of manifest.operations) expect(op.id).toBe(sha256Hex(op.body));
    const page = byName(manifest, 'ProductPage');
    // Printed canonically: the operation first, then its fragments (also the nested one) by name.
    expect(page.body).toBe(
      'query ProductPage($id: ID!) {\n  product(id: $id) {\n    ...ProductFields\n    level\n  }\n}\n\n' +
        'fragment Pricing on Product {\n  price\n}\n\n' +
        'fragment ProductFields on Product {\n  id\n  name\n  ...Pricing\n}',
    );
    expect(byName(manifest, 'StockLive').body).toContain('fragment ProductFields on Product');
    expect(manifest.operations.some((o) => o.body.includes('Unused'))).toBe(false);
  });

  it('is deterministic and ends with a newline', () => {
    const a = serializeManifest(buildManifest(tempDir(OPERATIONS)));
    const b = serializeManifest(buildManifest(tempDir(OPERATIONS)));

    expect(a).toBe(b);
    expect(a.endsWith('}\n')).toBe(true);
    expect(getValidManifest(JSON.parse(a), 'the serialized manifest').operations).toHaveLength(3);
  });

  it('refuses a duplicate operation name, naming both files', () => {
    const dir = tempDir({
      'mobile/a.graphql': 'query Home { ping }',
      'web/b.graphql': 'query Home { ping }',
    });

    expect(() => buildManifest(dir)).toThrow(/web\/b\.graphql:1: Operation name "Home" is already used at mobile\/a\.graphql:1/);
  });

  it.each([
    ['an anonymous operation', { 'a.graphql': '{ ping }' }, /a\.graphql:1: Every kept operation needs a name/],
    ['an unknown fragment', { 'a.graphql': 'query A { ...Nope }' }, /a\.graphql:1: operation "A" uses fragment "Nope", which is not defined/],
    [
      'two different fragments with one name',
      { 'a.graphql': 'fragment F on Q { a }', 'b.graphql': 'fragment F on Q { b }' },
      /b\.graphql:1: Fragment "F" is already defined differently at a\.graphql:1/,
    ],
    ['a syntax error', { 'a.graphql': 'query A {' }, /a\.graphql:1: Syntax Error/],
    ['a type definition', { 'a.graphql': 'type Q { a: Int }' }, /a\.graphql:1: Only operations and fragments belong here/],
  ])('refuses %s with a clear error', (_label, files, message) => {
    expect(() => buildManifest(tempDir(files))).toThrow(message);
  });

  it('lists every problem at once', () => {
    const dir = tempDir({ 'a.graphql': '{ ping }', 'b.graphql': 'query B { ...Nope }' });

    expect(() => buildManifest(dir)).toThrow(/a\.graphql:1: Every kept operation needs a name\.\nb\.graphql:1: operation "B" uses fragment "Nope"/);
  });

  it('gives an empty manifest when there is no operations folder', () => {
    expect(buildManifest(path.join(tmpdir(), 'no-such-operations-dir')).operations).toEqual([]);
  });
});
