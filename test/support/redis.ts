import { Redis } from 'ioredis';

/** Tests use this Redis when TEST_REDIS_URL is set, else the in-process bus. */
export const testRedisUrl = (): string | undefined => process.env.TEST_REDIS_URL || undefined;

/** Deletes every key a test run created under its prefix. */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
