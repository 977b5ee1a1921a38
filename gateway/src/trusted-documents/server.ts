/** Trusted documents at the gateway's two doors: HTTP (before Apollo Server) and graphql-ws (before parsing). */
import { ApolloServer, HeaderMap, type ApolloServerOptions, type BaseContext, type HTTPGraphQLRequest, type HTTPGraphQLResponse } from '@apollo/server';
import { ErrorCode, codedError, httpStatusOf } from '@commerce/service-kit/core';
import type { GraphQLError } from 'graphql';
import { isRecord } from './manifest.ts';
import { refuse, withoutPersistedQuery, type Refusal, type RefusalCode, type TrustedDocuments } from './enforce.ts';

/**
 * HTTP: the request to pass on, rewritten to carry the manifest's text and no APQ extension, or the
 * refusal to answer with. Follows Apollo's reading: POST takes the JSON body, GET the search params.
 */
export function checkHttpRequest(
  trusted: TrustedDocuments,
  request: HTTPGraphQLRequest,
): { request: HTTPGraphQLRequest } | { response: HTTPGraphQLResponse; code: RefusalCode } {
  if (request.method === 'POST') {
    const { body } = request;
    if (Array.isArray(body)) return refusalResponse(refuse(ErrorCode.PersistedQueryNotAllowed, 'Batched requests are not accepted with trusted documents'));
    // Anything else that is not an object cannot run; Apollo answers it.
    if (!isRecord(body)) return { request };
    const verdict = trusted.check(body);
    if (verdict.kind === 'refused') return refusalResponse(verdict);
    if (verdict.kind === 'none') return { request };
    const { extensions: _replaced, ...rest } = body;
    const extensions = withoutPersistedQuery(body.extensions);
    return { request: { ...request, body: { ...rest, query: verdict.operation.body, ...(extensions ? { extensions } : {}) } } };
  }
  if (request.method === 'GET') {
    const params = new URLSearchParams(request.search);
    const rawExtensions = params.get('extensions');
    let extensions: unknown;
    try {
      extensions = rawExtensions === null ? undefined : JSON.parse(rawExtensions);
    } catch {
      return refusalResponse(refuse(ErrorCode.PersistedQueryNotAllowed, 'The extensions search parameter is not valid JSON'));
    }
    const verdict = trusted.check({ query: params.get('query') ?? undefined, extensions });
    if (verdict.kind === 'refused') return refusalResponse(verdict);
    if (verdict.kind === 'none') return { request };
    params.set('query', verdict.operation.body);
    const rest = withoutPersistedQuery(extensions);
    if (rest) params.set('extensions', JSON.stringify(rest));
    else params.delete('extensions');
    return { request: { ...request, search: `?${params}` } };
  }
  // Apollo answers other methods with 405.
  return { request };
}

/**
 * graphql-ws: the request to run, rewritten like HTTP ones, or the errors to refuse it with.
 * graphql-ws requires a `query` string, so a hash-only subscribe sends `query: ""`.
 */
export function checkSocketOperation<R extends { query: string; extensions?: Record<string, unknown> | undefined }>(
  trusted: TrustedDocuments,
  request: R,
): R | GraphQLError[] {
  const verdict = trusted.check(request);
  if (verdict.kind === 'refused') return [codedError(verdict.code, verdict.message)];
  if (verdict.kind === 'none') return request;
  return { ...request, query: verdict.operation.body, extensions: withoutPersistedQuery(request.extensions) };
}

/**
 * Apollo Server that checks each HTTP request before Apollo sees it. A plugin cannot refuse this
 * early: an error thrown from requestDidStart or didResolveSource escapes Apollo's pipeline as a 500,
 * and didResolveOperation comes after the APQ cache lookup, parsing and validation.
 * With trusted documents, Apollo's APQ is off too, so nothing can ever register a hash.
 */
export class TrustedDocumentsServer<C extends BaseContext> extends ApolloServer<C> {
  readonly #trusted: TrustedDocuments | undefined;
  readonly #onRefusal: ((code: string) => void) | undefined;

  /** `onRefusal` learns the code of each HTTP request refused here (Apollo's plugins never see them). */
  constructor(config: ApolloServerOptions<C>, trusted: TrustedDocuments | undefined, onRefusal?: (code: string) => void) {
    super(trusted ? { ...config, persistedQueries: false } : config);
    this.#trusted = trusted;
    this.#onRefusal = onRefusal;
  }

  override async executeHTTPGraphQLRequest(args: Parameters<ApolloServer<C>['executeHTTPGraphQLRequest']>[0]): Promise<HTTPGraphQLResponse> {
    if (!this.#trusted) return super.executeHTTPGraphQLRequest(args);
    const checked = checkHttpRequest(this.#trusted, args.httpGraphQLRequest);
    if ('response' in checked) {
      this.#onRefusal?.(checked.code);
      return checked.response;
    }
    return super.executeHTTPGraphQLRequest({ ...args, httpGraphQLRequest: checked.request });
  }
}

/** Refusals are client errors (400 for both codes), answered before any context, parsing or planning. */
function refusalResponse({ code, message }: Refusal): { response: HTTPGraphQLResponse; code: RefusalCode } {
  const response: HTTPGraphQLResponse = {
    status: httpStatusOf(code),
    headers: new HeaderMap([
      ['content-type', 'application/json; charset=utf-8'],
      ['cache-control', 'private, no-cache, must-revalidate'],
    ]),
    body: { kind: 'complete', string: JSON.stringify({ errors: [codedError(code, message).toJSON()] }) },
  };
  return { response, code };
}
