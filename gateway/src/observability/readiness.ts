/**
 * The gateway is ready when it has a supergraph and every subgraph it routes to answers its own
 * readiness check. The gateway is generic and may front foreign subgraphs: one that answers 404
 * (no health endpoint) is up, which is all the gateway can know of it.
 */
import { HEALTH_READY_PATH, type Health } from '@commerce/service-kit/core';
import type { Dispatcher } from 'undici';

/** Short: a probe should learn quickly that a subgraph hangs. */
export const SUBGRAPH_CHECK_TIMEOUT_MS = 1_000;

export interface GatewayReadiness {
  /** Adds (once per name) the check of a subgraph; a later URL for the same name replaces the one checked. */
  watchSubgraph(name: string, url: string): void;
}

/** `supergraph`: passes once the gateway has loaded a schema. */
export function addSupergraphCheck(health: Health, hasSupergraph: () => boolean): void {
  health.add({
    name: 'supergraph',
    check: async () => {
      if (!hasSupergraph()) throw new Error('no supergraph loaded yet');
    },
  });
}

/** `subgraph:<name>` for each subgraph the gateway builds a data source for. */
export function createSubgraphReadiness(health: Health, agent: Dispatcher): GatewayReadiness {
  const urls = new Map<string, string>();
  return {
    watchSubgraph(name, url) {
      const known = urls.has(name);
      urls.set(name, url);
      if (known) return;
      health.add({
        name: `subgraph:${name}`,
        timeoutMs: SUBGRAPH_CHECK_TIMEOUT_MS,
        check: (signal) => checkSubgraph(agent, urls.get(name) ?? url, signal),
      });
    },
  };
}

/** GET <origin>/health/ready through the gateway's own pool: 2xx and 404 pass, anything else fails with what it was. */
export async function checkSubgraph(agent: Dispatcher, url: string, signal: AbortSignal): Promise<void> {
  const { origin } = new URL(url);
  let answer: { statusCode: number; text: string };
  try {
    const { statusCode, body } = await agent.request({ origin, path: HEALTH_READY_PATH, method: 'GET', signal });
    answer = { statusCode, text: await body.text() };
  } catch (err) {
    throw new Error(`${origin} is not answering: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const { statusCode, text } = answer;
  if ((statusCode >= 200 && statusCode < 300) || statusCode === 404) return;
  throw new Error(`${origin}${HEALTH_READY_PATH} answered HTTP ${statusCode}${failingChecks(text)}`);
}

/** The names of the subgraph's own failing checks, when it answered with a health report. */
function failingChecks(text: string): string {
  try {
    const report = JSON.parse(text) as { checks?: Record<string, { status?: string }> };
    const failing = Object.entries(report.checks ?? {})
      .filter(([, c]) => c.status === 'fail')
      .map(([name]) => name);
    return failing.length ? ` (failing: ${failing.join(', ')})` : '';
  } catch {
    return '';
  }
}
