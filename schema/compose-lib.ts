import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { composeServices } from '@apollo/composition';
import { GraphQLError, parse, type DocumentNode } from 'graphql';

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

export interface CompositionError {
  /** Apollo's error code, e.g. `FIELD_TYPE_MISMATCH`; `INVALID_GRAPHQL` for SDL that does not parse. */
  code: string;
  /** Names the subgraph, type and field involved. */
  message: string;
}

export type CompositionOutcome =
  | { supergraphSdl: string; hints: string[] }
  | { errors: CompositionError[] };

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
    try {
      const text = override ?? readFileSync(s.sdlPath, 'utf8');
      definitions.push({ name: s.name, url: s.url, typeDefs: parse(text) });
    } catch (e) {
      // Collect every subgraph's syntax error rather than stopping at the first.
      const reason = e instanceof GraphQLError || e instanceof Error ? e.message : String(e);
      const source = override === undefined ? s.sdlPath : 'provided SDL';
      errors.push({ code: 'INVALID_GRAPHQL', message: `[${s.name}] ${source}: ${reason}` });
    }
  }
  if (errors.length > 0) return { errors };

  const result = composeServices(definitions);
  if (result.errors) {
    return { errors: result.errors.map((e) => ({ code: String(e.extensions.code ?? 'COMPOSITION_ERROR'), message: e.message })) };
  }
  return {
    supergraphSdl: `${result.supergraphSdl.trimEnd()}\n`,
    hints: result.hints.map((h) => `${h.definition.code}: ${h.message}`),
  };
}
