/** The catalogue of error codes is the one source: the README lists exactly it, and source code uses it. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '@commerce/service-kit';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** `| \`CODE\` | 401 | … |` rows of the README's "Error codes" section. */
function readmeCodes(): Record<string, number> {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.split(/^### Error codes$/m)[1]?.split(/^#{2,3} /m)[0] ?? '';
  const rows = [...section.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)];
  return Object.fromEntries(rows.map((m) => [m[1]!, Number(m[2])]));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'generated' || e.name === 'test-support' ? [] : sourceFiles(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.startsWith('test-support') && e.name !== 'testing.ts' ? [full] : [];
  });
}

describe('error codes', () => {
  it('the README lists every catalogued code with its HTTP status, and no other', () => {
    const catalogue = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, { status }]) => [code, status]));
    expect(readmeCodes()).toEqual(catalogue);
  });

  it('source code takes codes from the catalogue, never as string literals', () => {
    const dirs = ['service-kit/src', 'gateway/src', 'subgraphs/users/src', 'subgraphs/products/src', 'subgraphs/orders/src', 'local/src'];
    const literal = /code:\s*'[A-Z][A-Z_]+'/;
    const offenders = dirs
      .flatMap((d) => sourceFiles(path.join(root, d)))
      .flatMap((file) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .map((line, i) => ({ file: path.relative(root, file), line: i + 1, text: line.trim() })),
      )
      .filter(({ text }) => literal.test(text) && !text.startsWith('//') && !text.startsWith('*'));
    expect(offenders).toEqual([]);
  });
});
