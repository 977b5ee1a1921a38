import { defineConfig } from 'vitest/config';

export default defineConfig({
  // One copy of graphql for everyone: Apollo and graphql-ws load its CommonJS build, and two
  // copies reject each other's schemas ("from another module or realm").
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', '.data/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Files start real servers and databases; two at a time fits a 2-core machine.
    maxWorkers: 2,
    // @apollo/gateway reads APOLLO_TELEMETRY_DISABLED from process.env when a gateway is built; tests
    // build gateways in-process, without the entry points that default it (gateway/src/config.ts).
    env: { NODE_ENV: 'test', APOLLO_TELEMETRY_DISABLED: 'true' },
  },
});
