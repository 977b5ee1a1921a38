import { DateTimeScalar } from '@commerce/service-kit';
import type { Resolvers } from '../generated/graphql.ts';
import { Mutation } from './Mutation.ts';
import { Order } from './Order.ts';
import { OrderItem } from './OrderItem.ts';
import { Query } from './Query.ts';
import { User } from './User.ts';
import { OrderUpdate, Subscription } from './Subscription.ts';

export const resolvers: Resolvers = { DateTime: DateTimeScalar, Query, Mutation, Subscription, OrderUpdate, Order, OrderItem, User };
