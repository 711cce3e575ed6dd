using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Lb.Vrrp;

/// <summary>Sends VRRP payloads and receives whole IP packets carrying protocol 112.</summary>
public interface IVrrpTransport : IDisposable
{
    /// <summary>The primary address adverts are sent from (RFC 5798 §5.1.1.1 source address).</summary>
    IPAddress LocalAddress { get; }
    ValueTask SendAsync(ReadOnlyMemory<byte> payload, IPAddress destination, CancellationToken ct);
    /// <summary>Next VRRP packet with its IP header facts; null for something that is not an IPv4/IPv6 VRRP packet.</summary>
    ValueTask<IpPacket?> ReceiveAsync(CancellationToken ct);
}

/// <summary>
/// IPv4 raw sockets for protocol 112, opened through libc because .NET refuses protocol 112 (TECH-NOTES).
/// Two sockets, as keepalived does: the receiver is bound to the device only (a raw socket bound to an address
/// would see only packets to that address, not to 224.0.0.18); the sender is bound to the primary address so the
/// kernel-built IP header carries it. TTL 255 (RFC 5798 §5.1.1.3), multicast loopback off, TOS 0xc0 as keepalived.
/// </summary>
public sealed partial class RawVrrpSocket : IVrrpTransport
{
    /// <summary>RFC 5798 §5.1.1.2: the IPv4 multicast group of VRRP.</summary>
    public static readonly IPAddress MulticastGroup = IPAddress.Parse("224.0.0.18");

    const int AfInet = 2, SockRaw = 3, SockCloexec = 0x80000, SolSocket = 1, SoBindToDevice = 25;
    readonly Socket receiver, sender;
    readonly byte[] buffer = new byte[65536];

    public IPAddress LocalAddress { get; }

    RawVrrpSocket(Socket receiver, Socket sender, IPAddress local)
    {
        this.receiver = receiver;
        this.sender = sender;
        LocalAddress = local;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int LibcSocket(int domain, int type, int protocol);

    /// <summary>
    /// Opens both sockets on <paramref name="interfaceName"/>. Rejects (SocketException) a missing interface,
    /// missing CAP_NET_RAW, or a local address that is not on the interface.
    /// </summary>
    public static RawVrrpSocket Open(string interfaceName, IPAddress localAddress)
    {
        int index = InterfaceIndex(interfaceName);
        var receiver = OpenRaw(interfaceName);
        var sender = OpenRaw(interfaceName);
        try
        {
            receiver.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.AddMembership, new MulticastOption(MulticastGroup, index));
            sender.Bind(new IPEndPoint(localAddress, 0));
            sender.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastInterface, localAddress.GetAddressBytes());
            sender.ReceiveBufferSize = 1024; // it never reads; keep what it collects small
            return new RawVrrpSocket(receiver, sender, localAddress);
        }
        catch
        {
            receiver.Dispose();
            sender.Dispose();
            throw;
        }
    }

    static Socket OpenRaw(string interfaceName)
    {
        int fd = LibcSocket(AfInet, SockRaw | SockCloexec, VrrpCodec.ProtocolNumber);
        if (fd < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        var s = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        try
        {
            s.SetRawSocketOption(SolSocket, SoBindToDevice, Encoding.ASCII.GetBytes(interfaceName + "\0"));
            s.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastTimeToLive, ReceiveValidator.RequiredTtl);
            s.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.IpTimeToLive, ReceiveValidator.RequiredTtl);
            s.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastLoopback, false);
            s.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.TypeOfService, 0xc0);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    public ValueTask SendAsync(ReadOnlyMemory<byte> payload, IPAddress destination, CancellationToken ct) =>
        new(sender.SendToAsync(payload, SocketFlags.None, new IPEndPoint(destination, 0), ct).AsTask());

    public async ValueTask<IpPacket?> ReceiveAsync(CancellationToken ct)
    {
        int n = await receiver.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, ct);
        // Copy: the buffer is reused by the next receive while the caller may still hold the packet.
        return IpPacket.TryParse(buffer.AsSpan(0, n).ToArray());
    }

    public void Dispose()
    {
        receiver.Dispose();
        sender.Dispose();
    }

    /// <summary>Kernel index of the interface. Rejects (SocketException ENODEV) an unknown name.</summary>
    public static int InterfaceIndex(string interfaceName) =>
        NetworkInterface.GetAllNetworkInterfaces().FirstOrDefault(n => n.Name == interfaceName)
            ?.GetIPProperties().GetIPv4Properties()?.Index
        ?? throw new SocketException((int)SocketError.AddressNotAvailable);

    /// <summary>
    /// The interface's first IPv4 address that is not one of <paramref name="virtualIps"/>: the primary address
    /// adverts come from (RFC 5798 §5.1.1.1). Null if the interface has none.
    /// </summary>
    public static IPAddress? PrimaryAddress(string interfaceName, IEnumerable<IPAddress> virtualIps)
    {
        var vips = virtualIps.ToHashSet();
        return NetworkInterface.GetAllNetworkInterfaces().FirstOrDefault(n => n.Name == interfaceName)
            ?.GetIPProperties().UnicastAddresses.Select(u => u.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !vips.Contains(a));
    }
}
