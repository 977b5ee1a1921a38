// Bundles the IDE page (GraphiQL, React, graphql-ws) into dist/graphiql.js and dist/graphiql.css,
// which gateway/src/ide.ts serves: nothing is loaded from another origin at run time.
// Runs from scripts/generate.mjs on `pnpm install`; `node gateway/ide/build.mjs` runs it alone.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Writes the bundle into `outdir` (default gateway/ide/dist/) and returns the files written. */
export async function buildIde({ outdir = path.join(here, 'dist') } = {}) {
  // Resolved from this folder, so the gateway package's esbuild is the one used.
  const esbuild = await import('esbuild');
  await rm(outdir, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: { graphiql: path.join(here, 'src', 'main.ts') },
    outdir,
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    define: { 'process.env.NODE_ENV': '"production"' },
    // graphiql.css already carries its fonts as data: URLs; anything else it references is bundled too.
    loader: { '.woff': 'dataurl', '.woff2': 'dataurl', '.png': 'dataurl', '.svg': 'dataurl' },
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
  });
  return Object.keys(result.metafile.outputs).map((file) => path.relative(process.cwd(), file));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = await buildIde();
  console.log(`generate: IDE bundle ${files.join(', ')}`);
}
