using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Lb.Vrrp;

/// <summary>VRRP protocol version: 2 is RFC 3768 (IPv4 only, seconds), 3 is RFC 5798 (IPv4/IPv6, centiseconds).</summary>
public enum VrrpVersion : byte { V2 = 2, V3 = 3 }

/// <summary>VRRPv2 authentication type (RFC 3768 §5.3.6; RFC 2338 §5.3.6 for 1 and 2, which keepalived still sends).</summary>
public enum AuthType : byte { None = 0, SimpleText = 1, IpAh = 2 }

/// <summary>
/// Why a received VRRP packet was dropped. One enum for the decoder and the receive-side validator, so
/// the drop counters read as one table (RFC 5798 §7.1, RFC 3768 §7.1).
/// </summary>
public enum DropReason
{
    None = 0,
    /// <summary>Shorter than the fixed header, or than the addresses and auth data it announces.</summary>
    Truncated,
    /// <summary>Version field is neither 2 nor 3 (RFC 5798 §5.2.1).</summary>
    BadVersion,
    /// <summary>Type is not 1 = ADVERTISEMENT (RFC 5798 §5.2.2).</summary>
    BadType,
    /// <summary>VRID 0 is not a valid virtual router (RFC 5798 §5.2.3: 1..255).</summary>
    BadVrid,
    /// <summary>Checksum does not verify (RFC 5798 §7.1, RFC 3768 §7.1).</summary>
    BadChecksum,
    /// <summary>Length disagrees with the announced address count (RFC 5798 §7.1 "the VRRP packet length").</summary>
    AddressCountMismatch,
    /// <summary>Advertisement interval of zero (never valid) or, for v2, not the locally configured one (RFC 3768 §7.1).</summary>
    BadInterval,
    /// <summary>IPv6 addresses in a v2 packet (RFC 3768 is IPv4 only), or an unknown IP family.</summary>
    BadAddressFamily,
    /// <summary>Unknown v2 authentication type, or one that differs from ours.</summary>
    BadAuthType,
    /// <summary>v2 authentication data differs from our password (RFC 2338 §5.3.6.1; keepalived checks it).</summary>
    AuthMismatch,
    /// <summary>IPv4 TTL or IPv6 hop limit is not 255 (RFC 5798 §7.1: the packet crossed a router).</summary>
    BadTtl,
    /// <summary>Version differs from the local instance's.</summary>
    VersionMismatch,
    /// <summary>VRID is not the local instance's: another virtual router on the same LAN (RFC 5798 §7.1 "MUST discard").</summary>
    UnknownVrid,
    /// <summary>Address list differs from ours and the sender is not the owner (RFC 3768 §7.1 "MUST drop").</summary>
    AddressListMismatch,
    /// <summary>Our own advertisement looped back (source is our primary address).</summary>
    OwnPacket,
}

/// <summary>
/// One VRRP ADVERTISEMENT (the only type, RFC 5798 §5.2.2). <see cref="MaxAdvertInterval"/> is in wire units:
/// seconds for v2 (RFC 3768 §5.3.7), centiseconds for v3 (RFC 5798 §5.2.7). Auth fields are v2 only.
/// Build with <see cref="V2"/> or <see cref="V3"/>.
/// </summary>
public sealed record VrrpPacket(
    VrrpVersion Version,
    byte Vrid,
    byte Priority,
    ushort MaxAdvertInterval,
    IReadOnlyList<IPAddress> Addresses,
    AuthType Auth,
    ReadOnlyMemory<byte> AuthData)
{
    /// <summary>RFC 3768 §5.3.10: 8 octets of authentication data follow the addresses in every v2 packet.</summary>
    public const int V2AuthDataLength = 8;

    public TimeSpan Interval => Version == VrrpVersion.V2
        ? TimeSpan.FromSeconds(MaxAdvertInterval)
        : TimeSpan.FromMilliseconds(MaxAdvertInterval * 10);

    public static VrrpPacket V2(byte vrid, byte priority, byte intervalSeconds, IReadOnlyList<IPAddress> addresses,
        AuthType auth = AuthType.None, ReadOnlyMemory<byte> authData = default) =>
        new(VrrpVersion.V2, vrid, priority, intervalSeconds, addresses, auth,
            authData.Length == 0 ? new byte[V2AuthDataLength] : authData);

    public static VrrpPacket V3(byte vrid, byte priority, ushort intervalCentiseconds, IReadOnlyList<IPAddress> addresses) =>
        new(VrrpVersion.V3, vrid, priority, intervalCentiseconds, addresses, AuthType.None, ReadOnlyMemory<byte>.Empty);

    /// <summary>The 8-byte v2 auth data keepalived sends for auth_type PASS: the password, NUL-padded, cut at 8.</summary>
    public static byte[] PasswordAuthData(string password)
    {
        var data = new byte[V2AuthDataLength];
        var bytes = System.Text.Encoding.ASCII.GetBytes(password);
        bytes.AsSpan(0, Math.Min(bytes.Length, V2AuthDataLength)).CopyTo(data);
        return data;
    }

    public bool Equals(VrrpPacket? other) =>
        other is not null && Version == other.Version && Vrid == other.Vrid && Priority == other.Priority
        && MaxAdvertInterval == other.MaxAdvertInterval && Auth == other.Auth
        && Addresses.SequenceEqual(other.Addresses) && AuthData.Span.SequenceEqual(other.AuthData.Span);

    public override int GetHashCode() => HashCode.Combine(Version, Vrid, Priority, MaxAdvertInterval, Addresses.Count);

    public override string ToString() =>
        $"VRRPv{(int)Version} vrid {Vrid} prio {Priority} intvl {Interval.TotalMilliseconds}ms addrs [{string.Join(", ", Addresses)}]";
}

