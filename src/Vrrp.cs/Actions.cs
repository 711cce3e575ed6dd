using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Lb.Vrrp;

/// <summary>A virtual IP with its prefix, as <c>ip addr</c> takes it: "192.0.2.100/24".</summary>
public sealed record VirtualIp(IPAddress Address, int PrefixLength)
{
    /// <summary>
    /// Parses "a.b.c.d/len" or a bare address (/32, /128). Returns null for anything else, including the short
    /// IPv4 forms IPAddress.TryParse accepts ("192.0.2" would silently become 192.0.0.2).
    /// </summary>
    public static VirtualIp? TryParse(string text)
    {
        var parts = text.Trim().Split('/');
        if (parts.Length > 2 || !IPAddress.TryParse(parts[0], out var ip)) return null;
        if (ip.AddressFamily == AddressFamily.InterNetwork && parts[0].Count(c => c == '.') != 3) return null;
        int max = ip.AddressFamily == AddressFamily.InterNetworkV6 ? 128 : 32;
        if (parts.Length == 1) return new(ip, max);
        return int.TryParse(parts[1], out int len) && len >= 0 && len <= max ? new(ip, len) : null;
    }

    public override string ToString() => $"{Address}/{PrefixLength}";
}

/// <summary>Outcome of one external command.</summary>
public readonly record struct CommandResult(int ExitCode, string Output, string Error)
{
    public bool Ok => ExitCode == 0;
}

/// <summary>Runs a program with an argument list (no shell quoting), bounded by a timeout; a timed-out one is killed.</summary>
public static class Command
{
    public static async Task<CommandResult> RunAsync(string program, IEnumerable<string> args, TimeSpan timeout, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {program}");
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            return new CommandResult(-1, "", $"{program} timed out after {timeout.TotalMilliseconds} ms");
        }
        return new CommandResult(p.ExitCode, await stdout, await stderr);
    }
}

/// <summary>Adds and removes the virtual IPs on an interface with <c>ip addr add|del VIP dev IF</c> (iproute2).</summary>
public sealed partial class VipActions(string interfaceName, IReadOnlyList<VirtualIp> vips)
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    // `ip addr add` of an address already present: "RTNETLINK answers: File exists"; del of an absent one: "Cannot assign".
    const int AlreadyDone = 2;

    /// <summary>Adds every VIP; returns the errors (empty when all are on the interface).</summary>
    public Task<IReadOnlyList<string>> AddAsync(CancellationToken ct) => ForEach("add", ct);

    /// <summary>Removes every VIP; returns the errors (empty when none is left).</summary>
    public Task<IReadOnlyList<string>> RemoveAsync(CancellationToken ct) => ForEach("del", ct);

    async Task<IReadOnlyList<string>> ForEach(string verb, CancellationToken ct)
    {
        var errors = new List<string>();
        foreach (var vip in vips)
        {
            var r = await Command.RunAsync("ip", ["addr", verb, vip.ToString(), "dev", interfaceName], Timeout, ct);
            if (!r.Ok && r.ExitCode != AlreadyDone) errors.Add($"ip addr {verb} {vip} dev {interfaceName}: {r.Error.Trim()}");
        }
        return errors;
    }

    /// <summary>Which of our VIPs are configured on the interface now (e.g. left by a process killed with SIGKILL).</summary>
    public async Task<IReadOnlyList<VirtualIp>> FindPresentAsync(CancellationToken ct)
    {
        var r = await Command.RunAsync("ip", ["-o", "addr", "show", "dev", interfaceName], Timeout, ct);
        if (!r.Ok) return [];
        var present = ParseAddresses(r.Output).ToHashSet();
        return vips.Where(v => present.Contains(v.Address)).ToList();
    }

    /// <summary>Addresses in `ip -o addr show` output ("... inet 192.0.2.100/24 ...", "... inet6 fd99::100/64 ...").</summary>
    public static IEnumerable<IPAddress> ParseAddresses(string output) =>
        AddressPattern().Matches(output).Select(m => IPAddress.TryParse(m.Groups[1].Value, out var a) ? a : null)
            .OfType<IPAddress>();

    [GeneratedRegex(@"\binet6? ([0-9a-fA-F:.]+)/\d+")]
    private static partial Regex AddressPattern();
}

