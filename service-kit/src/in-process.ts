/**
 * A subgraph called without a socket: when the gateway runs in the subgraph's process (the
 * all-in-one runner), its fetches go straight into the subgraph's Apollo Server through the same
 * HTTP request handling (`executeHTTPGraphQLRequest`), with the same signed identity, request id and
 * trace context in its headers, instead of over loopback HTTP: no sockets, no HTTP parsing and no
 * request body serialised, for what was a third of that process's CPU per request.
 */

/** A GraphQL request as its JSON body would carry it. */
export interface InProcessRequestBody {
  query?: string | undefined;
  operationName?: string | undefined;
  variables?: Readonly<Record<string, unknown>> | undefined;
  extensions?: Readonly<Record<string, unknown>> | undefined;
}

/** What the subgraph's HTTP endpoint would have answered: its status, its headers and its body. */
export interface InProcessResponse {
  status: number;
  /** Lower-case names. */
  headers: ReadonlyMap<string, string>;
  body: string;
}

export interface InProcessSubgraph {
  /** Answers one request as the subgraph's `POST /graphql` does; `headers` with lower-case names. */
  execute(body: InProcessRequestBody, headers: Readonly<Record<string, string>>): Promise<InProcessResponse>;
}
