/** A span per root field (Query, Mutation, and `_entities` for entity references), as graphql-middleware, so the field's statements nest under it. */
import type { Tracer } from '@opentelemetry/api';
import type { IMiddlewareFunction, IMiddlewareTypeMap } from 'graphql-middleware';
import { inSpan } from './tracing.ts';

export function rootFieldSpans(tracer: Tracer): IMiddlewareTypeMap {
  const resolver: IMiddlewareFunction = (resolve, root, args, ctx, info) => {
    const field = `${info.parentType.name}.${info.fieldName}`;
    return inSpan(tracer, field, { 'graphql.field.path': field }, () => Promise.resolve(resolve(root, args, ctx, info)));
  };
  return { Query: resolver, Mutation: resolver };
}
