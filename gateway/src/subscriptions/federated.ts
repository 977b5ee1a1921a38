/**
 * Federated subscriptions, shared: client subscriptions with the same live form (document and
 * variables without `after`, resume.ts) and the same caller (anonymous, or the same user and role)
 * form a group with one upstream subscription on the owning subgraph. Each of its events is
 * resolved across subgraphs once (the planner's `rest` plan), serialized once, and written to every
 * member's socket; a member whose socket falls behind is closed alone (checkBacklog).
 *
 * A client resuming with `after` replays on an upstream stream of its own while it is held in the
 * group: the group's events wait for it. When its own stream delivers an event the group holds
 * (the same stream cursor, which our subgraphs put in each result's extensions), its own stream
 * ends and it goes on with the group's events after that one: no gap, no duplicate. A subgraph
 * without cursors, or a replay that never meets the group, leaves the client on its own stream.
 */
import { randomUUID } from 'node:crypto';
import type { GraphQLDataSource, ServiceMap } from '@apollo/gateway';
import {
  Channel,
  ErrorCode,
  IDENTITY_HEADER,
  REQUEST_ID_HEADER,
  codedError,
  inSpan,
  injectTraceContext,
  internalError,
  signForwardedIdentity,
  type Identity,
  type Logger,
  type Tracing,
} from '@commerce/service-kit/core';
import { context as otelContext, type Context as OtelContext } from '@opentelemetry/api';
import type { ExecutionResult, FormattedExecutionResult } from 'graphql';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';
import type { PreparedSubscription, SubgraphEvent, SubscriptionPlanner } from './planner.ts';
import type { SubgraphStreamOpener } from './subgraph-stream.ts';
import { LazyAbort, LazySignalContext } from './lazy-abort.ts';
import { startSocketSpan } from './observe.ts';

export type { SubgraphStreamOpener } from './subgraph-stream.ts';

export interface SubgraphEndpoint {
  /** HTTP URL; subscriptions dial the same host and path over ws:. */
  url: string;
  /** The gateway's data source (signs the caller's identity), used for `rest` fetches. */
  dataSource: GraphQLDataSource<GatewayContext>;
}

export interface FederatedSubscriptionDeps {
  /** Subgraphs by name, as the gateway built them (it may rebuild them on a schema update). */
  subgraphs: ReadonlyMap<string, SubgraphEndpoint>;
  openSubgraphStream: SubgraphStreamOpener;
  signingSecret: string;
  logger: Logger;
  /** After each result is written or queued for the client: the place to check its backlog. */
  onQueued(connection: Connection): void;
  /** The result as the client gets it (errors formatted); undefined when it goes as it is. */
  formatResult(result: ExecutionResult, requestId: string | undefined): FormattedExecutionResult | undefined;
  tracing: Tracing;
  /** Running subscriptions are counted when given (metrics on). */
  metrics?: GatewayMetrics | undefined;
}

export interface FederatedSubscription {
  connection: Connection;
  /** The client's subscription id. */
  id: string;
  /** The client's own subscription (with its `after`, when it resumes). */
  prepared: PreparedSubscription;
  /**
   * Its live form, shared with identical subscriptions (`key` says which): undefined when it
   * cannot be shared (its live form does not plan), and then it runs on its own stream.
   */
  shared: { prepared: PreparedSubscription; key: string } | undefined;
  /** It asked for a replay (`after`): its own stream first, then the group's. */
  resumes: boolean;
  planner: SubscriptionPlanner;
  /** The operation's root field, for labels and span names. */
  rootField: string;
  /** The client's subscribe extensions: a `traceparent` there is continued. */
  extensions: Record<string, unknown> | undefined;
}

/** One event resolved for clients: its `next` payload, serialized once for every recipient. */
interface Resolved {
  payload: string;
  /** The payload's UTF-8, encoded once for every member written to with Connection.sendText. */
  bytes: Buffer | undefined;
  errorCodes: unknown[] | undefined;
  /** The event's stream position, when the subgraph gave one. */
  cursor: string | undefined;
}

