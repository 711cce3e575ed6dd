using System.Net;
using Lb.Tests;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Vrrp.Tests;

/// <summary>
/// Issue 8, least privilege: the two-node `lb run` lab with both nodes running as the non-root user
/// <see cref="UnprivilegedLb.User"/>, holding only the capabilities samples/systemd/lb.service grants (read from the
/// unit, applied through setpriv as systemd would: ambient + inheritable, bounding set, no_new_privs). They listen
/// on port 80 (CAP_NET_BIND_SERVICE), run VRRP (CAP_NET_RAW: raw socket and gratuitous ARP; CAP_NET_ADMIN: `ip addr`
/// in a child process), write an access log and open a disk cache in the user's own folder, on a filesystem that is
/// read-only everywhere else (the unit's ProtectSystem=strict, emulated with a mount namespace).
/// </summary>
[Collection("netns")]
public sealed class PrivilegeFailoverTests(ITestOutputHelper output)
{
    const int Port = 80;
    /// <summary>How long the client waits for one answer before it counts a failure.</summary>
    const int ProbeTimeoutMs = 250;
    static readonly IPEndPoint Vip = new(IPAddress.Parse(Lab.Vip), Port);

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Lb.sln"))) return dir.FullName;
        throw new InvalidOperationException("Lb.sln not found above the test binaries");
    }

    /// <summary>The lab's node config on port 80, with an access log file and a disk cache in the user's folder.</summary>
    static string Config(UnprivilegedLb user, string node, int priority)
    {
        var text = LbProcessLab.Config(node, priority)
            .Replace($"http = \"*:{LbProcessLab.Port}\"", $"http = \"*:{Port}\"")
            .Replace("access = \"off\"", $"access = \"{user.Home}/{node}-access.log\"")
            .Replace("[apps.app1]", "[apps.app1]\ncache = true");
        Assert.Contains($"*:{Port}", text);
        Assert.Contains("-access.log", text);
        return text + $"\n\n[cache]\ndir = \"{user.Home}/{node}-cache\"\n";
    }

    [SkippableFact]
    public void Two_nodes_as_a_non_root_user_with_only_the_units_capabilities_serve_on_port_80_and_fail_over()
    {
        Skip.If(Lab.Unavailable() is not null, Lab.Unavailable());
        var unit = SystemdUnit.Read(Path.Combine(RepositoryRoot(), "samples", "systemd", "lb.service"));
        using var lab = new LbProcessLab(output);
        using var user = new UnprivilegedLb(LbProcessLab.LbDll, unit);
        output.WriteLine($"lb runs as {UnprivilegedLb.User} (uid {user.Uid}) with {string.Join(" ", user.Capabilities)}");

        var lb1 = lab.StartLb("lb1", Config(user, "lb1", 150), asUser: user);
        var lb2 = lab.StartLb("lb2", Config(user, "lb2", 100), asUser: user);
        ulong expected = UnprivilegedLb.Mask(user.Capabilities);
        Assert.Equal(0x3400UL, expected); // CAP_NET_BIND_SERVICE | CAP_NET_ADMIN | CAP_NET_RAW
        foreach (var node in new[] { lb1, lb2 })
        {
            var (uid, capEff) = UnprivilegedLb.Status(node.Pid);
            output.WriteLine($"{node.Name} pid {node.Pid}: uid {uid}, CapEff {capEff:x16}");
            Assert.NotEqual(0, uid);
            Assert.Equal(user.Uid, uid);
            Assert.Equal(expected, capEff);
            // ProtectSystem=strict as the unit has it: /var/tmp (world-writable on the host) is read-only for lb.
            Assert.Contains("Read-only file system", UnprivilegedLb.TryCreateAsUserIn(node.Pid, $"/var/tmp/lb-{node.Name}-must-not-write"));
            Assert.Equal("", UnprivilegedLb.TryCreateAsUserIn(node.Pid, Path.Combine(user.Home, $"{node.Name}-may-write")));
        }

        // Serving: lb1 (150) takes the VIP with `ip addr add` run as the user, and answers on port 80 through it.
        Assert.True(lab.WaitForSoleMaster("lb1", TimeSpan.FromSeconds(20)), $"lb1 should hold the VIP alone; holders: [{lab.VipHolders()}]");
        Assert.True(lab.WarmUp(LbProcessLab.Lb1Ip, Port), "lb1 does not answer on its own address, port 80");
        Assert.True(lab.WarmUp(LbProcessLab.Lb2Ip, Port), "lb2 does not answer on its own address, port 80");
        var answers = Enumerable.Range(0, 20).Select(_ => lab.Client.Get(Vip, "/app1/unprivileged")).ToList();
        Assert.All(answers, a => Assert.True(a.Ok, $"{a.Status} {a.Failure} {a.Body}"));
        Assert.All(answers, a => Assert.Equal(LbProcessLab.Lb1Ip, a.Via));

        // Failing over: SIGKILL lb1 (by PID) while the client loops on the VIP; lb2 adds the VIP and announces it by
        // gratuitous ARP (without it the client would keep lb1's MAC, where nothing listens any more).
        var client = lab.Client;
        var loop = client.Loop(Vip, "/app1/", TimeSpan.FromSeconds(8), TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(ProbeTimeoutMs));
        Assert.True(Lab.WaitFor(() => client.Probes.Any(p => p.Node == "lb1"), TimeSpan.FromSeconds(8)), "the VIP is not answered via lb1");
        Thread.Sleep(300);
        long killedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        lb1.Signal(LabProcess.SigKill);
        Assert.True(loop.Wait(TimeSpan.FromSeconds(25)), "client loop did not finish");
        var probes = client.Probes.ToList();
        var handover = Handover.Measure(probes, killedAt, "lb2");
        handover.Report(output, "lb run as non-root (3 ambient capabilities): SIGKILL master", "as root: 3.34 s");
        foreach (var (ms, took, why) in client.Failures.Where(f => f.Ms >= killedAt).TakeLast(3))
            output.WriteLine($"  failed at +{ms - killedAt} ms after {took} ms: {why}");
        // RFC 5798 §6.1 Master_Down_Interval of lb2 (102 with track_self) at 1 s: 3.6 s, plus the VIP add and ARP.
        handover.AssertGapWithin(TimeSpan.FromMilliseconds(3602 + 500), output);
        Assert.True(lab.Lab.HasVip(lab.N2), $"lb2 should hold the VIP; holders: [{lab.VipHolders()}]");
        Assert.Contains(lb2.Lines, l => l.Contains("vrrp lb2: Backup -> Master"));
        Assert.DoesNotContain(lb2.Lines, l => l.Contains("VRRP vrid"));   // no `ip addr` error, no failed ARP
        var beforeKill = probes.Where(p => p.Ms < killedAt).ToList();
        var afterTakeover = probes.Where(p => p.Ms > handover.FirstAnswerFromNewMs).ToList();
        Assert.All(beforeKill, p => Assert.Equal("lb1", p.Node));
        // Once lb2 answers, nothing reaches lb1 again. One connection attempt may still go unanswered: in one CI run
        // 1 of 273 did (a lost SYN, which a real client retransmits after 1 s, while this client gives up at 250 ms).
        Assert.All(afterTakeover.Where(p => p.Node is not null), p => Assert.Equal("lb2", p.Node));
        // A probe that failed while this machine stood still (MachineStalls, around its 250 ms timeout) measured the
        // machine, not lb: on a busy CI machine 2 of 353 did. Those are printed and not held against lb.
        bool FrozenAround(Probe p) => MachineStalls.FrozenBetween(p.Ms - ProbeTimeoutMs, p.Ms + ProbeTimeoutMs) > TimeSpan.Zero;
        foreach (var p in afterTakeover.Where(p => p.Node is null && FrozenAround(p)))
            output.WriteLine($"  failed at +{p.Ms - killedAt} ms while the machine stood still: not counted ({p.Why})");
        var failedByLb = afterTakeover.Count(p => p.Node is null && !FrozenAround(p));
        Assert.True(failedByLb <= 1, $"{failedByLb} of {afterTakeover.Count} requests failed after lb2 took over, with the machine running");

        // What it wrote, it wrote as the user: lb1's access log has the requests it served, its cache folder exists.
        var log = File.ReadAllLines(Path.Combine(user.Home, "lb1-access.log"));
        Assert.Contains(log, l => l.Contains("/app1/unprivileged"));
        Assert.True(Directory.Exists(Path.Combine(user.Home, "lb1-cache")), "lb1's disk cache folder was not created");
        Assert.Equal(user.Uid, OwnerUid(Path.Combine(user.Home, "lb1-access.log")));

        Lb.Tests.Reliability.Record("privilege",
            $"lb pair as non-root {UnprivilegedLb.User}, CAP_NET_BIND_SERVICE/RAW/ADMIN only, read-only fs: serves on :80, SIGKILL master, backup takes the VIP",
            cases: 1, faults: 1, requests: answers.Count + probes.Count, failed: beforeKill.Count(p => p.Node is null) + afterTakeover.Count(p => p.Node is null));
    }

    static int OwnerUid(string path)
    {
        var r = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true })!;
        var text = r.StandardOutput.ReadToEnd();
        r.WaitForExit();
        return int.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
