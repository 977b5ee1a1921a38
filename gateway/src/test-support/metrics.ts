/** Reading a Prometheus exposition in tests: the kit's Scrape. */
export { Scrape } from '@commerce/service-kit/observability-testing';

/** The gateway's `/metrics` beside its GraphQL URL. */
export const metricsUrlOf = (graphqlUrl: string): string => new URL('/metrics', graphqlUrl).href;
