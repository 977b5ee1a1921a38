/**
 * A subgraph called without a socket: when the gateway runs in the subgraph's process (the
 * all-in-one runner), its fetches go straight into the subgraph's Apollo Server operation pipeline,
 * with the same signed identity, request id and trace context in its headers, instead of over
 * loopback HTTP: no sockets, no HTTP parsing, and neither the request nor the result serialised,
 * for what was a third of that process's CPU per request.
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
  /**
   * The body as its JSON would parse (the result object itself, never serialised, on the usual
   * path); text when the endpoint would not have answered JSON.
   */
  body: unknown;
}

export interface InProcessSubgraph {
  /** Answers one request as the subgraph's `POST /graphql` does; `headers` with lower-case names. */
  execute(body: InProcessRequestBody, headers: Readonly<Record<string, string>>): Promise<InProcessResponse>;
}