/// <summary>
/// Gratuitous ARP (RFC 5227 §3 ARP Announcement; RFC 5798 §6.4.1 "broadcast a gratuitous ARP request") for IPv4
/// VIPs, sent on an AF_PACKET socket. The frame is keepalived's: a broadcast ARP request with sender and target
/// protocol address both the VIP and target hardware address ff:ff:ff:ff:ff:ff.
/// </summary>
public sealed partial class GratuitousArp : IDisposable
{
    const int AfPacket = 17, SockRaw = 3, SockCloexec = 0x80000;
    const ushort EthPArp = 0x0806;
    readonly int fd;
    readonly int ifindex;
    readonly byte[] mac;

    GratuitousArp(int fd, int ifindex, byte[] mac) => (this.fd, this.ifindex, this.mac) = (fd, ifindex, mac);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int LibcSocket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    private static unsafe partial nint SendTo(int fd, byte* buf, nuint len, int flags, byte* addr, int addrlen);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    /// <summary>Opens the packet socket. Rejects (SocketException) an unknown interface or missing CAP_NET_RAW.</summary>
    public static GratuitousArp Open(string interfaceName)
    {
        var nic = NetworkInterface.GetAllNetworkInterfaces().FirstOrDefault(n => n.Name == interfaceName)
            ?? throw new SocketException((int)SocketError.AddressNotAvailable);
        int index = RawVrrpSocket.InterfaceIndex(interfaceName);
        int fd = LibcSocket(AfPacket, SockRaw | SockCloexec, IPAddress.HostToNetworkOrder((short)EthPArp) & 0xFFFF);
        if (fd < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        return new GratuitousArp(fd, index, nic.GetPhysicalAddress().GetAddressBytes());
    }

    /// <summary>The 42-byte Ethernet frame announcing <paramref name="vip"/> from <paramref name="mac"/>. Rejects non-IPv4.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> mac, IPAddress vip)
    {
        if (vip.AddressFamily != AddressFamily.InterNetwork || mac.Length != 6) throw new ArgumentException("IPv4 VIP and 6-byte MAC");
        var f = new byte[42];
        f.AsSpan(0, 6).Fill(0xFF);                  // Ethernet destination: broadcast
        mac.CopyTo(f.AsSpan(6));                    // Ethernet source
        f[12] = 0x08; f[13] = 0x06;                 // EtherType ARP
        f[14] = 0; f[15] = 1;                       // hardware type Ethernet
        f[16] = 0x08; f[17] = 0x00;                 // protocol type IPv4
        f[18] = 6; f[19] = 4;                       // address lengths
        f[20] = 0; f[21] = 1;                       // opcode request
        mac.CopyTo(f.AsSpan(22));                   // sender hardware address
        vip.TryWriteBytes(f.AsSpan(28), out _);     // sender protocol address
        f.AsSpan(32, 6).Fill(0xFF);                 // target hardware address (as keepalived)
        vip.TryWriteBytes(f.AsSpan(38), out _);     // target protocol address
        return f;
    }

    /// <summary>Sends one announcement per IPv4 VIP, <paramref name="repeat"/> times. Returns the number of failed sends.</summary>
    public int Send(IEnumerable<IPAddress> vips, int repeat)
    {
        int failures = 0;
        foreach (var vip in vips.Where(v => v.AddressFamily == AddressFamily.InterNetwork))
        {
            var frame = Frame(mac, vip);
            for (int i = 0; i < repeat; i++) failures += SendFrame(frame) ? 0 : 1;
        }
        return failures;
    }

    unsafe bool SendFrame(byte[] frame)
    {
        // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8].
        Span<byte> sll = stackalloc byte[20];
        sll.Clear();
        BitConverter.TryWriteBytes(sll, (ushort)AfPacket);
        sll[2] = EthPArp >> 8; sll[3] = EthPArp & 0xFF;
        BitConverter.TryWriteBytes(sll[4..], ifindex);
        sll[11] = 6;
        sll[12..18].Fill(0xFF);
        fixed (byte* buf = frame)
        fixed (byte* addr = sll)
            return SendTo(fd, buf, (nuint)frame.Length, 0, addr, sll.Length) == frame.Length;
    }

    public void Dispose() => Close(fd);
}
