/** Node flags from an environment variable (`BENCH_*_NODE_FLAGS`): space-separated, none when unset. */
export const nodeFlagsFrom = (name: string, env: NodeJS.ProcessEnv = process.env): string[] => (env[name] ?? '').split(' ').filter(Boolean);
