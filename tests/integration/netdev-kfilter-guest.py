#!/usr/bin/env python3
# Plays a compromised guest (or herd-vmm) for netdev-kfilter.sh and
# escape-net.sh: opens the guest's tap queue the way a VMM does and writes
# crafted frames straight into it (no userspace filter anywhere), while a
# second tap on the same bridge sniffs what the bridge delivers.
#
#   netdev-kfilter-guest.py spoof TAP PEER_TAP MAC
#       legitimate frames and spoofed ones (MAC, ARP, IPv4, IPv6, ND, ND
#       behind an extension header, other ethertypes); prints one line per
#       frame "delivered|missing NAME REASON" and exits 1 when a spoofed
#       frame got through or a legitimate one did not.
#   netdev-kfilter-guest.py flood TAP PEER_TAP MAC SECONDS
#       1000-byte IPv4 frames from 10.1.0.5 as fast as possible; prints
#       "sent N delivered_bytes B seconds S".
# The guest's allowed addresses are 10.1.0.5 and fd01::5 (the test's NIC).
import fcntl, os, select, socket, struct, sys, time

TUNSETIFF = 0x400454ca
IFF_TAP, IFF_NO_PI, IFF_MULTI_QUEUE = 0x0002, 0x1000, 0x0100
BCAST = b'\xff' * 6
OTHER = bytes.fromhex('0e9999999999')


def tap_open(name):
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def eth(src, etype, dst=BCAST):
    return dst + src + struct.pack('!H', etype)


def ip4(src, ident, payload, proto=17, dst='10.1.0.9'):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    return h + payload


def udp(sport=1000, dport=2000, data=b'herd-kfilter'):
    return struct.pack('!HHHH', sport, dport, 8 + len(data), 0) + data


def ip6(src, flow, nh, payload, dst='ff02::1'):
    return (struct.pack('!IHBB', (6 << 28) | flow, len(payload), nh, 255) +
            socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) +
            payload)


def arp(sha, spa, tha):
    return struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, sha, socket.inet_aton(spa), tha,
                       socket.inet_aton('10.1.0.9'))


def nd(kind, target, opt_type=None, opt_mac=None, flags=0):
    body = struct.pack('!BBHI', kind, 0, 0, flags) + socket.inet_pton(socket.AF_INET6, target)
    if opt_type:
        body += struct.pack('!BB', opt_type, 1) + opt_mac
    return body


def ll_of(mac):
    m = bytearray(mac)
    return socket.inet_ntop(socket.AF_INET6, bytes([0xfe, 0x80] + [0] * 6 + [m[0] ^ 2, m[1], m[2],
                                                   0xff, 0xfe, m[3], m[4], m[5]]))


def frame_id(f):
    """What identifies a test frame on the far side."""
    et = struct.unpack('!H', f[12:14])[0]
    if et == 0x86dd:
        return ('ip6', struct.unpack('!I', f[14:18])[0] & 0xfffff)
    if et == 0x0800:
        return ('ip4', struct.unpack('!H', f[18:20])[0])
    if et == 0x0806:
        return ('arp', f[14 + 18:14 + 24])
    return ('raw', f[14:20])


