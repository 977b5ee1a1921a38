// Compiles the gateway's process entry point (gateway/src/index.ts and the workspace TypeScript it
// imports) into one ES module, gateway/dist/index.mjs, run by plain `node`: no tsx loader thread
// and no TypeScript transform in the serving process. Packages stay separate files, imported by
// the absolute path Node would resolve from the importing source (pnpm keeps each package's
// dependencies next to it, so gateway/dist could not resolve the kit's on its own).
// `node gateway/build.mjs` writes it; `pnpm bench gateway` runs it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Writes gateway/dist/index.mjs and returns its path. */
export async function buildGateway({ outfile = path.join(here, 'dist', 'index.mjs') } = {}) {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [path.join(here, 'src', 'index.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Node's own resolution order for packages without an exports map (graphql: index.js, as @apollo/gateway requires it).
    mainFields: ['main', 'module'],
    sourcemap: 'linked',
    logLevel: 'warning',
    plugins: [
      {
        name: 'packages-by-path',
        setup(build) {
          build.onResolve({ filter: /^[^./]/ }, async (args) => {
            // pluginData marks our own build.resolve below: esbuild's resolution, not this hook again.
            if (args.pluginData === 'external' || args.kind === 'entry-point' || args.path.startsWith('@commerce/') || args.path.startsWith('node:'))
              return undefined;
            const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'external' });
            if (resolved.errors.length > 0) return { errors: resolved.errors };
            return { path: resolved.path, external: true };
          });
        },
      },
    ],
  });
  // The esbuild service process would otherwise live as long as the caller (a test worker, the bench).
  await esbuild.stop();
  return outfile;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await buildGateway());
