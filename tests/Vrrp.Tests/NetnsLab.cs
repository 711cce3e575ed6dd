using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Lb.Tests;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Vrrp.Tests;

/// <summary>A process the lab started (by PID), with its stdout lines kept for assertions.</summary>
public sealed partial class LabProcess(string name, Process process, ITestOutputHelper output) : IDisposable
{
    readonly ConcurrentQueue<string> lines = new();
    public string Name { get; } = name;
    public int Pid => process.Id;
    public IEnumerable<string> Lines => lines;
    public bool Exited => process.HasExited;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int LibcKill(int pid, int signal);

    public const int SigTerm = 15, SigKill = 9, SigStop = 19;

    internal void Capture()
    {
        process.OutputDataReceived += (_, e) => { if (e.Data is { } l) { lines.Enqueue(l); Log(l); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } l) { lines.Enqueue(l); Log(l); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    void Log(string line)
    {
        try { output.WriteLine($"[{Name}] {line}"); } catch (InvalidOperationException) { } // test already finished
    }

    /// <summary>Sends <paramref name="signal"/> to this process only, by its PID.</summary>
    public void Signal(int signal)
    {
        if (!process.HasExited) LibcKill(process.Id, signal);
    }

    public static void Signal(int pid, int signal) => LibcKill(pid, signal);

    /// <summary>Waits (bounded) for a line matching <paramref name="match"/>; returns it, or null on timeout.</summary>
    public string? WaitForLine(Func<string, bool> match, TimeSpan timeout) =>
        Lab.WaitUntil(() => lines.FirstOrDefault(match), timeout);

    public bool WaitForExit(TimeSpan timeout) => process.WaitForExit(timeout);

    public void Dispose()
    {
        if (!process.HasExited)
        {
            Signal(SigKill);
            process.WaitForExit(TimeSpan.FromSeconds(5));
        }
        process.Dispose();
    }
}

/// <summary>
/// Network namespaces for one test: a bridge namespace and hosts with an eth0 on it, all named uniquely per lab
/// and addressed in 192.0.2.0/24 (TEST-NET-1). Dispose stops every process it started (by PID) and deletes the
/// namespaces, even when the test failed.
/// </summary>
public sealed class Lab : IDisposable
{
    public const string Vip = "192.0.2.100";
    readonly ITestOutputHelper output;
    readonly string id = Convert.ToHexString(Guid.NewGuid().ToByteArray()[..3]).ToLowerInvariant();
    readonly List<string> namespaces = [];
    readonly List<LabProcess> processes = [];
    readonly List<string> pidFiles = [];
    int ports;
    public string Dir { get; }

    /// <summary>Why namespace tests cannot run here, or null if they can (root with iproute2).</summary>
    public static string? Unavailable()
    {
        if (Environment.UserName != "root" && geteuid() != 0) return "network-namespace tests need root (CI runs them as root)";
        return File.Exists("/usr/sbin/ip") || File.Exists("/sbin/ip") || File.Exists("/usr/bin/ip") ? null : "iproute2 (ip) is not installed";
    }

    /// <summary>Why the keepalived interoperability tests cannot run here, or null if they can.</summary>
    public static string? KeepalivedUnavailable() =>
        Unavailable() ?? (File.Exists("/usr/sbin/keepalived") || File.Exists("/usr/bin/keepalived") || File.Exists("/sbin/keepalived")
            ? null : "keepalived is not installed (apt-get install keepalived; .ci/run installs it)");

    [DllImport("libc")]
    static extern uint geteuid();

    public Lab(ITestOutputHelper output)
    {
        this.output = output;
        MachineStalls.Start();
        Dir = Directory.CreateTempSubdirectory($"lbv{id}-").FullName;
        var br = AddNamespace("br");
        Ip("-n", br, "link", "add", "br0", "type", "bridge");
        Ip("-n", br, "link", "set", "br0", "up");
    }

    string AddNamespace(string role)
    {
        var ns = $"lbv{id}{role}";
        Ip("netns", "add", ns);
        namespaces.Add(ns);
        Ip("-n", ns, "link", "set", "lo", "up");
        return ns;
    }

    /// <summary>A host namespace whose eth0 (a veth into the bridge) has <paramref name="address"/>/24.</summary>
    public string AddHost(string role, string address)
    {
        var ns = AddNamespace(role);
        var port = $"p{++ports}";
        Ip("-n", namespaces[0], "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns);
        Ip("-n", namespaces[0], "link", "set", port, "master", "br0", "up");
        Ip("-n", ns, "addr", "add", $"{address}/24", "dev", "eth0");
        Ip("-n", ns, "link", "set", "eth0", "up");
        return ns;
    }

    public static string Ip(params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(10))) { p.Kill(); throw new TimeoutException("ip " + string.Join(' ', args)); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"ip {string.Join(' ', args)}: {stderr.Result}");
        return stdout.Result;
    }

    public bool HasVip(string ns) =>
        VipActions.ParseAddresses(Ip("-n", ns, "-o", "-4", "addr", "show", "dev", "eth0")).Any(a => a.ToString() == Vip);

    static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p ? p : "dotnet";
    static string PeerDll => Path.Combine(AppContext.BaseDirectory, "VrrpPeer.dll");

    /// <summary>Starts VrrpPeer in <paramref name="ns"/> (`ip netns exec` execs it, so the PID is the peer's).</summary>
    public LabProcess StartPeer(string ns, string name, params string[] args) =>
        Start(ns, name, [Dotnet, PeerDll, .. args]);

    /// <summary>An lb VRRP node answering TCP 8080 with its name.</summary>
    public LabProcess StartLb(string ns, string name, int priority, params string[] extra) =>
        StartPeer(ns, name, ["node", "--name", name, "--priority", priority.ToString(), "--vip", $"{Vip}/24", "--listen", "8080", .. extra]);

    /// <summary>keepalived (-n: the parent stays in the foreground) with a generated config, plus a TCP answerer.</summary>
    public (LabProcess Keepalived, int VrrpChildPidFileIndex) StartKeepalived(string ns, string name, string config)
    {
        var conf = Path.Combine(Dir, $"{name}.conf");
        File.WriteAllText(conf, config);
        var pid = Path.Combine(Dir, $"{name}.pid");
        var vrrpPid = Path.Combine(Dir, $"{name}.vrrp.pid");
        pidFiles.Add(vrrpPid);
        StartPeer(ns, name + "-http", "listen", "--name", name, "--listen", "8080");
        var k = Start(ns, name, ["keepalived", "-n", "-l", "-D", "-P", "-f", conf, "-p", pid, "-r", vrrpPid]);
        return (k, pidFiles.Count - 1);
    }

    /// <summary>PID of keepalived's VRRP child, from the pid file we told it to write.</summary>
    public int? KeepalivedChild(int index) =>
        File.Exists(pidFiles[index]) && int.TryParse(File.ReadAllText(pidFiles[index]).Trim(), out var p) ? p : null;

    /// <summary>
    /// A crash of keepalived: stop the parent (so it cannot respawn), SIGKILL its VRRP child, then the parent.
    /// Only PIDs this lab started or told keepalived to record.
    /// </summary>
    public void CrashKeepalived(LabProcess keepalived, int pidFileIndex)
    {
        keepalived.Signal(LabProcess.SigStop);
        if (KeepalivedChild(pidFileIndex) is { } child) LabProcess.Signal(child, LabProcess.SigKill);
        keepalived.Signal(LabProcess.SigKill);
    }

    LabProcess Start(string ns, string name, string[] command)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns, .. command]) psi.ArgumentList.Add(a);
        var p = new LabProcess(name, Process.Start(psi)!, output);
        p.Capture();
        processes.Add(p);
        return p;
    }

    /// <summary>Polls every 10 ms until <paramref name="probe"/> returns non-null or the timeout passes.</summary>
    public static T? WaitUntil<T>(Func<T?> probe, TimeSpan timeout) where T : class
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 100_000; i++)
        {
            if (probe() is { } v) return v;
            if (sw.Elapsed > timeout) return null;
            Thread.Sleep(10);
        }
        return null;
    }

    public static bool WaitFor(Func<bool> condition, TimeSpan timeout) =>
        WaitUntil(() => condition() ? "" : null, timeout) is not null;

    public void Dispose()
    {
        // Graceful first (keepalived then removes its VIPs and children), then by force; all by PID.
        foreach (var p in processes) p.Signal(LabProcess.SigTerm);
        foreach (var p in processes) p.WaitForExit(TimeSpan.FromSeconds(6));
        for (int i = 0; i < pidFiles.Count; i++)
            if (KeepalivedChild(i) is { } child && Directory.Exists($"/proc/{child}")) LabProcess.Signal(child, LabProcess.SigKill);
        foreach (var p in processes) p.Dispose();
        foreach (var ns in Enumerable.Reverse(namespaces))
        {
            try { Ip("netns", "del", ns); }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException) { output.WriteLine($"cleanup: {e.Message}"); }
        }
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>One client probe: when it finished (Unix ms), which node answered (null = failed), and why it failed.</summary>
public sealed record Probe(long Ms, string? Node, string? Why = null)
{
    public static IReadOnlyList<Probe> Parse(IEnumerable<string> lines) => lines
        .Select(l => l.Split(' ', 3))
        .Where(p => p.Length == 3 && long.TryParse(p[0], out _) && p[1] is "ok" or "fail")
        .Select(p => p[1] == "ok" ? new Probe(long.Parse(p[0]), p[2]) : new Probe(long.Parse(p[0]), null, p[2]))
        .ToList();
}

