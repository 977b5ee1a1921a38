import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeServices } from '@apollo/composition';
import { GraphQLError, Source, getLocation, parse, printSchema, type DocumentNode } from 'graphql';

/** One subgraph as the registry knows it: where its SDL lives and where the gateway reaches it. */
export interface SubgraphSource {
  name: string;
  /** Default routing URL written into the supergraph; the gateway may override it per subgraph. */
  url: string;
  sdlPath: string;
}

const root = new URL('../', import.meta.url);
const sdlPath = (name: string) => fileURLToPath(new URL(`subgraphs/${name}/schema.graphql`, root));

export const SUBGRAPHS: readonly SubgraphSource[] = [
  { name: 'users', url: 'http://127.0.0.1:4001/graphql', sdlPath: sdlPath('users') },
  { name: 'products', url: 'http://127.0.0.1:4002/graphql', sdlPath: sdlPath('products') },
  { name: 'orders', url: 'http://127.0.0.1:4003/graphql', sdlPath: sdlPath('orders') },
];

/** The committed registry of record. */
export const SUPERGRAPH_PATH = fileURLToPath(new URL('schema/supergraph.graphql', root));
/** The public API schema clients see (the supergraph without federation's machinery), committed beside it. */
export const API_SCHEMA_PATH = fileURLToPath(new URL('schema/api.graphql', root));

export interface CompositionError {
  /** Apollo's error code, e.g. `FIELD_TYPE_MISMATCH`; `INVALID_GRAPHQL` for SDL that does not parse. */
  code: string;
  /** Names the subgraph, type and field involved. */
  message: string;
  /** Where in the subgraphs' SDL, as `file:line:column` (`<name> (provided SDL)` for SDL passed in). */
  locations?: string[];
}

export type CompositionOutcome = { supergraphSdl: string; apiSdl: string; hints: string[] } | { errors: CompositionError[] };

export const isCompositionFailure = (o: CompositionOutcome): o is { errors: CompositionError[] } => 'errors' in o;

export interface ComposeOptions {
  /** Subgraphs to compose. @default SUBGRAPHS */
  subgraphs?: readonly SubgraphSource[];
  /** SDL text per subgraph name, used instead of reading `sdlPath` (lets tests try a change). */
  sdl?: Partial<Record<string, string>>;
}

/** Composes the subgraphs' SDL into a supergraph. Never throws for bad SDL: it returns the errors. */
export function composeSupergraph(opts: ComposeOptions = {}): CompositionOutcome {
  const subgraphs = opts.subgraphs ?? SUBGRAPHS;
  const errors: CompositionError[] = [];
  const definitions: { name: string; url: string; typeDefs: DocumentNode }[] = [];
  for (const s of subgraphs) {
    const override = opts.sdl?.[s.name];
    // Named sources let errors point at a file and line.
    const sourceName = override === undefined ? path.relative(fileURLToPath(root), s.sdlPath) : `${s.name} (provided SDL)`;
    try {
      const text = override ?? readFileSync(s.sdlPath, 'utf8');
      definitions.push({ name: s.name, url: s.url, typeDefs: parse(new Source(text, sourceName)) });
    } catch (e) {
      // Collect every subgraph's syntax error rather than stopping at the first.
      const reason = e instanceof GraphQLError || e instanceof Error ? e.message : String(e);
      const source = override === undefined ? s.sdlPath : 'provided SDL';
      const at = e instanceof GraphQLError && e.locations?.[0] ? [`${sourceName}:${e.locations[0].line}:${e.locations[0].column}`] : [];
      errors.push({ code: 'INVALID_GRAPHQL', message: `[${s.name}] ${source}: ${reason}`, locations: at });
    }
  }
  if (errors.length > 0) return { errors };

  const result = composeServices(definitions);
  if (result.errors) {
    return {
      errors: result.errors.map((e) => ({
        code: typeof e.extensions.code === 'string' ? e.extensions.code : 'COMPOSITION_ERROR',
        message: e.message,
        locations: (e.nodes ?? []).flatMap((n) => {
          if (!n.loc) return [];
          const { line, column } = getLocation(n.loc.source, n.loc.start);
          return [`${n.loc.source.name}:${line}:${column}`];
        }),
      })),
    };
  }
  return {
    supergraphSdl: `${result.supergraphSdl.trimEnd()}\n`,
    // What the gateway exposes: join/link directives, @inaccessible elements and federation types removed.
    apiSdl: `${printSchema(result.schema.toAPISchema().toGraphQLJSSchema()).trimEnd()}\n`,
    hints: result.hints.map((h) => `${h.definition.code}: ${h.message}`),
  };
}

/** The file's text, or undefined when it does not exist. */
export function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
