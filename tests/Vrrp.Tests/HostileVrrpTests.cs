using System.Buffers.Binary;
using System.Net;
using Lb.Tests;
using Xunit;
using Xunit.Abstractions;
using static Lb.Vrrp.Tests.KeepalivedVectors;

namespace Lb.Vrrp.Tests;

/// <summary>
/// Issue 8, hostile VRRP: real keepalived advertisements (IP header included) mutated every way RFC 5798 §7.1 /
/// RFC 3768 §7.1 says a receiver must check — TTL, version, type, VRID, checksum, address count and list,
/// interval, authentication, length, own source, non-VRRP IP — plus random bytes, each fed through the router's
/// receive path (<see cref="IpPacket.TryParse"/> as the raw socket does, then <see cref="ReceivePath.Accept"/>,
/// then the state machine for whatever it accepts). Every one must be dropped, counted under the reason the RFC
/// check names, and leave a backup and a master exactly as they were; the unmutated packets are accepted before
/// and after, so the receiver was listening all along.
/// </summary>
public sealed class HostileVrrpTests(ITestOutputHelper output)
{
    /// <summary>A real advertisement and the receiver that accepts it: same version, VRID, addresses, interval, auth.</summary>
    private sealed record Base(string Name, byte[] Ip, IpPacket Packet, VrrpPacket Advert, ExpectedInstance Expected)
    {
        public int HeaderLength => Ip.Length - Packet.Payload.Length;
        public bool IsV6 => Ip[0] >> 4 == 6;
        public int TtlOffset => IsV6 ? 7 : 8;
    }

    private static Base BaseOf(string name, string hex)
    {
        var ip = Bytes(hex);
        var packet = IpPacket.TryParse(ip) ?? throw new InvalidDataException($"{name}: not an IP packet");
        var advert = VrrpCodec.TryDecode(packet.Payload.Span, packet.Info.Source, packet.Info.Destination).Packet
                     ?? throw new InvalidDataException($"{name}: does not decode");
        // Our own address: on the same network as the sender, never the sender (that would be OwnPacket).
        var local = packet.Info.Source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            ? IPAddress.Parse("10.99.0.13") : IPAddress.Parse("fe80::13");
        var expected = new ExpectedInstance(advert.Version, advert.Vrid, advert.Addresses,
            advert.Version == VrrpVersion.V2 ? (byte)advert.MaxAdvertInterval : (byte)0, advert.Auth, advert.AuthData, local);
        return new Base(name, ip, packet, advert, expected);
    }

    private static readonly Base[] Bases =
    [
        BaseOf("v2 PASS lb1", V2AuthIp),
        BaseOf("v2 PASS lb2", V2Lb2Ip),
        BaseOf("v2 no auth", V2NoAuthIp),
        BaseOf("v3 IPv4", V3Ip),
        BaseOf("v3 IPv6", V3Ipv6Ip),
    ];

    /// <summary>One hostile datagram and the reason the receiver must count it under.</summary>
    private sealed record Case(string What, byte[] Ip, DropReason Reason);

    // ---- Mutations of one real advertisement ------------------------------------------------------------

