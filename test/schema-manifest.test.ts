/** `pnpm schema:manifest`: the trusted-documents manifest built from a temporary operations folder. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getValidManifest, sha256Hex, type Manifest, type ManifestOperation } from '@commerce/gateway/trusted-documents';
import { afterAll, describe, expect, it } from 'vitest';
import { buildManifest, serializeManifest } from '../schema/manifest.ts';

const tempDirs: string[] = [];

/** A fresh operations folder holding `files` (relative path → text). */
function writeOperations(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'schema-manifest-'));
  tempDirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

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

describe('buildManifest', () => {
  afterAll(() => {
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('writes one document per operation, with the fragments it uses, sorted by name, id = sha256(body)', () => {
    const manifest = buildManifest(writeOperations(OPERATIONS));

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
    const a = serializeManifest(buildManifest(writeOperations(OPERATIONS)));
    const b = serializeManifest(buildManifest(writeOperations(OPERATIONS)));

    expect(a).toBe(b);
    expect(a.endsWith('}\n')).toBe(true);
    expect(getValidManifest(JSON.parse(a), 'the serialized manifest').operations).toHaveLength(3);
  });

  it('refuses a duplicate operation name, naming both files', () => {
    const dir = writeOperations({
      'mobile/a.graphql': 'query Home { ping }',
      'web/b.graphql': 'query Home { ping }',
    });

    expect(() => buildManifest(dir)).toThrow(/web\/b\.graphql:1: Operation name "Home" is already used at mobile\/a\.graphql:1/);
  });

  it.each([
    ['an anonymous operation', { 'a.graphql': '{ ping }' }, /a\.graphql:1: Every kept operation needs a name/],
    ['an unknown fragment', { 'a.graphql': 'query A { ...Nope }' }, /a\.graphql:1: operation "A" uses fragment "Nope", which is not defined/],
    ['two different fragments with one name', { 'a.graphql': 'fragment F on Q { a }', 'b.graphql': 'fragment F on Q { b }' }, /b\.graphql:1: Fragment "F" is already defined differently at a\.graphql:1/],
    ['a syntax error', { 'a.graphql': 'query A {' }, /a\.graphql:1: Syntax Error/],
    ['a type definition', { 'a.graphql': 'type Q { a: Int }' }, /a\.graphql:1: Only operations and fragments belong here/],
  ])('refuses %s with a clear error', (_label, files, message) => {
    expect(() => buildManifest(writeOperations(files))).toThrow(message);
  });

  it('lists every problem at once', () => {
    const dir = writeOperations({ 'a.graphql': '{ ping }', 'b.graphql': 'query B { ...Nope }' });

    expect(() => buildManifest(dir)).toThrow(/a\.graphql:1: Every kept operation needs a name\.\nb\.graphql:1: operation "B" uses fragment "Nope"/);
  });

  it('gives an empty manifest when there is no operations folder', () => {
    expect(buildManifest(path.join(tmpdir(), 'no-such-operations-dir')).operations).toEqual([]);
  });
});