/// <summary>Result of <see cref="VrrpCodec.TryDecode"/>: a packet, or the reason it was rejected. Never both.</summary>
public readonly record struct DecodeResult(VrrpPacket? Packet, DropReason Reason)
{
    public bool Ok => Packet is not null;
    public static DecodeResult Fail(DropReason reason) => new(null, reason);
}

/// <summary>
/// VRRP wire format. Layout (RFC 5798 §5.1, RFC 3768 §5.1):
/// <code>
///  0: Version(4) Type(4) | 1: VRID | 2: Priority | 3: Count IPvX Addr
///  4: v2 Auth Type(8) Adver Int(8) | v3 rsvd(4) Max Adver Int(12)
///  6: Checksum | 8: addresses (4 or 16 octets each) | v2 only: 8 octets Authentication Data
/// </code>
/// </summary>
public static class VrrpCodec
{
    /// <summary>IANA protocol number of VRRP (RFC 5798 §5.1.1.4).</summary>
    public const int ProtocolNumber = 112;
    public const int HeaderLength = 8;
    /// <summary>RFC 5798 §5.2.7: 12-bit field.</summary>
    public const ushort MaxV3Interval = 0x0FFF;

    /// <summary>
    /// Encodes <paramref name="packet"/> with its checksum. <paramref name="source"/> and <paramref name="destination"/>
    /// are the IP header's, used only by v3's pseudo-header (RFC 5798 §5.2.8). Rejects (ArgumentException): VRID 0,
    /// more than 255 addresses, mixed or (for v2) IPv6 addresses, interval 0 or above the field (255 s; 4095 cs),
    /// v2 auth data not 8 bytes, v3 source/destination of another family than the addresses.
    /// </summary>
    public static byte[] Encode(VrrpPacket packet, IPAddress source, IPAddress destination)
    {
        var family = CheckEncodable(packet, source, destination);
        int addrLen = AddressLength(family);
        int length = HeaderLength + addrLen * packet.Addresses.Count
            + (packet.Version == VrrpVersion.V2 ? VrrpPacket.V2AuthDataLength : 0);
        var buf = new byte[length];
        buf[0] = (byte)(((int)packet.Version << 4) | 1);
        buf[1] = packet.Vrid;
        buf[2] = packet.Priority;
        buf[3] = (byte)packet.Addresses.Count;
        if (packet.Version == VrrpVersion.V2)
        {
            buf[4] = (byte)packet.Auth;
            buf[5] = (byte)packet.MaxAdvertInterval;
            packet.AuthData.Span.CopyTo(buf.AsSpan(length - VrrpPacket.V2AuthDataLength));
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(buf.AsSpan(4), packet.MaxAdvertInterval);
        }
        for (int i = 0; i < packet.Addresses.Count; i++)
            packet.Addresses[i].TryWriteBytes(buf.AsSpan(HeaderLength + i * addrLen), out _);
        ushort sum = Checksum.Compute(buf, packet.Version, source, destination);
        BinaryPrimitives.WriteUInt16BigEndian(buf.AsSpan(6), sum);
        return buf;
    }

    static AddressFamily CheckEncodable(VrrpPacket p, IPAddress source, IPAddress destination)
    {
        if (p.Vrid == 0) throw new ArgumentException("VRID must be 1..255 (RFC 5798 §5.2.3)", nameof(p));
        if (p.Addresses.Count > 255) throw new ArgumentException("at most 255 addresses", nameof(p));
        var family = p.Addresses.Count > 0 ? p.Addresses[0].AddressFamily : source.AddressFamily;
        if (p.Addresses.Any(a => a.AddressFamily != family))
            throw new ArgumentException("addresses must share one family", nameof(p));
        if (p.Version == VrrpVersion.V2)
        {
            if (family != AddressFamily.InterNetwork) throw new ArgumentException("VRRPv2 is IPv4 only", nameof(p));
            if (p.MaxAdvertInterval is 0 or > 255) throw new ArgumentException("v2 interval is 1..255 s", nameof(p));
            if (p.AuthData.Length != VrrpPacket.V2AuthDataLength) throw new ArgumentException("v2 auth data is 8 bytes", nameof(p));
        }
        else
        {
            if (p.MaxAdvertInterval is 0 or > MaxV3Interval) throw new ArgumentException("v3 interval is 1..4095 cs", nameof(p));
            if (source.AddressFamily != family || destination.AddressFamily != family)
                throw new ArgumentException("v3 source/destination must match the address family", nameof(p));
        }
        return family;
    }

