/**
 * The client's IP address: the TCP peer, unless the peer is a trusted proxy; then the nearest
 * address in `X-Forwarded-For` (read right to left) that is not one. A client can write anything
 * into that header, so it is never read from untrusted peers.
 */
import { BlockList, isIP } from 'node:net';

export type TrustedProxies = (address: string) => boolean;

/** No proxy is trusted: the peer address is the client's. */
export const NO_TRUSTED_PROXIES: TrustedProxies = () => false;

/** A matcher for IPs and CIDRs ("10.0.0.0/8", "::1"); a TypeError names an entry that is neither. */
export function makeTrustedProxies(entries: readonly string[]): TrustedProxies {
  if (entries.length === 0) return NO_TRUSTED_PROXIES;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix, ...rest] = entry.trim().split('/');
    const family = isIP(address);
    const bits = prefix === undefined ? undefined : Number(prefix);
    const maxBits = family === 6 ? 128 : 32;
    if (family === 0 || rest.length > 0 || (bits !== undefined && !(Number.isInteger(bits) && bits >= 0 && bits <= maxBits))) {
      throw new TypeError(`trusted proxy ${JSON.stringify(entry)} is not an IP address or CIDR range`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, bits, type);
  }
  return (address) => {
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/** `::ffff:1.2.3.4` (an IPv4 peer on a dual-stack socket) is 1.2.3.4. */
const normalise = (address: string): string => (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address);

export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
  const direct = normalise(peer ?? 'unknown');
  if (!trusted(direct) || forwardedFor === undefined) return direct;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((s) => normalise(s.trim()))
    .filter((s) => isIP(s) !== 0);
  // The rightmost hops were added by our own proxies; the first one that is not ours is the client.
  for (let i = hops.length - 1; i >= 0; i--) if (!trusted(hops[i]!)) return hops[i]!;
  return hops[0] ?? direct;
}
