import { describe, expect, it } from 'vitest';
import { NO_TRUSTED_PROXIES, clientAddress, makeTrustedProxies } from './client-address.ts';

describe('clientAddress', () => {
  const proxies = makeTrustedProxies(['10.0.0.0/8', '::1']);

  it('is the peer unless the peer is a trusted proxy, whatever X-Forwarded-For says', () => {
    expect(clientAddress('203.0.113.9', '198.51.100.1', NO_TRUSTED_PROXIES)).toBe('203.0.113.9');
    expect(clientAddress('203.0.113.9', '198.51.100.1', proxies)).toBe('203.0.113.9');
    expect(clientAddress('::ffff:203.0.113.9', undefined, proxies)).toBe('203.0.113.9');
  });

  it('from a trusted proxy, is the nearest forwarded address that is not a trusted proxy', () => {
    expect(clientAddress('10.1.2.3', '198.51.100.1', proxies)).toBe('198.51.100.1');
    // A client-written first hop is not believed: the proxies appended the real one after it.
    expect(clientAddress('10.1.2.3', '6.6.6.6, 198.51.100.1, 10.0.0.5', proxies)).toBe('198.51.100.1');
    expect(clientAddress('::1', ['198.51.100.1', '10.0.0.5'], proxies)).toBe('198.51.100.1');
    expect(clientAddress('10.1.2.3', 'not-an-ip', proxies)).toBe('10.1.2.3');
  });

  it.each(['10.0.0.0/33', 'localhost', '1.2.3.4/8/1', '::1/129'])('refuses the trusted proxy %s', (entry) => {
    expect(() => makeTrustedProxies([entry])).toThrow(/is not an IP address or CIDR range/);
  });
});
