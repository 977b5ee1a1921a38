/**
 * The gateway's rate limits, free of any transport: a budget of operations per client (the user
 * when signed in, else the IP) and stricter budgets for credential fields (log-in, sign-up) per IP
 * and per e-mail. HTTP checks the first when the context is built (before parsing) and the others
 * in an Apollo plugin (plugin.ts, after parsing, before planning); WebSocket checks both for each
 * `subscribe` message (subscriptions/server.ts). Counters live in Redis or in memory (store.ts).
 */
import { createHash } from 'node:crypto';
import { ErrorCode, codedError, type Identity, type Logger } from '@commerce/service-kit/core';
import type { DocumentNode, GraphQLError, OperationDefinitionNode } from 'graphql';
import { findCredentialAttempts } from './credentials.ts';
import { createMemoryRateLimitStore, createRedisRateLimitStore, getValidBudget, type Budget, type RateLimiter, type RateLimitStore } from './store.ts';

export type { Budget, RateLimiter, RateLimitStore, Verdict } from './store.ts';

export interface RateLimitOptions {
  /** Counters in this Redis, shared by every gateway instance; unset: in this process. */
  redisUrl?: string | undefined;
  /** Prefix of the Redis keys. @default 'gateway:rl:' */
  redisPrefix?: string;
  /** Operations per client (user, else IP) per window, HTTP and WebSocket alike. @default { points: 600, durationSec: 60 } */
  requests?: Budget;
  /**
   * Cost per client per window: each operation spends its cost estimate (limits.ts), so a client
   * cannot send the most expensive operation its per-request budget allows over and over.
   * @default { points: 200_000, durationSec: 60 }
   */
  cost?: Budget;
  /** Credential fields (each alias counts) per IP. @default { points: 10, durationSec: 60 } */
  credentialsPerIp?: Budget;
  /** Credential fields per e-mail (lower-cased). @default { points: 5, durationSec: 900 } */
  credentialsPerEmail?: Budget;
  /** The mutation fields that take credentials. @default ['logIn', 'signUp'] */
  credentialFields?: readonly string[];
}

export const DEFAULT_RATE_LIMITS = {
  requests: { points: 600, durationSec: 60 },
  cost: { points: 200_000, durationSec: 60 },
  credentialsPerIp: { points: 10, durationSec: 60 },
  credentialsPerEmail: { points: 5, durationSec: 900 },
  credentialFields: ['logIn', 'signUp'],
} as const satisfies RateLimitOptions;

/** Who a budget is counted for. */
export interface Client {
  identity: Identity | null;
  ip: string;
}

export interface RateLimits {
  /** One operation by `client`; the error to refuse it with when over budget. */
  checkRequest(client: Client, refuse: Refusal): Promise<GraphQLError | undefined>;
  /** `cost` (an operation's estimate) spent from `client`'s cost budget; the error when over it. */
  checkCost(client: Client, cost: number, refuse: Refusal): Promise<GraphQLError | undefined>;
  /** The credential fields of `operation`, counted per IP and per e-mail. */
  checkCredentials(
    client: Client,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Readonly<Record<string, unknown>> | undefined,
    refuse: Refusal,
  ): Promise<GraphQLError | undefined>;
  /** A budget of this store (for budgets counted in other units, such as an operation's cost). */
  limiter(name: string, budget: Budget): RateLimiter;
  close(): Promise<void>;
}

/** `http`: the error refuses the request with 429 and Retry-After; `socket`: it is an `error` message. */
export type Refusal = 'http' | 'socket';

/** `false`: no rate limits (tests that are about something else). */
export function createRateLimits(opts: RateLimitOptions | false, logger: Logger): RateLimits {
  if (opts === false) return unlimited;
  const store: RateLimitStore = opts.redisUrl ? createRedisRateLimitStore({ url: opts.redisUrl, prefix: opts.redisPrefix }) : createMemoryRateLimitStore();
  const requests = store.limiter('requests', getValidBudget('requests', opts.requests ?? DEFAULT_RATE_LIMITS.requests));
  const costs = store.limiter('cost', getValidBudget('cost', opts.cost ?? DEFAULT_RATE_LIMITS.cost));
  const perIp = store.limiter('credentials-ip', getValidBudget('credentialsPerIp', opts.credentialsPerIp ?? DEFAULT_RATE_LIMITS.credentialsPerIp));
  const perEmail = store.limiter(
    'credentials-email',
    getValidBudget('credentialsPerEmail', opts.credentialsPerEmail ?? DEFAULT_RATE_LIMITS.credentialsPerEmail),
  );
  const fields = new Set(opts.credentialFields ?? DEFAULT_RATE_LIMITS.credentialFields);

  const refused = (limit: string, retryAfterSec: number, refuse: Refusal, log: object) => {
    logger.info({ ...log, limit, retryAfterSec }, 'rate limited');
    return rateLimited(limit, retryAfterSec, refuse);
  };

  return {
    async checkRequest(client, refuse) {
      const verdict = await requests.consume(clientKey(client));
      return verdict.allowed ? undefined : refused('requests', verdict.retryAfterSec, refuse, { client: clientKey(client) });
    },
    async checkCost(client, cost, refuse) {
      if (cost <= 0) return undefined;
      const verdict = await costs.consume(clientKey(client), cost);
      return verdict.allowed ? undefined : refused('cost', verdict.retryAfterSec, refuse, { client: clientKey(client), cost });
    },
    async checkCredentials(client, document, operation, variables, refuse) {
      const attempts = findCredentialAttempts(document, operation, fields, variables);
      if (attempts.length === 0) return undefined;
      const byIp = await perIp.consume(client.ip, attempts.length);
      if (!byIp.allowed) return refused('credentials per IP', byIp.retryAfterSec, refuse, { ip: client.ip, attempts: attempts.length });
      const perAddress = new Map<string, number>();
      for (const { email } of attempts) if (email !== undefined) perAddress.set(email, (perAddress.get(email) ?? 0) + 1);
      for (const [email, count] of perAddress) {
        // Hashed: the store holds no e-mail address.
        const byEmail = await perEmail.consume(createHash('sha256').update(email).digest('base64url'), count);
        if (!byEmail.allowed) return refused('credentials per e-mail', byEmail.retryAfterSec, refuse, { ip: client.ip });
      }
      return undefined;
    },
    limiter: (name, budget) => store.limiter(name, budget),
    close: () => store.close(),
  };
}

/** The user when signed in (wherever from), else the IP. */
export const clientKey = ({ identity, ip }: Client): string => (identity ? `user:${identity.userId}` : `ip:${ip}`);

export function rateLimited(limit: string, retryAfterSec: number, refuse: Refusal): GraphQLError {
  const message = `Too many requests (${limit}); retry after ${retryAfterSec} s`;
  const extensions = { extensions: { limit, retryAfter: retryAfterSec } };
  if (refuse === 'socket') return codedError(ErrorCode.RateLimited, message, extensions);
  return codedError(ErrorCode.RateLimited, message, { ...extensions, refuseRequest: { headers: { 'retry-after': String(retryAfterSec) } } });
}

const unlimitedLimiter: RateLimiter = { consume: () => Promise.resolve({ allowed: true, remaining: Number.POSITIVE_INFINITY }) };
const unlimited: RateLimits = {
  checkRequest: () => Promise.resolve(undefined),
  checkCost: () => Promise.resolve(undefined),
  checkCredentials: () => Promise.resolve(undefined),
  limiter: () => unlimitedLimiter,
  close: () => Promise.resolve(),
};