def frames(mac):
    ll = ll_of(mac)
    n = [0]

    def fid():
        n[0] += 1
        return n[0]
    out = []  # (name, expected reason or None, frame)

    def add(name, reason, f):
        out.append((name, reason, f))
    i = fid(); add('ipv4-own', None, eth(mac, 0x0800) + ip4('10.1.0.5', 100 + i, udp()))
    i = fid(); add('ipv4-dhcp', None, eth(mac, 0x0800) + ip4('0.0.0.0', 100 + i, udp(68, 67),
                                                            dst='255.255.255.255'))
    add('arp-own', None, eth(mac, 0x0806) + arp(mac, '10.1.0.5', b'\0\0\0\0\0\x01'))
    add('arp-probe', None, eth(mac, 0x0806) + arp(mac, '0.0.0.0', b'\0\0\0\0\0\x02'))
    i = fid(); add('ipv6-own', None, eth(mac, 0x86dd) + ip6('fd01::5', i, 17, udp()))
    i = fid(); add('ipv6-ll', None, eth(mac, 0x86dd) + ip6(ll, i, 17, udp()))
    i = fid(); add('ns-own', None, eth(mac, 0x86dd) + ip6(ll, i, 58, nd(135, 'fd01::9', 1, mac)))
    i = fid(); add('na-own', None, eth(mac, 0x86dd) + ip6('fd01::5', i, 58,
                                                          nd(136, 'fd01::5', 2, mac, 0x20000000)))
    i = fid(); add('ns-dad', None, eth(mac, 0x86dd) + ip6('::', i, 58, nd(135, 'fd01::5')))
    i = fid(); add('rs-own', None, eth(mac, 0x86dd) + ip6(ll, i, 58,
                                                         struct.pack('!BBHI', 133, 0, 0, 0) +
                                                         b'\x01\x01' + mac))
    hbh = struct.pack('!BBBBBBBB', 58, 0, 5, 2, 0, 0, 1, 0)  # router alert, PadN
    i = fid(); add('mld-unspec', None, eth(mac, 0x86dd) + ip6('::', i, 0, hbh +
                                                              struct.pack('!BBHHH', 143, 0, 0, 0, 0)))
    # spoofed
    add('src-mac', 'src_mac', eth(OTHER, 0x0800) + ip4('10.1.0.5', 300, udp()))
    add('arp-sender-mac', 'arp_spoof', eth(mac, 0x0806) + arp(OTHER, '10.1.0.5', b'\0\0\0\0\0\x03'))
    add('arp-sender-ip', 'arp_spoof', eth(mac, 0x0806) + arp(mac, '10.1.0.1', b'\0\0\0\0\0\x04'))
    add('ipv4-src', 'ip4_src', eth(mac, 0x0800) + ip4('10.1.0.6', 301, udp()))
    i = fid(); add('ipv6-src', 'ip6_src', eth(mac, 0x86dd) + ip6('fd01::6', i, 17, udp()))
    i = fid(); add('ipv6-foreign-ll', 'ip6_src', eth(mac, 0x86dd) + ip6('fe80::1', i, 17, udp()))
    i = fid(); add('ipv6-unspec-udp', 'ip6_src', eth(mac, 0x86dd) + ip6('::', i, 17, udp()))
    i = fid(); add('na-router-target', 'nd_spoof', eth(mac, 0x86dd) +
                   ip6('fd01::5', i, 58, nd(136, 'fd01::1', 2, mac, 0x20000000)))
    i = fid(); add('na-foreign-lladdr', 'nd_spoof', eth(mac, 0x86dd) +
                   ip6('fd01::5', i, 58, nd(136, 'fd01::5', 2, OTHER, 0x20000000)))
    i = fid(); add('ns-foreign-lladdr', 'nd_spoof', eth(mac, 0x86dd) +
                   ip6(ll, i, 58, nd(135, 'fd01::9', 1, OTHER)))
    i = fid(); add('ns-dad-foreign', 'nd_spoof', eth(mac, 0x86dd) + ip6('::', i, 58, nd(135, 'fd01::1')))
    dst = struct.pack('!BBBBBBBB', 58, 0, 1, 4, 0, 0, 0, 0)  # destination options, PadN
    i = fid(); add('na-behind-dstopts', 'nd_spoof', eth(mac, 0x86dd) +
                   ip6('fd01::5', i, 60, dst + nd(136, 'fd01::1', 2, OTHER, 0x20000000)))
    frag = struct.pack('!BBHI', 58, 0, 0, 0x1234)  # first (and only) fragment
    i = fid(); add('na-fragmented', 'nd_spoof', eth(mac, 0x86dd) +
                   ip6('fd01::5', i, 44, frag + nd(136, 'fd01::5', 2, mac, 0x20000000)))
    add('ethertype', 'ethertype', eth(mac, 0x88b5) + b'kfeth1' + b'\0' * 40)
    return out


def drain(fd, seen, idle=0.5, limit=10.0):
    end = time.time() + limit
    last = time.time()
    while time.time() < end and time.time() - last < idle:
        r, _, _ = select.select([fd], [], [], 0.1)
        if not r:
            continue
        while True:
            try:
                f = os.read(fd, 65536)
            except BlockingIOError:
                break
            seen(f)
            last = time.time()


def cmd_spoof(tap, peer, mac):
    g, p = tap_open(tap), tap_open(peer)
    time.sleep(0.3)
    drain(p, lambda f: None, idle=0.2, limit=1)
    got = set()
    todo = frames(mac)
    for _, _, f in todo:
        os.write(g, f)
    drain(p, lambda f: got.add(frame_id(f)))
    bad = 0
    for name, reason, f in todo:
        arrived = frame_id(f) in got
        print('%s %s %s' % ('delivered' if arrived else 'missing', name, reason or 'legitimate'))
        if arrived != (reason is None):
            bad += 1
    print('%d frames, %d wrong' % (len(todo), bad))
    return 1 if bad else 0


def cmd_flood(tap, peer, mac, seconds):
    g, p = tap_open(tap), tap_open(peer)
    time.sleep(0.3)
    drain(p, lambda f: None, idle=0.2, limit=1)
    f = eth(mac, 0x0800) + ip4('10.1.0.5', 7, udp(data=b'x' * (1000 - 14 - 28)))
    got = [0]

    def seen(x):
        if len(x) == len(f) and x[6:12] == mac:
            got[0] += len(x)
    sent = 0
    t0 = time.time()
    while time.time() - t0 < seconds:
        for _ in range(64):
            try:
                os.write(g, f)
                sent += 1
            except (BlockingIOError, OSError):
                break
        while True:
            try:
                seen(os.read(p, 65536))
            except BlockingIOError:
                break
    dt = time.time() - t0
    drain(p, seen, idle=0.3, limit=2)
    print('sent %d delivered_bytes %d seconds %.3f' % (sent, got[0], dt))
    return 0


def main(a):
    mac = bytes.fromhex(a[4].replace(':', ''))
    if a[1] == 'spoof':
        return cmd_spoof(a[2], a[3], mac)
    if a[1] == 'flood':
        return cmd_flood(a[2], a[3], mac, float(a[5]))
    return 64


if __name__ == '__main__':
    sys.exit(main(sys.argv))