/// <summary>What a client saw across a failover at <see cref="EventMs"/>.</summary>
public sealed record Handover(long EventMs, long? FirstAnswerFromNewMs, int FailedRequests, int Requests, int ResetAtTheArpMove = 0)
{
    public TimeSpan? Gap => FirstAnswerFromNewMs is { } t ? TimeSpan.FromMilliseconds(t - EventMs) : null;

    /// <summary>The row of bench/vrrp-timings.md for this handover.</summary>
    public string TimingRow(string scenario, string reference) =>
        $"| {scenario} | {Gap?.TotalMilliseconds.ToString("0") ?? "never"} ms | {FailedRequests} of {Requests}" +
        (ResetAtTheArpMove > 0 ? " (reset at the ARP move)" : "") + $" | {reference} |";

    /// <summary>Writes the row to the test output, and to $LB_VRRP_TIMINGS when set (manual timing runs).</summary>
    public void Report(Xunit.Abstractions.ITestOutputHelper output, string scenario, string reference)
    {
        var line = TimingRow(scenario, reference);
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("LB_VRRP_TIMINGS") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
    }

    /// <summary>
    /// The new master answered within <paramref name="max"/> of the event, plus any time the whole machine stood still
    /// in between (<see cref="MachineStalls"/>), which is printed to <paramref name="output"/>.
    /// </summary>
    public void AssertGapWithin(TimeSpan max, Xunit.Abstractions.ITestOutputHelper? output = null)
    {
        Xunit.Assert.NotNull(Gap);
        var frozen = MachineStalls.FrozenBetween(EventMs, FirstAnswerFromNewMs!.Value);
        if (frozen > TimeSpan.Zero)
            output?.WriteLine($"the machine stood still {frozen.TotalMilliseconds:0} ms during the handover; bound {max.TotalMilliseconds:0} + that");
        Xunit.Assert.InRange(Gap!.Value, TimeSpan.Zero, max + frozen);
    }

