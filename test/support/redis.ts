/** Tests use this Redis when TEST_REDIS_URL is set, else the in-process bus. */
export const testRedisUrl = (): string | undefined => process.env.TEST_REDIS_URL || undefined;

export { deleteRedisKeys } from '@commerce/service-kit/testing';