    /// <summary>A copy of the datagram with its VRRP payload changed by <paramref name="edit"/>, and, when
    /// <paramref name="fixChecksum"/>, the VRRP checksum made right again (so a later check is what must fire).</summary>
    private static byte[] WithPayload(Base b, Action<byte[]> edit, bool fixChecksum)
    {
        var payload = b.Packet.Payload.ToArray();
        edit(payload);
        if (fixChecksum)
        {
            var version = payload[0] >> 4 == 3 ? VrrpVersion.V3 : VrrpVersion.V2;
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(6),
                Checksum.Compute(payload, version, b.Packet.Info.Source, b.Packet.Info.Destination));
        }
        return Reassemble(b, payload);
    }

    /// <summary>The IP header of <paramref name="b"/> around a new payload, its length field updated.</summary>
    private static byte[] Reassemble(Base b, byte[] payload)
    {
        var ip = new byte[b.HeaderLength + payload.Length];
        b.Ip.AsSpan(0, b.HeaderLength).CopyTo(ip);
        payload.CopyTo(ip, b.HeaderLength);
        if (b.IsV6) BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(4), (ushort)payload.Length);
        else BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(2), (ushort)ip.Length);
        return ip;
    }

    private static byte[] WithIp(Base b, Action<byte[]> edit)
    {
        var ip = (byte[])b.Ip.Clone();
        edit(ip);
        return ip;
    }

    private static IEnumerable<Case> Mutations(Base b)
    {
        var v2 = b.Advert.Version == VrrpVersion.V2;
        var n = b.Name;

        // RFC 5798 §7.1: "MUST verify that the IP TTL is 255".
        for (var ttl = 0; ttl < 255; ttl++)
        {
            var t = (byte)ttl;
            yield return new($"{n}: TTL {ttl}", WithIp(b, ip => ip[b.TtlOffset] = t), DropReason.BadTtl);
        }

        // Truncated at every length, IP header included: not a whole IP packet, counted as truncated.
        for (var length = 0; length < b.Ip.Length; length++)
            yield return new($"{n}: cut to {length} bytes", b.Ip[..length], DropReason.Truncated);

        // Not VRRP at the IP layer (another protocol; an IPv4 fragment): never parsed as VRRP.
        yield return new($"{n}: IP protocol 17", WithIp(b, ip => ip[b.IsV6 ? 6 : 9] = 17), DropReason.Truncated);
        if (!b.IsV6)
            yield return new($"{n}: IPv4 fragment", WithIp(b, ip => ip[6] |= 0x20), DropReason.Truncated);

        // Our own advertisement looped back.
        if (!b.IsV6)
            yield return new($"{n}: from our own address", WithIp(b, ip => b.Expected.LocalAddress!.TryWriteBytes(ip.AsSpan(12), out _)), DropReason.OwnPacket);

        // RFC 5798 §5.2.1: version 2 or 3 only; the other of the two no longer fits the packet's length or family.
        for (var version = 0; version < 16; version++)
        {
            var v = version;
            if (v == (int)b.Advert.Version) continue;
            var reason = v switch
            {
                2 when b.IsV6 => DropReason.BadAddressFamily, // RFC 3768: VRRPv2 is IPv4 only
                2 => DropReason.Truncated, // v2 announces 8 more octets of authentication data
                3 => DropReason.AddressCountMismatch, // v3 has no authentication data: 8 octets too many
                _ => DropReason.BadVersion,
            };
            foreach (var fix in new[] { false, true })
                yield return new($"{n}: version {v}{(fix ? " (checksum fixed)" : "")}",
                    WithPayload(b, p => p[0] = (byte)((v << 4) | (p[0] & 0x0F)), fix), reason);
        }

        // RFC 5798 §5.2.2: type 1 (ADVERTISEMENT) only.
        for (var type = 0; type < 16; type++)
        {
            if (type == 1) continue;
            var t = type;
            yield return new($"{n}: type {t}", WithPayload(b, p => p[0] = (byte)((p[0] & 0xF0) | t), fixChecksum: true), DropReason.BadType);
        }

        // RFC 5798 §7.1: VRID 0 is invalid; another VRID "MUST discard"; unfixed, the checksum fails first.
        for (var vrid = 0; vrid < 256; vrid++)
        {
            if (vrid == b.Advert.Vrid) continue;
            var id = (byte)vrid;
            yield return new($"{n}: VRID {vrid}", WithPayload(b, p => p[1] = id, fixChecksum: true),
                vrid == 0 ? DropReason.BadVrid : DropReason.UnknownVrid);
            if (vrid != 0)
                yield return new($"{n}: VRID {vrid}, stale checksum", WithPayload(b, p => p[1] = id, fixChecksum: false), DropReason.BadChecksum);
        }

        // Every other checksum value (one's complement: 0x0000 and 0xFFFF are the same sum, both verify).
        var sum = BinaryPrimitives.ReadUInt16BigEndian(b.Packet.Payload.Span[6..]);
        for (var c = 0; c < 0x10000; c += 97)
        {
            var value = (ushort)(c ^ 0x5A5A);
            if (value == sum || (value ^ sum) == 0xFFFF && (value == 0 || sum == 0)) continue;
            yield return new($"{n}: checksum {value:x4}",
                WithPayload(b, p => BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(6), value), fixChecksum: false), DropReason.BadChecksum);
        }

        // A single flipped bit anywhere in the priority, addresses or auth data: only the checksum tells.
        for (var bit = 0; bit < (b.Packet.Payload.Length - 8) * 8 + 8; bit++)
        {
            var at = bit < 8 ? 2 : 8 + (bit - 8) / 8;
            var mask = (byte)(1 << (bit % 8));
            yield return new($"{n}: bit {bit % 8} of byte {at} flipped", WithPayload(b, p => p[at] ^= mask, fixChecksum: false), DropReason.BadChecksum);
        }

        // RFC 5798 §7.1: the length must match the address count: more addresses announced than sent, or fewer.
        for (var count = 0; count < 256; count++)
        {
            if (count == b.Advert.Addresses.Count) continue;
            var k = (byte)count;
            yield return new($"{n}: address count {count}", WithPayload(b, p => p[3] = k, fixChecksum: true),
                count > b.Advert.Addresses.Count ? DropReason.Truncated : DropReason.AddressCountMismatch);
        }
        foreach (var extra in new[] { 1, 3, 4, 16, 200 })
            yield return new($"{n}: {extra} trailing bytes",
                Reassemble(b, [.. b.Packet.Payload.ToArray(), .. new byte[extra]]), DropReason.AddressCountMismatch);

        // RFC 3768 §7.1: a non-owner whose address list differs is misconfigured: MUST drop.
        for (var i = 0; i < 20; i++)
        {
            var last = 8 + (b.Advert.Addresses[0].GetAddressBytes().Length - 1);
            var delta = (byte)(i + 1);
            yield return new($"{n}: virtual address +{delta}", WithPayload(b, p => p[last] += delta, fixChecksum: true), DropReason.AddressListMismatch);
        }

        // Interval: 0 is never valid; v2 must match ours exactly (RFC 3768 §7.1), v3 learns the master's instead.
        if (v2)
        {
            for (var interval = 0; interval < 256; interval++)
            {
                if (interval == b.Advert.MaxAdvertInterval) continue;
                var i = (byte)interval;
                yield return new($"{n}: v2 interval {interval}", WithPayload(b, p => p[5] = i, fixChecksum: true), DropReason.BadInterval);
            }
        }
        else
        {
            yield return new($"{n}: v3 interval 0", WithPayload(b, p => { p[4] &= 0xF0; p[5] = 0; }, fixChecksum: true), DropReason.BadInterval);
        }

        // v2 authentication (RFC 3768 §5.3.6, RFC 2338 §5.3.6.1): unknown type, another type, another password.
        if (v2)
        {
            for (var auth = 0; auth < 256; auth++)
            {
                if (auth == (int)b.Advert.Auth) continue;
                var a = (byte)auth;
                yield return new($"{n}: auth type {auth}", WithPayload(b, p => p[4] = a, fixChecksum: true), DropReason.BadAuthType);
            }
            if (b.Advert.Auth == AuthType.SimpleText)
                for (var i = 0; i < VrrpPacket.V2AuthDataLength; i++)
                {
                    var at = b.Packet.Payload.Length - VrrpPacket.V2AuthDataLength + i;
                    yield return new($"{n}: password byte {i} changed", WithPayload(b, p => p[at] ^= 0x20, fixChecksum: true), DropReason.AuthMismatch);
                }
        }
    }

    /// <summary>Random bytes, bare or behind a valid IPv4 VRRP header (TTL 255, protocol 112), from a fixed seed.</summary>
    private static IEnumerable<Case> RandomDatagrams(int count, int seed)
    {
        var random = new Random(seed);
        var header = Bases[0].Ip[..20];
        for (var i = 0; i < count; i++)
        {
            var body = new byte[random.Next(0, 120)];
            random.NextBytes(body);
            if (i % 2 == 0)
            {
                yield return new($"random {body.Length} bytes #{i}", body, DropReason.None);
                continue;
            }
            var ip = new byte[20 + body.Length];
            header.CopyTo(ip, 0);
            body.CopyTo(ip, 20);
            BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(2), (ushort)ip.Length);
            yield return new($"random {body.Length}-byte VRRP payload #{i}", ip, DropReason.None);
        }
    }

    /// <summary>A backup (priority 100, hears lb1's 150) and a master (priority 200) of the base's virtual router.</summary>
    private static (StateMachine BackupMachine, VrrpState Backup, StateMachine MasterMachine, VrrpState Master) Receivers(Base b)
    {
        var interval = b.Advert.Interval;
        var backupMachine = new StateMachine(new ElectionConfig(b.Advert.Version, 100, interval, b.Expected.LocalAddress!));
        var backup = backupMachine.Step(backupMachine.Initial, new VrrpEvent.Startup(), TimeSpan.Zero).State;
        var masterMachine = new StateMachine(new ElectionConfig(b.Advert.Version, 200, interval, b.Expected.LocalAddress!));
        var master = masterMachine.Step(masterMachine.Initial, new VrrpEvent.Startup(), TimeSpan.Zero).State;
        master = masterMachine.Step(master, new VrrpEvent.Tick(), master.MasterDownAt!.Value).State;
        Assert.Equal(VrrpRole.Backup, backup.Role);
        Assert.Equal(VrrpRole.Master, master.Role);
        return (backupMachine, backup, masterMachine, master);
    }

    /// <summary>The receive path as the router runs it: parse the IP datagram, validate, count; step on what is accepted.</summary>
    private static (DropReason Reason, VrrpState After) Receive(byte[] datagram, Base b, DropCounters drops, StateMachine machine, VrrpState state, TimeSpan now)
    {
        var (advert, reason) = ReceivePath.Accept(IpPacket.TryParse(datagram), b.Expected, drops);
        return (reason, advert is null ? state : machine.Step(state, advert, now).State);
    }

    [Fact]
    public void Mutated_real_advertisements_and_random_bytes_are_dropped_counted_by_reason_and_change_no_state()
    {
        var drops = new DropCounters();
        var expectedCounts = new Dictionary<DropReason, long>();
        long cases = 0, accepted = 0;
        var now = TimeSpan.FromMilliseconds(500);
        foreach (var b in Bases)
        {
            var (machine, backup, masterMachine, master) = Receivers(b);
            // The real advertisement is accepted: the receiver is not simply refusing everything.
            var (reason, _) = Receive(b.Ip, b, drops, machine, backup, now);
            Assert.Equal(DropReason.None, reason);
            accepted++;

            var hostile = Mutations(b).Concat(RandomDatagrams(1000, seed: b.Name.Length * 7919)).ToList();
            foreach (var c in hostile)
            {
                var (backupReason, backupAfter) = Receive(c.Ip, b, drops, machine, backup, now);
                var (masterReason, masterAfter) = Receive(c.Ip, b, drops, masterMachine, master, now);
                Assert.True(backupReason != DropReason.None, $"{c.What}: accepted ({Convert.ToHexString(c.Ip)})");
                if (c.Reason != DropReason.None)
                    Assert.True(c.Reason == backupReason, $"{c.What}: dropped as {backupReason}, expected {c.Reason} ({Convert.ToHexString(c.Ip)})");
                Assert.Equal(backupReason, masterReason);
                Assert.Equal(backup, backupAfter);
                Assert.Equal(master, masterAfter);
                expectedCounts[backupReason] = expectedCounts.GetValueOrDefault(backupReason) + 2;
                cases++;
            }

            Assert.Equal(DropReason.None, Receive(b.Ip, b, drops, machine, backup, now).Reason);
            accepted++;
        }

        // Every drop was counted, once per datagram, under its reason: the counters the router shows are exact.
        Assert.Equal(expectedCounts.OrderBy(kv => kv.Key), drops.Snapshot().OrderBy(kv => kv.Key));
        foreach (var (reason, count) in drops.Snapshot().OrderBy(kv => kv.Key))
            output.WriteLine($"dropped {reason}: {count}");
        output.WriteLine($"{cases} hostile datagrams (x2 receivers) dropped, {accepted} real advertisements accepted");
        Assert.True(cases >= 10_000, $"only {cases} cases");
        Reliability.Record("vrrp", "mutated keepalived adverts + random bytes: dropped, counted, no state change",
            cases, 0, cases * 2 + accepted, 0);
    }
}
