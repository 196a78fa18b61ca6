import { BlockList, isIP } from 'node:net';

/**
 * A client address in one spelling, or undefined if `text` is no IP address at all. Behind a trusted proxy
 * the address comes from X-Forwarded-For, which holds whatever the client wrote: text that is no address
 * must never become a session's address or a rate-limit key, or every invented string would be a fresh client.
 */
export function canonicalIp(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const candidate = text.trim();
  const version = isIP(candidate);
  if (version === 4) return candidate;
  if (version !== 6) return undefined;
  const groups = ipv6Groups(candidate);
  // ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket: the same client as a.b.c.d.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return formatIpv6(groups);
}

/**
 * One client, as every per-IP rule counts it (the rate limits, the audit trail's aggregation of failures): an
 * IPv4 address, or the /64 of an IPv6 one, since one subscriber is routinely given a whole /64 and could
 * otherwise take a fresh address for every attempt.
 */
export function ipLimitKey(ip: string | undefined): string {
  const canonical = canonicalIp(ip);
  if (canonical === undefined) return 'unknown';
  if (isIP(canonical) === 4) return canonical;
  return `${formatIpv6([...ipv6Groups(canonical).slice(0, 4), 0, 0, 0, 0])}/64`;
}

// Addresses that are not somewhere on the public internet: this host, this network, private and shared ranges,
// link-local (cloud metadata services answer at 169.254.169.254), documentation, benchmarking, multicast, reserved.
const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) NOT_PUBLIC.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128], ['::1', 128], ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) NOT_PUBLIC.addSubnet(network, prefix, 'ipv6');

/**
 * Whether `address` (an IP address, as a resolver answers) lies outside the public internet: loopback, private,
 * link-local and the other special ranges. An IPv4 address written as IPv6 (::ffff:a.b.c.d, or NAT64's
 * 64:ff9b::a.b.c.d) is judged as the IPv4 address it carries. Text that is no address counts as not public.
 */
export function isNonPublicAddress(address: string): boolean {
  const canonical = canonicalIp(address);
  if (canonical === undefined) return true;
  if (isIP(canonical) === 4) return NOT_PUBLIC.check(canonical, 'ipv4');
  const groups = ipv6Groups(canonical);
  if (groups.slice(0, 6).join(':') === '100:65435:0:0:0:0') {
    return isNonPublicAddress([groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.'));
  }
  return NOT_PUBLIC.check(canonical, 'ipv6');
}

/** The eight 16-bit groups of an address that net.isIP accepted as IPv6. */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const before = head === '' ? [] : head.split(':');
  const after = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? before : [...before, ...Array<string>(8 - before.length - after.length).fill('0'), ...after];
  return groups.map((group) => parseInt(group, 16));
}

/** RFC 5952: lower case, no leading zeros, the longest run of two or more zero groups as `::`. */
function formatIpv6(groups: number[]): string {
  let start = -1;
  let length = 0;
  for (let i = 0; i < groups.length; ) {
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > length && j - i >= 2) {
      start = i;
      length = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (start < 0) return hex.join(':');
  return `${hex.slice(0, start).join(':')}::${hex.slice(start + length).join(':')}`;
}
