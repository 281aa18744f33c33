#!/usr/bin/env python3
"""Writes the small, deterministic seed inputs of the fuzz targets that are
not plain text or qemu-img images: tests/fuzz/corpus/boot/ (PVH ELF and
bzImage kernels behind the harness's 8-byte control prefix) and
tests/fuzz/corpus/netfilter/ (Ethernet frames behind the filter settings).
The files it writes are committed; run it again only to change them:
    python3 tests/fuzz/gen-seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- boot ----------------------------------------------------------------
def control(ram_sel, flags, cmdline, initrd_size):
    return struct.pack("<BBH", ram_sel, flags, len(cmdline)) + \
        struct.pack("<I", initrd_size)[:3] + b"\0"


def pvh_elf(entry=0x100000, paddr=0x100000, filesz=0x40, memsz=0x1000, desc8=False):
    note_desc = struct.pack("<Q" if desc8 else "<I", entry)
    note = struct.pack("<III", 4, len(note_desc), 18) + b"Xen\0" + note_desc
    ehsize, phentsize, phnum = 64, 56, 2
    phoff = ehsize
    data_off = phoff + phnum * phentsize
    note_off = data_off + filesz
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    eh = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, phoff, 0, 0, ehsize,
                             phentsize, phnum, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 7, data_off, paddr, paddr, filesz, memsz, 0x1000)
    pnote = struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(note), len(note), 4)
    code = bytes([0xf4] * filesz)  # hlt
    return eh + load + pnote + code + note


def bzimage(version=0x020f, setup_sects=1, kernel_size=0x400, init_size=0x10000,
            cmdline_size=2048, initrd_addr_max=0x7fffffff):
    setup = bytearray(((setup_sects or 4) + 1) * 512)
    setup[0x1f1] = setup_sects
    struct.pack_into("<H", setup, 0x1fe, 0xAA55)
    setup[0x200] = 0xeb
    setup[0x201] = 0x6a  # jump over the header: it ends at 0x26c
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = 0x01  # LOADED_HIGH
    struct.pack_into("<I", setup, 0x22c, initrd_addr_max)
    struct.pack_into("<I", setup, 0x230, 0x200000)  # kernel_alignment
    setup[0x234] = 1  # relocatable
    struct.pack_into("<H", setup, 0x236, 0x1)  # XLF_KERNEL_64
    struct.pack_into("<I", setup, 0x238, cmdline_size)
    struct.pack_into("<I", setup, 0x260, init_size)
    kernel = bytes([0x90] * (kernel_size - 1)) + b"\xf4"
    return bytes(setup) + kernel


CMD = b"console=ttyS0 reboot=k panic=-1"
write("boot", "pvh-initrd", control(0, 0, CMD, 4096) + pvh_elf() + CMD)
write("boot", "pvh-noinitrd-null-cmdline", control(1, 2 | 1, b"", 0) + pvh_elf(desc8=True))
write("boot", "pvh-bss-rsdp", control(2, 4, CMD, 100000) +
      pvh_elf(entry=0x200010, paddr=0x200000, memsz=0x300000) + CMD)
write("boot", "bzimage-initrd", control(0, 0, CMD, 8192) + bzimage() + CMD)
write("boot", "bzimage-old-protocol", control(1, 1, b"quiet", 0) +
      bzimage(version=0x020c, setup_sects=0, init_size=0) + b"quiet")
write("boot", "bzimage-big-init", control(3, 4, CMD, 65536) +
      bzimage(init_size=0x800000, initrd_addr_max=0xffffff) + CMD)


# ---- netfilter -------------------------------------------------------------
MAC = bytes([0x0e, 0x11, 0x22, 0x33, 0x44, 0x55])
BCAST = b"\xff" * 6
OTHER = bytes([0x0e, 0x99, 0x99, 0x99, 0x99, 0x99])
IP4 = bytes([10, 0, 0, 5])
IP6 = bytes.fromhex("fd000000000000000000000000000005")
LL6 = bytes.fromhex("fe80000000000000" "0c11 22ff fe33 4455".replace(" ", ""))


def filt(flags, ips):
    out = bytes([flags | (len(ips) << 4)]) + MAC
    for ip in ips:
        out += bytes([1 if len(ip) == 16 else 0]) + ip
    return out


def eth(dst, src, etype, payload, vlans=()):
    h = dst + src
    for tpid, tci in vlans:
        h += struct.pack(">HH", tpid, tci)
    return h + struct.pack(">H", etype) + payload


def arp(sha, spa, tpa):
    return struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + sha + spa + bytes(6) + tpa


def ip4(src, dst, proto, payload):
    h = struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0) + src + dst
    return h + payload


def udp(sport, dport, payload=b""):
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def ip6(src, dst, nh, payload):
    return struct.pack(">IHBB", 0x60000000, len(payload), nh, 255) + src + dst + payload


def icmp6_nd(typ, target, opt_type, lladdr):
    body = struct.pack(">BBHI", typ, 0, 0, 0x60000000 if typ == 136 else 0) + target
    return body + bytes([opt_type, 1]) + lladdr


ALLOW = [IP4, IP6]
write("netfilter", "arp-ok", filt(0, ALLOW) + eth(BCAST, MAC, 0x0806, arp(MAC, IP4, bytes([10, 0, 0, 1]))))
write("netfilter", "arp-spoof", filt(0, ALLOW) + eth(BCAST, MAC, 0x0806, arp(MAC, bytes([10, 0, 0, 9]), IP4)))
write("netfilter", "arp-probe", filt(0, ALLOW) + eth(BCAST, MAC, 0x0806, arp(MAC, bytes(4), IP4)))
write("netfilter", "ip4-udp", filt(0, ALLOW) + eth(OTHER, MAC, 0x0800, ip4(IP4, bytes([10, 0, 0, 1]), 17, udp(1234, 53, b"q"))))
write("netfilter", "ip4-dhcp", filt(0, ALLOW) + eth(BCAST, MAC, 0x0800, ip4(bytes(4), b"\xff" * 4, 17, udp(68, 67, bytes(16)))))
write("netfilter", "ip4-vlan-qinq", filt(0, ALLOW) + eth(OTHER, MAC, 0x0800, ip4(IP4, bytes([10, 0, 0, 1]), 6, bytes(20)),
                                                       vlans=((0x88a8, 10), (0x8100, 20))))
write("netfilter", "ip6-ns", filt(0, ALLOW) + eth(bytes.fromhex("3333ff000005"), MAC, 0x86dd,
                                                 ip6(LL6, bytes.fromhex("ff0200000000000000000001ff000005"), 58,
                                                     icmp6_nd(135, IP6, 1, MAC))))
write("netfilter", "ip6-na", filt(0, ALLOW) + eth(bytes.fromhex("333300000001"), MAC, 0x86dd,
                                                 ip6(IP6, bytes.fromhex("ff020000000000000000000000000001"), 58,
                                                     icmp6_nd(136, IP6, 2, MAC))))
write("netfilter", "ip6-dad", filt(0, ALLOW) + eth(bytes.fromhex("3333ff000005"), MAC, 0x86dd,
                                                  ip6(bytes(16), bytes.fromhex("ff0200000000000000000001ff000005"), 58,
                                                      icmp6_nd(135, IP6, 1, MAC)[:24])))
write("netfilter", "ip6-hbh-mld", filt(0, ALLOW) + eth(bytes.fromhex("333300000016"), MAC, 0x86dd,
                                                      ip6(bytes(16), bytes.fromhex("ff020000000000000000000000000016"), 0,
                                                          bytes([58, 0, 5, 2, 0, 0, 1, 0]) + bytes([143, 0, 0, 0, 0, 0, 0, 0]))))
write("netfilter", "unrestricted-other-type", filt(1, []) + eth(MAC, MAC, 0x88cc, bytes(30)))
write("netfilter", "restricted-empty-rx", filt(2, []) + eth(OTHER, OTHER, 0x0800, ip4(IP4, IP4, 1, bytes(8))))


# ---- snapshot ---------------------------------------------------------------
# fuzz_snapshot's input: a mode byte (bit 0: the harness recomputes both
# CRCs), the 144-byte header, then the state (include/herd/snapshot.h).
def snap_section(typ, index, payload):
    return struct.pack("<IIQ", typ, index, len(payload)) + payload + bytes(-len(payload) % 8)


def snap_input(sections, ram_size=4096, mode=1):
    import zlib
    state = b"".join(snap_section(*s) for s in sections)
    ram_off = max(2 << 20, (4096 + len(state) + (2 << 20) - 1) // (2 << 20) * (2 << 20))
    head = struct.pack("<8sIIQQIIQQQ32s40sI", b"HERDSNAP", 1, 144, 4096, len(state),
                       zlib.crc32(state), len(sections), ram_off, ram_size, ram_off + ram_size,
                       b"herd-vmm seed", bytes(40), 0)
    head += struct.pack("<I", zlib.crc32(head + bytes(4)))
    return bytes([mode]) + head + state


CONFIG = struct.pack("<IIIIQ", 1, 1, 0, 0, 64 << 20) + bytes(64 + 64)
write("snapshot", "three-sections", snap_input([(1, 0, CONFIG), (15, 0, bytes(92)), (2, 0, bytes(144))]))
write("snapshot", "empty-state", snap_input([]))
write("snapshot", "odd-lengths", snap_input([(6, 0, bytes(16 * 3)), (18, 3, bytes(256)), (11, 0, bytes(40 * 2 + 1))]))
