import { badUserInput, isUuid } from '@commerce/service-kit';
import type { OrderLine } from './orderFlow.ts';

export const MAX_LINES = 20;
export const MAX_QUANTITY = 100;
export const MAX_IDEMPOTENCY_KEY = 100;

/** 1 to MAX_LINES lines, each product once (ids lower-cased), quantities 1 to MAX_QUANTITY. */
export function validateLines(items: readonly OrderLine[]): OrderLine[] {
  if (items.length < 1 || items.length > MAX_LINES) throw badUserInput(`An order has 1 to ${MAX_LINES} lines, got ${items.length}`, 'input.items');
  const seen = new Set<string>();
  return items.map((item, i) => {
    if (!isUuid(item.productId)) throw badUserInput('productId is not a valid product id', `input.items.${i}.productId`);
    const productId = item.productId.toLowerCase();
    if (seen.has(productId)) throw badUserInput('Each product may appear once; merge the lines', `input.items.${i}.productId`);
    seen.add(productId);
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_QUANTITY) {
      throw badUserInput(`quantity must be 1 to ${MAX_QUANTITY}`, `input.items.${i}.quantity`);
    }
    return { productId, quantity: item.quantity };
  });
}

/** Required, trimmed, at most MAX_IDEMPOTENCY_KEY characters. */
export function validateIdempotencyKey(key: string | null | undefined): string {
  const trimmed = key?.trim() ?? '';
  if (trimmed.length === 0) throw badUserInput('idempotencyKey is required and must not be blank', 'idempotencyKey');
  if (trimmed.length > MAX_IDEMPOTENCY_KEY) throw badUserInput(`idempotencyKey must be at most ${MAX_IDEMPOTENCY_KEY} characters`, 'idempotencyKey');
  return trimmed;
}
