using System.Buffers.Binary;
using System.Net;

namespace Lb.Vrrp;

/// <summary>An IP packet as a raw socket hands it over: the header facts VRRP validates, and the VRRP payload.</summary>
public readonly record struct IpPacket(IpHeaderInfo Info, ReadOnlyMemory<byte> Payload)
{
    /// <summary>
    /// Parses an IPv4 header (RFC 791 §3.1; IHL ≥ 5, options skipped) or a fixed IPv6 header (RFC 8200 §3)
    /// carrying protocol 112. Returns null for anything else: truncated, another protocol, a fragment,
    /// IPv6 extension headers, a total length beyond the buffer. Never throws.
    /// </summary>
    public static IpPacket? TryParse(ReadOnlyMemory<byte> data)
    {
        var s = data.Span;
        if (s.Length < 1) return null;
        return (s[0] >> 4) switch
        {
            4 => ParseV4(data),
            6 => ParseV6(data),
            _ => null,
        };
    }

    static IpPacket? ParseV4(ReadOnlyMemory<byte> data)
    {
        var s = data.Span;
        if (s.Length < 20) return null;
        int ihl = (s[0] & 0x0F) * 4;
        int total = BinaryPrimitives.ReadUInt16BigEndian(s[2..]);
        bool fragment = (BinaryPrimitives.ReadUInt16BigEndian(s[6..]) & 0x3FFF) != 0;
        if (ihl < 20 || total < ihl || total > s.Length || fragment || s[9] != VrrpCodec.ProtocolNumber) return null;
        var info = new IpHeaderInfo(s[8], new IPAddress(s.Slice(12, 4)), new IPAddress(s.Slice(16, 4)));
        return new IpPacket(info, data[ihl..total]);
    }

    static IpPacket? ParseV6(ReadOnlyMemory<byte> data)
    {
        var s = data.Span;
        if (s.Length < 40) return null;
        int payload = BinaryPrimitives.ReadUInt16BigEndian(s[4..]);
        if (s[6] != VrrpCodec.ProtocolNumber || 40 + payload > s.Length) return null;
        var info = new IpHeaderInfo(s[7], new IPAddress(s.Slice(8, 16)), new IPAddress(s.Slice(24, 16)));
        return new IpPacket(info, data.Slice(40, payload));
    }
}
