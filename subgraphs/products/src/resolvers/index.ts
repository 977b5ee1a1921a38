import { DateTimeScalar } from '@commerce/service-kit';
import type { Resolvers } from '../generated/graphql.ts';
import { Mutation } from './Mutation.ts';
import { Product } from './Product.ts';
import { Query } from './Query.ts';
import { InventoryUpdate, Subscription } from './Subscription.ts';

export const resolvers: Resolvers = { DateTime: DateTimeScalar, Query, Mutation, Subscription, InventoryUpdate, Product };
