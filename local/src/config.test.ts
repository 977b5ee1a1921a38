import { describe, expect, it } from 'vitest';
import { loadLocalConfig } from './config.ts';

describe('loadLocalConfig', () => {
  it('serves each service its own /metrics by default', () => {
    const config = loadLocalConfig({});
    for (const service of [config.users, config.products, config.orders, config.gateway]) expect(service.metrics).toEqual({ serve: 'inline' });
    expect(config.metricsPort).toBeUndefined();
  });

  it('with METRICS_PORT, serves every service from one listener on it (four services share the process)', () => {
    const config = loadLocalConfig({ METRICS_PORT: '9464' });
    for (const service of [config.users, config.products, config.orders, config.gateway]) expect(service.metrics).toEqual({ serve: 'host' });
    expect(config.metricsPort).toBe(9464);
  });

  it('with METRICS_ENABLED=false, collects nothing anywhere', () => {
    const config = loadLocalConfig({ METRICS_ENABLED: 'false', METRICS_PORT: '9464' });
    for (const service of [config.users, config.products, config.orders, config.gateway]) expect(service.metrics).toEqual({ serve: 'off' });
    expect(config.metricsPort).toBeUndefined();
  });

  it('calls the subgraphs in process by default, over HTTP with SUBGRAPH_CALLS=http, and refuses anything else naming the variable', () => {
    expect(loadLocalConfig({}).subgraphCalls).toBe('in-process');
    expect(loadLocalConfig({ SUBGRAPH_CALLS: 'http' }).subgraphCalls).toBe('http');
    expect(() => loadLocalConfig({ SUBGRAPH_CALLS: 'grpc' })).toThrow(/SUBGRAPH_CALLS/);
  });
});