    public static Handover Measure(IReadOnlyList<Probe> probes, long eventMs, string newMaster)
    {
        var after = probes.Where(p => p.Ms >= eventMs).ToList();
        int first = after.FindIndex(p => p.Node == newMaster);
        return new Handover(eventMs, first >= 0 ? after[first].Ms : null, after.Count(p => p.Node is null), after.Count,
            IsResetAtTheArpMove(after, first) ? 1 : 0);
    }

    /// <summary>
    /// The one request a sequential client can have in flight when the new master's gratuitous ARP moves the VIP: its
    /// handshake went to the old master and its next segment to the new one, which has no such connection and answers
    /// RST. No lb can save it (only a connection-syncing pair could); keepalived, which drops the VIP at once, loses 2.
    /// It is the probe just before the new master's first answer, just after the old master's last, and a reset.
    /// </summary>
    static bool IsResetAtTheArpMove(IReadOnlyList<Probe> after, int firstFromNew) =>
        firstFromNew >= 1
        && after[firstFromNew - 1] is { Node: null, Why: "ConnectionReset" }
        && (firstFromNew == 1 || after[firstFromNew - 2].Node is { } previous && previous != after[firstFromNew].Node);

    /// <summary>
    /// No request was lost but, at most, the one in flight at the ARP move (<see cref="IsResetAtTheArpMove"/>), which is
    /// printed. Every other failure (a timeout, a refused connection, an error status, a reset anywhere else) fails.
    /// </summary>
    public void AssertNoRequestLostButAtTheArpMove(Xunit.Abstractions.ITestOutputHelper? output = null)
    {
        if (ResetAtTheArpMove > 0)
            output?.WriteLine("one connection straddled the ARP move (handshake to the old master, request to the new): reset");
        Xunit.Assert.Equal(0, FailedRequests - ResetAtTheArpMove);
    }

    public override string ToString() =>
        $"VIP answered from the new master after {Gap?.TotalMilliseconds.ToString() ?? "never"} ms; {FailedRequests} of {Requests} requests failed";
}

[CollectionDefinition("netns", DisableParallelization = true)]
public sealed class NetnsCollection;
