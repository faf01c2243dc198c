// Which address a request counts against (server/client-address.ts): the TCP peer, or behind
// trusted proxies the right-most address in X-Forwarded-For that is not one of them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientAddressOf, normaliseAddress, trustedProxySet } from '../../server/client-address.ts';
import { configFromEnv } from '../../server/config.ts';

const proxies = trustedProxySet(['10.0.0.1', '10.0.0.2', '::1']);

describe('clientAddressOf', () => {
  it('is the peer when the peer is not a trusted proxy, whatever the header says', () => {
    expect(clientAddressOf('192.0.2.7', '203.0.113.5', proxies)).toBe('192.0.2.7');
    expect(clientAddressOf('192.0.2.7', undefined, trustedProxySet([]))).toBe('192.0.2.7');
    expect(clientAddressOf(undefined, '203.0.113.5', proxies)).toBe('unknown');
  });

  it('is the right-most untrusted entry behind trusted proxies', () => {
    expect(clientAddressOf('10.0.0.1', '203.0.113.5', proxies)).toBe('203.0.113.5');
    expect(clientAddressOf('10.0.0.1', '1.2.3.4, 203.0.113.5, 10.0.0.2', proxies)).toBe('203.0.113.5');
    // Several headers are one list, in order.
    expect(clientAddressOf('10.0.0.1', ['1.2.3.4', '203.0.113.5,10.0.0.2'], proxies)).toBe('203.0.113.5');
    expect(clientAddressOf('::1', '2001:DB8::5', proxies)).toBe('2001:db8::5');
  });

  it('stops at the last trusted hop on an entry that is not an address, or with no header', () => {
    expect(clientAddressOf('10.0.0.1', undefined, proxies)).toBe('10.0.0.1');
    expect(clientAddressOf('10.0.0.1', '203.0.113.5, garbage', proxies)).toBe('10.0.0.1');
    expect(clientAddressOf('10.0.0.1', '203.0.113.5:4431', proxies)).toBe('10.0.0.1');
    expect(clientAddressOf('10.0.0.1', 'garbage, 10.0.0.2', proxies)).toBe('10.0.0.2');
    expect(clientAddressOf('10.0.0.1', '', proxies)).toBe('10.0.0.1');
    // Every hop trusted: the left-most one.
    expect(clientAddressOf('10.0.0.1', '10.0.0.2', proxies)).toBe('10.0.0.2');
  });

  it('treats an IPv4 peer on a dual-stack socket as the IPv4 address', () => {
    expect(normaliseAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(clientAddressOf('::ffff:10.0.0.1', '203.0.113.5', proxies)).toBe('203.0.113.5');
    expect(clientAddressOf('::ffff:192.0.2.1', '203.0.113.5', proxies)).toBe('192.0.2.1');
  });

  it('property: a client behind any chain of trusted proxies is found, whatever it wrote itself', () => {
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
    const trusted = ['10.0.0.1', '10.0.0.2'];
    fc.assert(
      fc.property(
        fc.array(fc.oneof(v4, fc.string({ maxLength: 12 }).filter((s) => !s.includes(','))), { maxLength: 4 }),
        v4.filter((a) => !trusted.includes(a)),
        fc.array(fc.constantFrom(...trusted), { maxLength: 3 }),
        fc.constantFrom(...trusted),
        (forged, client, chain, peer) => {
          const header = [...forged, client, ...chain].join(', ');
          expect(clientAddressOf(peer, header, proxies)).toBe(client);
        },
      ),
    );
  });
});

describe('TRUSTED_PROXIES', () => {
  it('is read from the environment, and an entry that is not an address is refused', () => {
    expect(configFromEnv({ TRUSTED_PROXIES: ' 10.0.0.1, ::1 ' }, null).trustedProxies).toEqual(['10.0.0.1', '::1']);
    expect(configFromEnv({}, null).trustedProxies).toEqual([]);
    expect(() => trustedProxySet(['10.0.0.1', 'proxy.local'])).toThrow(/TRUSTED_PROXIES: "proxy.local" is not an IP address/);
  });
});
