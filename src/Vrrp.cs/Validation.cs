using System.Collections.Concurrent;
using System.Net;

namespace Lb.Vrrp;

/// <summary>What the IP layer told us about a received VRRP packet: TTL (IPv4) or hop limit (IPv6), source, destination.</summary>
public readonly record struct IpHeaderInfo(byte Ttl, IPAddress Source, IPAddress Destination);

/// <summary>
/// What the local virtual router expects of a peer's advertisement. <see cref="V2Interval"/> is checked for v2 only
/// (RFC 3768 §7.1); v3 learns the master's interval instead (RFC 5798 §6.4.2). <see cref="LocalAddress"/> lets
/// our own looped-back packets be recognised.
/// </summary>
public sealed record ExpectedInstance(
    VrrpVersion Version,
    byte Vrid,
    IReadOnlyList<IPAddress> Addresses,
    byte V2Interval,
    AuthType Auth,
    ReadOnlyMemory<byte> AuthData,
    IPAddress? LocalAddress);

/// <summary>
/// Receive-side checks of RFC 5798 §7.1 / RFC 3768 §7.1, in the RFC's order: TTL 255, then the codec's checks
/// (version, checksum, length), then this instance's VRID, address list, interval (v2) and authentication (v2).
/// </summary>
public static class ReceiveValidator
{
    /// <summary>RFC 5798 §5.1.1.3 / §7.1: sent with TTL (hop limit) 255, anything less crossed a router.</summary>
    public const byte RequiredTtl = 255;

    /// <summary>Validates one packet. Never throws: a rejected packet comes back as its <see cref="DropReason"/>.</summary>
    public static DecodeResult Validate(ReadOnlySpan<byte> payload, IpHeaderInfo ip, ExpectedInstance expected)
    {
        if (ip.Ttl != RequiredTtl) return DecodeResult.Fail(DropReason.BadTtl);
        if (expected.LocalAddress is not null && ip.Source.Equals(expected.LocalAddress))
            return DecodeResult.Fail(DropReason.OwnPacket);
        var decoded = VrrpCodec.TryDecode(payload, ip.Source, ip.Destination);
        if (decoded.Packet is not { } p) return decoded;
        var reason = Check(p, expected);
        return reason == DropReason.None ? decoded : DecodeResult.Fail(reason);
    }

    static DropReason Check(VrrpPacket p, ExpectedInstance expected)
    {
        if (p.Version != expected.Version) return DropReason.VersionMismatch;
        if (p.Vrid != expected.Vrid) return DropReason.UnknownVrid;
        // RFC 3768 §7.1: a non-owner whose address list differs is misconfigured: MUST drop (owner: continue).
        if (p.Priority != 255 && !SameAddresses(p.Addresses, expected.Addresses)) return DropReason.AddressListMismatch;
        if (p.Version == VrrpVersion.V2) return CheckV2(p, expected);
        return DropReason.None;
    }

    static DropReason CheckV2(VrrpPacket p, ExpectedInstance expected)
    {
        // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as the locally configured".
        if (p.MaxAdvertInterval != expected.V2Interval) return DropReason.BadInterval;
        if (p.Auth != expected.Auth) return DropReason.BadAuthType;
        if (p.Auth == AuthType.SimpleText && !p.AuthData.Span.SequenceEqual(expected.AuthData.Span))
            return DropReason.AuthMismatch;
        return DropReason.None;
    }

    static bool SameAddresses(IReadOnlyList<IPAddress> a, IReadOnlyList<IPAddress> b) =>
        a.Count == b.Count && a.ToHashSet().SetEquals(b);
}

/// <summary>
/// The router's receive step for one datagram, apart from its logging: a datagram the transport could not read as
/// a VRRP IP packet (<see cref="IpPacket.TryParse"/> gave null) is counted as <see cref="DropReason.Truncated"/>,
/// one <see cref="ReceiveValidator"/> rejects is counted under its reason, and a valid one becomes the event the
/// state machine steps on. A dropped packet never reaches the state machine (RFC 5798 §7.1 "MUST discard").
/// </summary>
public static class ReceivePath
{
    public static (VrrpEvent.AdvertReceived? Advert, DropReason Reason) Accept(IpPacket? packet, ExpectedInstance expected, DropCounters drops)
    {
        if (packet is not { } p)
        {
            drops.Count(DropReason.Truncated);
            return (null, DropReason.Truncated);
        }
        var r = ReceiveValidator.Validate(p.Payload.Span, p.Info, expected);
        if (r.Packet is { } advert)
            return (new VrrpEvent.AdvertReceived(advert.Priority, advert.Interval, p.Info.Source), DropReason.None);
        drops.Count(r.Reason);
        return (null, r.Reason);
    }
}

/// <summary>Thread-safe count of dropped packets by reason, for stats and logs.</summary>
public sealed class DropCounters
{
    readonly ConcurrentDictionary<DropReason, long> counts = new();

    public void Count(DropReason reason)
    {
        if (reason != DropReason.None) counts.AddOrUpdate(reason, 1, (_, n) => n + 1);
    }

    public long this[DropReason reason] => counts.TryGetValue(reason, out var n) ? n : 0;

    public IReadOnlyDictionary<DropReason, long> Snapshot() => new Dictionary<DropReason, long>(counts);
}
