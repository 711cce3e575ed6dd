using System.Net;
using FsCheck.Xunit;
using Xunit;
using static Lb.Vrrp.Tests.KeepalivedVectors;

namespace Lb.Vrrp.Tests;

public class PacketTests
{
    [Property(Arbitrary = [typeof(Generators)], MaxTest = 500)]
    public bool Decoding_an_encoded_packet_gives_it_back(Wire w)
    {
        var bytes = VrrpCodec.Encode(w.Packet, w.Source, w.Destination);
        var decoded = VrrpCodec.TryDecode(bytes, w.Source, w.Destination);
        return decoded.Reason == DropReason.None && w.Packet.Equals(decoded.Packet);
    }

    [Property(Arbitrary = [typeof(Generators)], MaxTest = 500)]
    public bool The_checksum_of_every_encoded_packet_verifies(Wire w)
    {
        var bytes = VrrpCodec.Encode(w.Packet, w.Source, w.Destination);
        return Checksum.Verify(bytes, w.Packet.Version, w.Source, w.Destination);
    }

    [Property(Arbitrary = [typeof(Generators)], MaxTest = 300)]
    public bool Flipping_any_bit_of_an_encoded_packet_is_detected(Wire w, byte offsetSeed, byte bitSeed)
    {
        var bytes = VrrpCodec.Encode(w.Packet, w.Source, w.Destination);
        bytes[offsetSeed % bytes.Length] ^= (byte)(1 << (bitSeed % 8));
        var decoded = VrrpCodec.TryDecode(bytes, w.Source, w.Destination);
        // A one-bit change can never keep the Internet checksum valid (RFC 1071), so it must be rejected.
        return !decoded.Ok && decoded.Reason != DropReason.None;
    }

    [Property(MaxTest = 2000)]
    public bool Random_bytes_never_throw_out_of_the_decoder(byte[] data, bool v6)
    {
        var src = v6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;
        var r = VrrpCodec.TryDecode(data, src, src);
        return r.Ok == (r.Reason == DropReason.None);
    }

    [Property(Arbitrary = [typeof(Generators)], MaxTest = 1000)]
    public bool Mutated_real_packets_never_throw(Mutation m)
    {
        foreach (var (ip, hl) in new[] { (V2AuthIp, 20), (V3Ip, 20), (V3Ipv6Ip, 40) })
        {
            var bytes = Bytes(ip);
            bytes[m.Offset % bytes.Length] ^= m.Mask;
            var cut = bytes.AsMemory(0, Math.Min(m.Cut, bytes.Length));
            var header = IpPacket.TryParse(cut);
            if (header is { } h) ReceiveValidator.Validate(h.Payload.Span, h.Info, Expect(VrrpVersion.V2, 51));
            VrrpCodec.TryDecode(bytes.AsSpan(Math.Min(hl, bytes.Length)), IPAddress.Loopback, Group);
        }
        return true;
    }

    static ExpectedInstance Expect(VrrpVersion v, byte vrid, AuthType auth = AuthType.None, string pass = "") =>
        new(v, vrid, [IPAddress.Parse("10.99.0.100")], 1, auth,
            auth == AuthType.SimpleText ? VrrpPacket.PasswordAuthData(pass) : new byte[8], IPAddress.Parse("10.99.0.12"));

    static (IpHeaderInfo Info, byte[] Payload) Parse(string hex)
    {
        var h = IpPacket.TryParse(Bytes(hex)) ?? throw new Xunit.Sdk.XunitException("IP header did not parse");
        return (h.Info, h.Payload.ToArray());
    }

    [Theory]
    [InlineData(V2AuthIp, "10.99.0.11", 150, AuthType.SimpleText, 0x083d)]
    [InlineData(V2Prio0Ip, "10.99.0.11", 0, AuthType.SimpleText, 0x9e3d)]
    [InlineData(V2Lb2Ip, "10.99.0.12", 100, AuthType.SimpleText, 0x3a3d)]
    [InlineData(V2NoAuthIp, "10.99.0.11", 150, AuthType.None, 0x3e03)]
    [InlineData(V2SeedIp, "10.99.0.11", 103, AuthType.None, 0x6d03)]
    [InlineData(V2WeightedIp, "10.99.0.11", 90, AuthType.SimpleText, 0x443d)]
    public void Keepalived_v2_advertisements_decode_field_by_field(string hex, string src, int prio, AuthType auth, int checksum)
    {
        var (info, payload) = Parse(hex);
        Assert.Equal(255, info.Ttl);
        Assert.Equal(IPAddress.Parse(src), info.Source);
        Assert.Equal(Group, info.Destination);
        var r = VrrpCodec.TryDecode(payload, info.Source, info.Destination);
        Assert.Equal(DropReason.None, r.Reason);
        var p = r.Packet!;
        Assert.Equal(VrrpVersion.V2, p.Version);
        Assert.Equal(51, p.Vrid);
        Assert.Equal(prio, p.Priority);
        Assert.Equal(1, p.MaxAdvertInterval);
        Assert.Equal(TimeSpan.FromSeconds(1), p.Interval);
        Assert.Equal([IPAddress.Parse("10.99.0.100")], p.Addresses);
        Assert.Equal(auth, p.Auth);
        var expectedAuth = auth == AuthType.SimpleText ? "lab1234\0"u8.ToArray() : new byte[8];
        Assert.Equal(expectedAuth, p.AuthData.ToArray());
        Assert.Equal(checksum, payload[6] << 8 | payload[7]);
        // Our encoder produces the identical bytes, checksum included.
        Assert.Equal(payload, VrrpCodec.Encode(p, info.Source, info.Destination));
    }

