import { badUserInput } from '@commerce/service-kit';
import type { CreateProductInput, ProductFilter, UpdateProductInput } from './generated/graphql.ts';

export const SKU_MAX = 64;
export const NAME_MAX = 200;
export const DESCRIPTION_MAX = 2000;
export const PRICE_CENTS_MAX = 100_000_000;
export const STOCK_MAX = 1_000_000;
export const CATEGORY_MAX = 64;
export const SEARCH_MAX = 100;
export const DELTA_MAX = 1_000_000;
/** `stock` and `price_cents` are 32-bit integer columns (GraphQL Int has the same range). */
export const INT_MAX = 2_147_483_647;

const SKU_PATTERN = /^[A-Za-z0-9_-]+$/;
const CURRENCY_PATTERN = /^[A-Z]{3}$/;

// JavaScript counts UTF-16 units and PostgreSQL counts characters, so a string
// that passes these length checks always fits its VARCHAR column.

/** PostgreSQL cannot store NUL in text; refuse it here rather than fail in the driver. */
function text(raw: string, field: string): string {
  if (raw.includes('\u0000')) throw badUserInput('Text must not contain NUL characters', field);
  return raw;
}

/** GraphQL fills in the SDL default when a field is omitted; direct callers may leave it undefined. */
const orDefault = <T>(value: T | null | undefined, fallback: T): T | null => (value === undefined ? fallback : value);

/** An explicit null for a field the database cannot leave empty is a user error, not "no change". */
export function required<T>(value: T | null, field: string): T {
  if (value === null) throw badUserInput(`${field} cannot be null`, field);
  return value;
}

function intInRange(value: number, min: number, max: number, label: string, field: string): number {
  if (!Number.isInteger(value) || value < min || value > max) throw badUserInput(`${label} must be an integer from ${min} to ${max}`, field);
  return value;
}

export function validateSku(raw: string, field = 'sku'): string {
  if (raw.length < 1 || raw.length > SKU_MAX || !SKU_PATTERN.test(raw)) {
    throw badUserInput(`SKU must be 1 to ${SKU_MAX} characters: letters, digits, '-' and '_'`, field);
  }
  return raw;
}

export function validateName(raw: string, field = 'name'): string {
  const name = text(raw, field).trim();
  if (name.length < 1 || name.length > NAME_MAX) throw badUserInput(`Name must be 1 to ${NAME_MAX} characters`, field);
  return name;
}

export function validateDescription(raw: string, field = 'description'): string {
  const description = text(raw, field).trim();
  if (description.length > DESCRIPTION_MAX) throw badUserInput(`Description must be at most ${DESCRIPTION_MAX} characters`, field);
  return description;
}

export const validatePriceCents = (value: number, field = 'priceCents') => intInRange(value, 0, PRICE_CENTS_MAX, 'Price', field);

export function validateCurrency(raw: string, field = 'currency'): string {
  if (!CURRENCY_PATTERN.test(raw)) throw badUserInput('Currency must be three upper-case letters (ISO 4217)', field);
  return raw;
}

export const validateStock = (value: number, field = 'stock') => intInRange(value, 0, STOCK_MAX, 'Stock', field);

export function validateCategory(raw: string, field = 'category'): string {
  const category = text(raw, field).trim();
  if (category.length < 1 || category.length > CATEGORY_MAX) throw badUserInput(`Category must be 1 to ${CATEGORY_MAX} characters`, field);
  return category;
}

export function validateDelta(value: number, field = 'delta'): number {
  if (!Number.isInteger(value) || value === 0 || Math.abs(value) > DELTA_MAX) {
    throw badUserInput(`Delta must be a non-zero integer from -${DELTA_MAX} to ${DELTA_MAX}`, field);
  }
  return value;
}

/** Checks every field before anything is written; returns the data to store. */
export function validateCreateInput(input: CreateProductInput, prefix = 'input') {
  return {
    sku: validateSku(input.sku, `${prefix}.sku`),
    name: validateName(input.name, `${prefix}.name`),
    // Optional fields: omitted takes the SDL default; an explicit null is refused.
    description: validateDescription(required(orDefault(input.description, ''), `${prefix}.description`), `${prefix}.description`),
    priceCents: validatePriceCents(input.priceCents, `${prefix}.priceCents`),
    currency: validateCurrency(input.currency, `${prefix}.currency`),
    stock: validateStock(required(orDefault(input.stock, 0), `${prefix}.stock`), `${prefix}.stock`),
    category: validateCategory(input.category, `${prefix}.category`),
    active: required(orDefault(input.active, true), `${prefix}.active`),
  };
}

/** Only the fields present in the input; `undefined` means "leave unchanged", null is refused. */
export function validateUpdateInput(input: UpdateProductInput, prefix = 'input') {
  const field = (name: keyof UpdateProductInput) => `${prefix}.${name}`;
  const data: {
    name?: string;
    description?: string;
    priceCents?: number;
    currency?: string;
    category?: string;
    active?: boolean;
  } = {};
  if (input.name !== undefined) data.name = validateName(required(input.name, field('name')), field('name'));
  if (input.description !== undefined) data.description = validateDescription(required(input.description, field('description')), field('description'));
  if (input.priceCents !== undefined) data.priceCents = validatePriceCents(required(input.priceCents, field('priceCents')), field('priceCents'));
  if (input.currency !== undefined) data.currency = validateCurrency(required(input.currency, field('currency')), field('currency'));
  if (input.category !== undefined) data.category = validateCategory(required(input.category, field('category')), field('category'));
  if (input.active !== undefined) data.active = required(input.active, field('active'));
  return data;
}

export interface ValidFilter {
  category?: string;
  search?: string;
  minPriceCents?: number;
  maxPriceCents?: number;
  inStock?: boolean;
}

/** Null filter fields mean "no constraint", like omitted ones. */
export function validateFilter(filter: ProductFilter | null | undefined, prefix = 'filter'): ValidFilter {
  if (!filter) return {};
  const valid: ValidFilter = {};
  if (filter.category != null) valid.category = filter.category;
  if (filter.search != null) {
    const search = text(filter.search, `${prefix}.search`).trim();
    if (search.length < 1 || search.length > SEARCH_MAX) throw badUserInput(`Search must be 1 to ${SEARCH_MAX} characters`, `${prefix}.search`);
    valid.search = search;
  }
  if (filter.minPriceCents != null) valid.minPriceCents = intInRange(filter.minPriceCents, 0, INT_MAX, 'minPriceCents', `${prefix}.minPriceCents`);
  if (filter.maxPriceCents != null) valid.maxPriceCents = intInRange(filter.maxPriceCents, 0, INT_MAX, 'maxPriceCents', `${prefix}.maxPriceCents`);
  if (valid.minPriceCents !== undefined && valid.maxPriceCents !== undefined && valid.minPriceCents > valid.maxPriceCents) {
    throw badUserInput('minPriceCents must not be greater than maxPriceCents', `${prefix}.minPriceCents`);
  }
  if (filter.inStock != null) valid.inStock = filter.inStock;
  return valid;
}
