/** What onSubscribe hands to execute() and subscribe() as the context value: an operation on one connection. */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Connection } from './connection.ts';
import type { FederatedSubscription } from './federated.ts';
import { rootFieldOf } from './observe.ts';
import type { PreparedSubscription, SubscriptionPlanner } from './planner.ts';
import type { OperationRequest } from './server-options.ts';

/** A query or mutation received over the socket. */
export class SocketOperation {
  constructor(
    readonly connection: Connection,
    readonly request: OperationRequest,
  ) {}
}

export class PlannedSubscription implements FederatedSubscription {
  readonly rootField: string;

  constructor(
    readonly connection: Connection,
    readonly id: string,
    readonly prepared: PreparedSubscription,
    readonly shared: FederatedSubscription['shared'],
    readonly resumes: boolean,
    readonly planner: SubscriptionPlanner,
    readonly extensions: Record<string, unknown> | undefined,
  ) {
    this.rootField = rootFieldOf(prepared);
  }
}

/** An error Apollo Server already formatted; graphql-ws serialises it with toJSON(). */
export class FormattedError extends GraphQLError {
  readonly #formatted: GraphQLFormattedError;

  constructor(formatted: GraphQLFormattedError) {
    super(formatted.message, { ...(formatted.path ? { path: formatted.path } : {}), extensions: formatted.extensions ?? {} });
    this.#formatted = formatted;
  }

  override toJSON(): GraphQLFormattedError {
    return this.#formatted;
  }
}