    /// <summary>
    /// Decodes a VRRP payload (IP header already stripped). Never throws: anything malformed yields a
    /// <see cref="DropReason"/>. The address family is the IP layer's (<paramref name="source"/>), as RFC 5798 §5.2.5 says.
    /// Checks: length, version, type, VRID ≠ 0, length = header + count × address size (+ 8 for v2), interval ≠ 0,
    /// v2 auth type known, checksum (RFC 5798 §7.1 order).
    /// </summary>
    public static DecodeResult TryDecode(ReadOnlySpan<byte> data, IPAddress source, IPAddress destination)
    {
        if (data.Length < HeaderLength) return DecodeResult.Fail(DropReason.Truncated);
        int version = data[0] >> 4;
        if (version is not (2 or 3)) return DecodeResult.Fail(DropReason.BadVersion);
        var v = (VrrpVersion)version;
        if ((data[0] & 0x0F) != 1) return DecodeResult.Fail(DropReason.BadType);
        if (data[1] == 0) return DecodeResult.Fail(DropReason.BadVrid);
        var family = source.AddressFamily;
        if (family is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
            || destination.AddressFamily != family
            || (v == VrrpVersion.V2 && family != AddressFamily.InterNetwork))
            return DecodeResult.Fail(DropReason.BadAddressFamily);
        int count = data[3], addrLen = AddressLength(family);
        int expected = HeaderLength + count * addrLen + (v == VrrpVersion.V2 ? VrrpPacket.V2AuthDataLength : 0);
        if (data.Length < expected) return DecodeResult.Fail(DropReason.Truncated);
        if (data.Length > expected) return DecodeResult.Fail(DropReason.AddressCountMismatch);
        ushort interval = v == VrrpVersion.V2 ? data[5] : (ushort)(BinaryPrimitives.ReadUInt16BigEndian(data[4..]) & MaxV3Interval);
        if (interval == 0) return DecodeResult.Fail(DropReason.BadInterval);
        if (v == VrrpVersion.V2 && data[4] > (byte)AuthType.IpAh) return DecodeResult.Fail(DropReason.BadAuthType);
        if (!Checksum.Verify(data, v, source, destination)) return DecodeResult.Fail(DropReason.BadChecksum);
        var addresses = new IPAddress[count];
        for (int i = 0; i < count; i++)
            addresses[i] = new IPAddress(data.Slice(HeaderLength + i * addrLen, addrLen));
        var packet = v == VrrpVersion.V2
            ? new VrrpPacket(v, data[1], data[2], interval, addresses, (AuthType)data[4],
                data[(expected - VrrpPacket.V2AuthDataLength)..].ToArray())
            : new VrrpPacket(v, data[1], data[2], interval, addresses, AuthType.None, ReadOnlyMemory<byte>.Empty);
        return new DecodeResult(packet, DropReason.None);
    }

    static int AddressLength(AddressFamily family) => family == AddressFamily.InterNetworkV6 ? 16 : 4;
}

/// <summary>
/// The Internet checksum (RFC 1071) as VRRP uses it: v2 over the VRRP message only (RFC 3768 §5.3.8);
/// v3 over the message prefixed by the IPv4 (RFC 768-style) or IPv6 (RFC 8200 §8.1) pseudo-header (RFC 5798 §5.2.8).
/// </summary>
public static class Checksum
{
    /// <summary>Checksum to write at offset 6, computed with that field taken as zero.</summary>
    public static ushort Compute(ReadOnlySpan<byte> message, VrrpVersion version, IPAddress source, IPAddress destination)
    {
        uint sum = Sum(message[..6]) + Sum(message[8..]);
        if (version == VrrpVersion.V3) sum += PseudoHeaderSum(source, destination, message.Length);
        return Fold(sum);
    }

    /// <summary>True when the message (checksum included) sums to 0xFFFF, i.e. the checksum verifies.</summary>
    public static bool Verify(ReadOnlySpan<byte> message, VrrpVersion version, IPAddress source, IPAddress destination)
    {
        uint sum = Sum(message);
        if (version == VrrpVersion.V3) sum += PseudoHeaderSum(source, destination, message.Length);
        return Fold(sum) == 0;
    }

    static uint PseudoHeaderSum(IPAddress source, IPAddress destination, int length)
    {
        Span<byte> addr = stackalloc byte[16];
        uint sum = 0;
        source.TryWriteBytes(addr, out int n);
        sum += Sum(addr[..n]);
        destination.TryWriteBytes(addr, out n);
        sum += Sum(addr[..n]);
        // IPv4: zero, protocol, 16-bit length; IPv6: 32-bit length, 3 zero bytes, next header. Both sum the same way.
        return sum + (uint)VrrpCodec.ProtocolNumber + (uint)(length & 0xFFFF) + (uint)(length >> 16);
    }

    static uint Sum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        int i = 0;
        for (; i + 1 < data.Length; i += 2) sum += (uint)(data[i] << 8 | data[i + 1]);
        if (i < data.Length) sum += (uint)(data[i] << 8);
        return sum;
    }

    static ushort Fold(uint sum)
    {
        while (sum >> 16 != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }
}
