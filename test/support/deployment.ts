/**
 * The node flags the gateway is deployed with: the Dockerfile's CMD and docker-compose.yml's
 * command (test/docker-compose.test.ts holds both to this), and what `pnpm bench gateway` runs ours
 * with. 8 MiB semi-spaces (V8's default is 16 here): in that bench the same CPU per request (8.4 ms
 * both ways) and requests/s, 336 instead of 356 MiB of RSS at the peak (1.15 instead of 1.22 ×
 * stock) and 133 instead of 144 idle.
 */
export const DEPLOYED_GATEWAY_NODE_FLAGS = ['--max-semi-space-size=8'];
