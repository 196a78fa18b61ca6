import { describe, expect, it } from 'vitest';
import { isNonPublicAddress } from '../../src/kernel/ip-addresses.js';

describe('isNonPublicAddress (where a webhook may not go unless private networks are allowed)', () => {
  it('finds loopback, private, link-local and the other special ranges, in every spelling', () => {
    for (const address of [
      '127.0.0.1', '127.255.255.254', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1',
      '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1', '192.0.2.1',
      '::1', '::', 'fe80::1', 'fd12:3456::1', 'fc00::1', 'ff02::1', '2001:db8::1',
      // IPv4 carried in IPv6: judged as the address it carries.
      '::ffff:127.0.0.1', '::ffff:10.1.2.3', '64:ff9b::a9fe:a9fe', '0:0:0:0:0:ffff:7f00:1',
      'not an address', '',
    ]) {
      expect(isNonPublicAddress(address), address).toBe(true);
    }
  });

  it('lets public addresses through', () => {
    for (const address of ['1.1.1.1', '8.8.8.8', '172.32.0.1', '192.169.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808']) {
      expect(isNonPublicAddress(address), address).toBe(false);
    }
  });
});