    [Fact]
    public void Keepalived_v3_ipv4_advertisement_decodes_with_the_pseudo_header_checksum()
    {
        var (info, payload) = Parse(V3Ip);
        var p = VrrpCodec.TryDecode(payload, info.Source, info.Destination).Packet!;
        Assert.Equal(VrrpPacket.V3(51, 150, 100, [IPAddress.Parse("10.99.0.100")]), p);
        Assert.Equal(TimeSpan.FromSeconds(1), p.Interval);
        Assert.Equal(0x42a3, payload[6] << 8 | payload[7]);
        Assert.Equal(payload, VrrpCodec.Encode(p, info.Source, info.Destination));
        // The pseudo-header is part of the sum: the same bytes from another source do not verify.
        Assert.Equal(DropReason.BadChecksum,
            VrrpCodec.TryDecode(payload, IPAddress.Parse("10.99.0.12"), info.Destination).Reason);
    }

    [Fact]
    public void Keepalived_v3_ipv6_advertisement_decodes_field_by_field()
    {
        var (info, payload) = Parse(V3Ipv6Ip);
        Assert.Equal(255, info.Ttl);
        Assert.Equal(IPAddress.Parse("fe80::444e:dff:fe9d:f75"), info.Source);
        Assert.Equal(IPAddress.Parse("ff02::12"), info.Destination);
        var p = VrrpCodec.TryDecode(payload, info.Source, info.Destination).Packet!;
        Assert.Equal(VrrpVersion.V3, p.Version);
        Assert.Equal(52, p.Vrid);
        Assert.Equal(150, p.Priority);
        Assert.Equal(100, p.MaxAdvertInterval);
        Assert.Equal([IPAddress.Parse("fd99::100")], p.Addresses);
        Assert.Equal(0xdb4d, payload[6] << 8 | payload[7]);
        Assert.Equal(payload, VrrpCodec.Encode(p, info.Source, info.Destination));
    }

    [Fact]
    public void The_validator_accepts_keepalived_with_the_same_password_and_counts_every_other_drop()
    {
        var (info, payload) = Parse(V2AuthIp);
        var ok = Expect(VrrpVersion.V2, 51, AuthType.SimpleText, "lab1234");
        Assert.Equal(DropReason.None, ReceiveValidator.Validate(payload, info, ok).Reason);
        Assert.Equal(DropReason.AuthMismatch, ReceiveValidator.Validate(payload, info, ok with { AuthData = VrrpPacket.PasswordAuthData("other") }).Reason);
        Assert.Equal(DropReason.BadAuthType, ReceiveValidator.Validate(payload, info, Expect(VrrpVersion.V2, 51)).Reason);
        Assert.Equal(DropReason.BadTtl, ReceiveValidator.Validate(payload, info with { Ttl = 254 }, ok).Reason);
        Assert.Equal(DropReason.UnknownVrid, ReceiveValidator.Validate(payload, info, ok with { Vrid = 52 }).Reason);
        Assert.Equal(DropReason.VersionMismatch, ReceiveValidator.Validate(payload, info, ok with { Version = VrrpVersion.V3 }).Reason);
        Assert.Equal(DropReason.BadInterval, ReceiveValidator.Validate(payload, info, ok with { V2Interval = 2 }).Reason);
        Assert.Equal(DropReason.AddressListMismatch,
            ReceiveValidator.Validate(payload, info, ok with { Addresses = [IPAddress.Parse("10.99.0.101")] }).Reason);
        Assert.Equal(DropReason.OwnPacket, ReceiveValidator.Validate(payload, info, ok with { LocalAddress = info.Source }).Reason);
    }

    [Fact]
    public void Decoder_reasons_for_malformed_packets()
    {
        var (info, payload) = Parse(V3Ip);
        DropReason Decode(byte[] b) => VrrpCodec.TryDecode(b, info.Source, info.Destination).Reason;
        byte[] With(int i, byte v) { var b = (byte[])payload.Clone(); b[i] = v; return b; }
        Assert.Equal(DropReason.Truncated, Decode(payload[..7]));
        Assert.Equal(DropReason.Truncated, Decode(payload[..11]));
        Assert.Equal(DropReason.AddressCountMismatch, Decode([.. payload, 0, 0, 0, 0]));
        Assert.Equal(DropReason.BadVersion, Decode(With(0, 0x41)));
        Assert.Equal(DropReason.BadType, Decode(With(0, 0x32)));
        Assert.Equal(DropReason.BadVrid, Decode(With(1, 0)));
        Assert.Equal(DropReason.BadInterval, Decode(With(5, 0)));
        Assert.Equal(DropReason.BadChecksum, Decode(With(2, 151)));
        var v2 = Parse(V2NoAuthIp).Payload;
        Assert.Equal(DropReason.BadAddressFamily, VrrpCodec.TryDecode(v2, IPAddress.IPv6Loopback, IPAddress.IPv6Loopback).Reason);
    }

    [Fact]
    public void Counters_count_by_reason()
    {
        var c = new DropCounters();
        c.Count(DropReason.BadTtl); c.Count(DropReason.BadTtl); c.Count(DropReason.None); c.Count(DropReason.BadChecksum);
        Assert.Equal(2, c[DropReason.BadTtl]);
        Assert.Equal(1, c[DropReason.BadChecksum]);
        Assert.Equal(0, c[DropReason.None]);
        Assert.Equal(2, c.Snapshot().Count);
    }
}