/** Group events a resuming member waits for before it gives up on joining and stays on its own stream. */
const MAX_HELD = 1_000;
/** Members a flush writes to before it lets the event loop turn. */
const WRITE_CHUNK = 500;
const CLOSING_BRACE = Buffer.from('}');
// WebSocket readyState, as in the WHATWG spec and ws.
const OPEN = 1;

interface Member {
  readonly sub: FederatedSubscription;
  readonly channel: Channel<ExecutionResult>;
  /** `{"id":…,"type":"next","payload":`: each event's frame is this, its payload and `}`. */
  readonly prefix: string;
  /** The prefix's UTF-8, for Connection.sendText; encoded at the first event. */
  prefixBytes: Buffer | undefined;
  /** Its own upstream stream (resuming, or unshareable); undefined once it is on the group's. */
  stopOwn: (() => void) | undefined;
  /** Resuming: group events held until its own stream reaches one of them. */
  held: Resolved[] | undefined;
  /** Resuming: cursors its own stream delivered (the newest MAX_HELD * 2). */
  seen: Set<string> | undefined;
  /** Just joined from its own stream: group events it already had, skipped once. */
  skip: Set<string> | undefined;
  group: Group | undefined;
  /** Takes it off its connection and out of the count. */
  forget(): void;
}

interface Group {
  readonly key: string;
  readonly rootField: string;
  /** Resolved events not yet written to the members. */
  readonly pending: Resolved[];
  /** A flush is writing (flush). */
  flushing: boolean;
  /** The upstream ended (with this error, or none): the members end once the queue is written. */
  ending: { result: ExecutionResult | undefined } | undefined;
  /** Members receiving its events. */
  readonly members: Set<Member>;
  /** Resuming members not yet on its events. */
  readonly holding: Set<Member>;
  stop(): void;
}

export interface SubscriptionGroups {
  /** The client's results, read by graphql-ws; returning it (unsubscribe, disconnect) takes it out. */
  start(sub: FederatedSubscription): Channel<ExecutionResult>;
  /** Groups open now (one upstream subscription each). */
  readonly size: number;
}

