/**
 * The node flags the gateway is deployed with: the Dockerfile's CMD and docker-compose.yml's
 * command (test/docker-compose.test.ts holds both to this), and what `pnpm bench gateway` runs ours
 * with. 8 MiB semi-spaces (V8's default is 16 here): in that bench the same CPU per request (8.4 ms
 * both ways) and requests/s, 336 instead of 356 MiB of RSS at the peak (1.15 instead of 1.22 ×
 * stock) and 133 instead of 144 idle.
 */
export const DEPLOYED_GATEWAY_NODE_FLAGS = ['--max-semi-space-size=8'];

/**
 * The node flags of `pnpm start`'s all-in-one process (package.json's `start`, and `bench`, whose
 * one-process runs host the services the same way; test/docker-compose.test.ts holds both to this).
 * 64 MiB semi-spaces: with every service's requests in flight in one heap, fewer of their objects
 * survive a scavenge into the old generation. `pnpm bench scale`, one process, 32 clients,
 * alternating runs: the three-subgraph query 382–408 against 343–348 requests/s (2.63–2.77 against
 * 3.11–3.21 ms of CPU per request), books in stock 889–894 against 784–794 (p95 45.5–46.9 against
 * 49.7–52.2 ms); the process's peak RSS 600 against 472 MiB (128 MiB semi-spaces: 729 MiB, no
 * faster). A process per service gained nothing from it (the three-subgraph query 291–312 against
 * 299–310 requests/s), so docker-compose's subgraphs run without it. Idle, the semi-spaces stay small.
 */
export const ONE_PROCESS_NODE_FLAGS = ['--max-semi-space-size=64'];