export function createSubscriptionGroups(deps: FederatedSubscriptionDeps): SubscriptionGroups {
  const { logger, metrics } = deps;
  const groups = new Map<string, Group>();

  /** Writes the event's frame to the member's socket; the caller checks its backlog (deps.onQueued). */
  function write(member: Member, resolved: Resolved): boolean {
    return send(member, [resolved]);
  }

  /**
   * Writes the events to the member's socket in one write: with the adapter's writer (sendText)
   * from the bytes encoded once per event, else through send() under cork.
   */
  function send(member: Member, events: readonly Resolved[]): boolean {
    const { socket, sendText, transport } = member.sub.connection;
    if (!member.channel.isOpen || socket.readyState !== OPEN) return false;
    if (sendText) {
      const prefix = (member.prefixBytes ??= Buffer.from(member.prefix));
      sendText(events.map((resolved) => [prefix, (resolved.bytes ??= Buffer.from(resolved.payload)), CLOSING_BRACE]));
      return true;
    }
    // One event goes out as it is (ws writes a frame's parts at once).
    const cork = events.length > 1 ? transport : undefined;
    cork?.cork?.();
    try {
      for (const resolved of events) socket.send(`${member.prefix}${resolved.payload}}`);
    } finally {
      cork?.uncork?.();
    }
    return true;
  }

  function count(rootField: string, delivered: number, resolved: Resolved) {
    if (!metrics || delivered === 0) return;
    metrics.subscriptionEvents.inc({ root_field: rootField }, delivered);
    if (resolved.errorCodes) for (let i = 0; i < delivered; i++) metrics.countErrors(resolved.errorCodes);
  }

  /** Ends the member's subscription: `result` (an error) first when given, then `complete`. */
  function end(member: Member, result: ExecutionResult | undefined) {
    member.stopOwn?.();
    member.stopOwn = undefined;
    leave(member);
    if (result) member.channel.push(result, measureBytes);
    member.channel.end();
    member.forget();
    deps.onQueued(member.sub.connection);
  }

  function leave(member: Member) {
    const group = member.group;
    if (!group) return;
    member.group = undefined;
    member.held = member.seen = member.skip = undefined;
    group.members.delete(member);
    group.holding.delete(member);
    if (group.members.size === 0 && group.holding.size === 0) {
      if (groups.get(group.key) === group) groups.delete(group.key);
      group.stop();
    }
  }

  /** An event of the member's own stream: written; while it resumes, a chance to join its group. */
  function ownEvent(member: Member, resolved: Resolved) {
    if (write(member, resolved)) count(member.sub.rootField, 1, resolved);
    deps.onQueued(member.sub.connection);
    if (!member.held) return;
    if (resolved.cursor === undefined) return leave(member);
    const seen = member.seen!;
    seen.add(resolved.cursor);
    if (seen.size > MAX_HELD * 2) seen.delete(seen.values().next().value as string);
    join(member);
  }

  /** Joins the group's events if its own stream delivered one of those held: the rest of them follow. */
  function join(member: Member) {
    const held = member.held!;
    const seen = member.seen!;
    let last = -1;
    for (let i = held.length - 1; i >= 0; i--) {
      if (seen.has(held[i]!.cursor!)) {
        last = i;
        break;
      }
    }
    if (last < 0) return;
    const group = member.group!;
    member.stopOwn?.();
    member.stopOwn = undefined;
    group.holding.delete(member);
    group.members.add(member);
    member.held = undefined;
    member.seen = undefined;
    // The group's next events may still include some its own stream delivered last.
    member.skip = seen;
    for (const resolved of held.slice(last + 1)) if (!seen.has(resolved.cursor!) && write(member, resolved)) count(member.sub.rootField, 1, resolved);
    deps.onQueued(member.sub.connection);
  }

  /** Queues the event for the group's members; one flush at a time writes what has queued, in order. */
  function groupEvent(group: Group, resolved: Resolved) {
    group.pending.push(resolved);
    if (!group.flushing) void flush(group);
  }

  /**
   * Writes the queued events to every member, WRITE_CHUNK members per turn of the event loop (a
   * large group does not hold it), each member's events at once: when events queue up faster
   * than the group is written to, each client gets them in one write rather than one each.
   */
  async function flush(group: Group) {
    group.flushing = true;
    try {
      while (group.pending.length > 0) {
        const batch = group.pending.splice(0);
        // Who is a member now; a resuming member that joins below gets these from what it held.
        const members = [...group.members];
        for (const resolved of batch) offerToHolding(group, resolved);
        const delivered = new Array<number>(batch.length).fill(0);
        for (let i = 0; i < members.length; i += WRITE_CHUNK) {
          if (i > 0) await new Promise((resolve) => setImmediate(resolve));
          for (let m = i; m < Math.min(i + WRITE_CHUNK, members.length); m++) writeBatch(members[m]!, batch, delivered);
        }
        for (const [i, resolved] of batch.entries()) count(group.rootField, delivered[i]!, resolved);
      }
    } finally {
      group.flushing = false;
    }
    if (group.ending) finish(group);
  }

  /** The upstream ended: every member ends, with its error when it failed; a resuming one still on its own stream goes on there. */
  function finish(group: Group) {
    const { result } = group.ending!;
    for (const member of [...group.members, ...group.holding]) {
      if (member.stopOwn) leave(member);
      else end(member, result);
    }
    group.stop();
  }

  function writeBatch(member: Member, batch: readonly Resolved[], delivered: number[]) {
    // Several events go out in one write, less those the member had from its own stream.
    let from = 0;
    if (member.skip) {
      while (from < batch.length && batch[from]!.cursor !== undefined && member.skip.has(batch[from]!.cursor!)) from++;
      if (from < batch.length) member.skip = undefined;
    }
    if (from < batch.length && send(member, from === 0 ? batch : batch.slice(from))) for (let i = from; i < batch.length; i++) delivered[i]!++;
    deps.onQueued(member.sub.connection);
  }

  function offerToHolding(group: Group, resolved: Resolved) {
    for (const member of group.holding) {
      if (resolved.cursor === undefined || member.held!.length >= MAX_HELD) {
        leave(member);
        continue;
      }
      member.held!.push(resolved);
      join(member);
    }
  }

  function openGroup(sub: FederatedSubscription, key: string, prepared: PreparedSubscription, traceContext: OtelContext): Group {
    const members = new Set<Member>();
    const holding = new Set<Member>();
    // The group's `rest` fetches listen to it; most groups sit idle, so it is made only when one asks.
    const closed = new LazyAbort();
    const context: GatewayContext = new LazySignalContext(sub.connection.identity, randomUUID(), closed);
    let stopped = false;
    const group: Group = {
      key,
      rootField: sub.rootField,
      pending: [],
      flushing: false,
      ending: undefined,
      members,
      holding,
      stop: () => {
        if (stopped) return;
        stopped = true;
        stopUpstream();
        closed.abort(new DOMException('the subscription group ended', 'AbortError'));
        metrics?.subscriptionStreams.dec({ root_field: sub.rootField });
      },
    };
    metrics?.subscriptionStreams.inc({ root_field: sub.rootField });
    const stopUpstream = upstream(sub, prepared, context, traceContext, {
      event: (resolved) => groupEvent(group, resolved),
      end: (result) => {
        if (groups.get(key) === group) groups.delete(key);
        // After what is queued has been written.
        group.ending = { result };
        if (!group.flushing) finish(group);
      },
    });
    groups.set(key, group);
    return group;
  }

  /**
   * Opens `prepared` on its subgraph as `context`'s caller and resolves its events one at a time, in
   * order. Returns the function that ends it.
   */
  function upstream(
    sub: FederatedSubscription,
    prepared: PreparedSubscription,
    context: GatewayContext,
    traceContext: OtelContext,
    sink: { event(resolved: Resolved): void; end(result: ExecutionResult | undefined): void },
  ): () => void {
    const { primary } = prepared;
    const subgraph = deps.subgraphs.get(primary.serviceName);
    let open = true;
    let stopStream = () => {};
    let pending = Promise.resolve();
    const enqueue = (step: () => Promise<void> | void) => {
      pending = pending.then(async () => {
        if (!open) return;
        try {
          await step();
        } catch (err) {
          logger.error({ requestId: context.requestId, err }, 'resolving a subscription event failed');
          open = false;
          stopStream();
          sink.end({ errors: [internalError()] });
        }
      });
    };
    if (!subgraph) {
      enqueue(() => sink.end({ errors: [codedError(ErrorCode.InternalServerError, `No subgraph named "${primary.serviceName}"`)] }));
      return () => void (open = false);
    }
    const serviceMap: ServiceMap = {};
    for (const [name, s] of deps.subgraphs) serviceMap[name] = s.dataSource;
    const resolve = async (event: SubgraphEvent): Promise<Resolved> => {
      let result: ExecutionResult;
      try {
        result = await otelContext.with(traceContext, () =>
          inSpan(deps.tracing.tracer, `${sub.rootField} event`, { 'graphql.operation.type': 'subscription' }, () =>
            sub.planner.resolveEvent(prepared, event, { context, serviceMap, logger }),
          ),
        );
      } catch (err) {
        logger.error({ requestId: context.requestId, err }, 'resolving a subscription event failed');
        result = { errors: [internalError()] };
      }
      const formatted = deps.formatResult(result, context.requestId);
      const cursor = event.extensions?.cursor;
      return {
        payload: JSON.stringify(formatted ?? result),
        bytes: undefined,
        errorCodes: result.errors?.map((e) => e.extensions.code),
        cursor: typeof cursor === 'string' ? cursor : undefined,
      };
    };
    stopStream = deps.openSubgraphStream(
      {
        serviceName: primary.serviceName,
        url: subgraph.url,
        query: primary.operation,
        operationName: primary.operationName,
        variables: prepared.primaryVariables,
        // Checked by the subgraph for this subscription; `rest` fetches are signed one by one.
        extensions: async () => {
          // `traceparent` (and `tracestate`): the subgraph continues the subscription's trace.
          const trace: Record<string, string> = {};
          injectTraceContext(trace, traceContext);
          return {
            [IDENTITY_HEADER]: await signForwardedIdentity(context.identity, deps.signingSecret, primary.serviceName),
            [REQUEST_ID_HEADER]: context.requestId,
            ...trace,
          };
        },
      },
      {
        next: (event) => enqueue(async () => sink.event(await resolve(event))),
        error: (errors) =>
          enqueue(() => {
            open = false;
            sink.end({ errors: [...errors] });
          }),
        complete: () =>
          enqueue(() => {
            open = false;
            sink.end(undefined);
          }),
      },
    );
    return () => {
      open = false;
      stopStream();
    };
  }

  return {
    get size() {
      return groups.size;
    },

    start(sub) {
      const { connection, id, rootField } = sub;
      let counted = true;
      const forget = () => {
        if (connection.subscriptions.get(id) === channel) connection.subscriptions.delete(id);
        if (counted) metrics?.subscriptions.dec({ root_field: rootField });
        counted = false;
      };
      const channel: Channel<ExecutionResult> = new Channel<ExecutionResult>(() => {
        member.stopOwn?.();
        member.stopOwn = undefined;
        leave(member);
        forget();
        logger.debug({ requestId: connection.requestId, id }, 'subscription ended');
      });
      const member: Member = {
        sub,
        channel,
        prefix: `{"id":${JSON.stringify(id)},"type":"next","payload":`,
        prefixBytes: undefined,
        stopOwn: undefined,
        held: undefined,
        seen: undefined,
        skip: undefined,
        group: undefined,
        forget,
      };
      connection.subscriptions.set(id, channel);
      metrics?.subscriptions.inc({ root_field: rootField });
      // The subscription's span: its context goes to the subgraph (subscribe extensions) and is the parent of each event's.
      const { ctx: traceContext, span } = startSocketSpan(deps.tracing, `subscribe ${rootField}`, sub.extensions, connection.requestId, {
        'graphql.operation.type': 'subscription',
        'graphql.subgraph.name': sub.prepared.primary.serviceName,
      });
      if (sub.shared) {
        const group = groups.get(sub.shared.key) ?? openGroup(sub, sub.shared.key, sub.shared.prepared, traceContext);
        member.group = group;
        if (!sub.resumes) group.members.add(member);
        else {
          group.holding.add(member);
          member.held = [];
          member.seen = new Set();
        }
      }
      if (!sub.shared || sub.resumes) {
        metrics?.subscriptionStreams.inc({ root_field: rootField });
        let own = true;
        const disown = () => {
          if (!own) return false;
          own = false;
          metrics?.subscriptionStreams.dec({ root_field: rootField });
          return true;
        };
        const stop = upstream(sub, sub.prepared, connection.newContext(), traceContext, {
          event: (resolved) => {
            if (own) ownEvent(member, resolved);
          },
          end: (result) => {
            if (!disown()) return;
            member.stopOwn = undefined;
            end(member, result);
          },
        });
        member.stopOwn = () => {
          if (disown()) stop();
        };
      }
      span.end();
      logger.debug(
        { requestId: connection.requestId, id, subgraph: sub.prepared.primary.serviceName, shared: sub.shared !== undefined },
        'subscription started',
      );
      return channel;
    },
  };
}

/** Which callers may share a stream: the same user in the same role, or anyone anonymous. */
export const identityKey = (identity: Identity | null): string => (identity ? `${identity.role}:${identity.userId}` : 'anonymous');

const measureBytes = (result: ExecutionResult) => Buffer.byteLength(JSON.stringify(result));
