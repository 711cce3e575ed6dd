using Xunit;
using Xunit.Abstractions;

namespace Lb.Vrrp.Tests;

/// <summary>
/// End to end in network namespaces: lb VRRP nodes (VrrpPeer processes) and real keepalived on one bridge, a client
/// probing the VIP's TCP port every ~20 ms. Needs root; skipped with the reason otherwise (CI runs as root).
/// Timings go to the test output and, when LB_VRRP_TIMINGS names a file, are appended there (bench/vrrp-timings.md).
/// </summary>
[Collection("netns")]
public sealed class FailoverTests(ITestOutputHelper output)
{
    static readonly TimeSpan Election = TimeSpan.FromSeconds(12);
    const string Lb1 = "192.0.2.11", Lb2 = "192.0.2.12", ClientIp = "192.0.2.1";

    static long NowMs => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    Lab NewLab(out string n1, out string n2, out string client)
    {
        Skip.If(Lab.Unavailable() is not null, Lab.Unavailable());
        var lab = new Lab(output);
        n1 = lab.AddHost("n1", Lb1);
        n2 = lab.AddHost("n2", Lb2);
        client = lab.AddHost("c", ClientIp);
        return lab;
    }

    static LabProcess StartClient(Lab lab, string ns, int durationMs) =>
        lab.StartPeer(ns, "client", "client", "--target", $"{Lab.Vip}:8080", "--duration-ms", durationMs.ToString());

    /// <summary>Starts the client, waits for <paramref name="master"/> to answer, fires <paramref name="failover"/>, measures.</summary>
    Handover Measure(Lab lab, string clientNs, string master, string successor, Action failover, int durationMs = 8000)
    {
        var client = StartClient(lab, clientNs, durationMs);
        Assert.NotNull(client.WaitForLine(l => l.EndsWith($"ok {master}"), TimeSpan.FromSeconds(8)));
        Thread.Sleep(300);
        long at = NowMs;
        failover();
        Assert.True(client.WaitForExit(TimeSpan.FromMilliseconds(durationMs + 10_000)), "client did not finish");
        return Handover.Measure(Probe.Parse(client.Lines), at, successor);
    }

    void Report(string scenario, Handover h, string reference) => h.Report(output, "" + scenario, reference);

    void AssertGap(Handover h, TimeSpan max) => h.AssertGapWithin(max, output);

    [SkippableFact]
    public void Sigkill_of_the_lb_master_moves_the_vip_within_master_down_interval_and_a_restart_removes_the_stale_vip()
    {
        using var lab = NewLab(out var n1, out var n2, out var c);
        var lb1 = lab.StartLb(n1, "lb1", 150);
        lab.StartLb(n2, "lb2", 100);
        Assert.True(Lab.WaitFor(() => lab.HasVip(n1) && !lab.HasVip(n2), Election), "lb1 (150) should be master");

        var h = Measure(lab, c, "lb1", "lb2", () => lb1.Signal(LabProcess.SigKill));
        Report("lb ⇄ lb, v3 1 s, SIGKILL master", h, "keepalived ≈ 3.1 s");
        // RFC 5798 §6.1: Master_Down_Interval of priority 100 at 1 s = 3.61 s, plus VIP add and gratuitous ARP.
        AssertGap(h, TimeSpan.FromSeconds(4));

        Assert.True(lab.HasVip(n1), "SIGKILL leaves the VIP on lb1's interface, as it does with keepalived");
        var restarted = lab.StartLb(n1, "lb1again", 150);
        Assert.NotNull(restarted.WaitForLine(l => l.Contains("removing stale VIP(s) 192.0.2.100/24"), TimeSpan.FromSeconds(10)));
        Assert.True(Lab.WaitFor(() => lab.HasVip(n1) && !lab.HasVip(n2), Election), "restarted lb1 preempts and lb2 releases");
    }

    [SkippableFact]
    public void Sigterm_on_the_lb_master_hands_over_in_well_under_a_second_without_losing_a_request()
    {
        using var lab = NewLab(out var n1, out var n2, out var c);
        var lb1 = lab.StartLb(n1, "lb1", 150);
        var lb2 = lab.StartLb(n2, "lb2", 100);
        Assert.True(Lab.WaitFor(() => lab.HasVip(n1) && !lab.HasVip(n2), Election));

        var h = Measure(lab, c, "lb1", "lb2", () => lb1.Signal(LabProcess.SigTerm), durationMs: 4000);
        Report("lb ⇄ lb, v3 1 s, SIGTERM master (priority 0)", h, "keepalived ≈ 0.64 s, 2 failed requests");
        // Skew_Time of priority 100 at 1 s = 0.61 s (RFC 5798 §6.1).
        AssertGap(h, TimeSpan.FromSeconds(1));
        h.AssertNoRequestLostButAtTheArpMove(output);
        Assert.True(lb1.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.Contains(lb1.Lines, l => l.Contains("Master -> Releasing (shutdown: sent priority 0)"));
        Assert.Contains(lb2.Lines, l => l.Contains("Backup -> Master (master sent priority 0, Skew_Time elapsed)"));
        Assert.False(lab.HasVip(n1));
    }

    [SkippableFact]
    public void With_v3_and_a_100_ms_interval_sigkill_of_the_master_moves_the_vip_within_half_a_second()
    {
        using var lab = NewLab(out var n1, out var n2, out var c);
        var lb1 = lab.StartLb(n1, "lb1", 150, "--advert-ms", "100");
        lab.StartLb(n2, "lb2", 100, "--advert-ms", "100");
        Assert.True(Lab.WaitFor(() => lab.HasVip(n1) && !lab.HasVip(n2), Election));

        var h = Measure(lab, c, "lb1", "lb2", () => lb1.Signal(LabProcess.SigKill), durationMs: 3000);
        Report("lb ⇄ lb, v3 100 ms, SIGKILL master", h, "target ≤ 0.5 s");
        // Master_Down_Interval = 300 ms + 156/256 × 100 ms = 361 ms.
        AssertGap(h, TimeSpan.FromMilliseconds(500));
    }

    [SkippableFact]
    public void Unicast_peers_elect_one_master_and_fail_over_without_multicast()
    {
        using var lab = NewLab(out var n1, out var n2, out var c);
        var lb1 = lab.StartLb(n1, "lb1", 150, "--peer", Lb2);
        var lb2 = lab.StartLb(n2, "lb2", 100, "--peer", Lb1);
        Assert.True(Lab.WaitFor(() => lab.HasVip(n1) && !lab.HasVip(n2), Election));
        // Whichever started first may have been master for a moment; from now on lb2 must stay backup for longer
        // than its Master_Down_Interval, i.e. it hears lb1's unicast adverts.
        int settled = lb2.Lines.Count();
        Thread.Sleep(4000);
        Assert.True(lab.HasVip(n1) && !lab.HasVip(n2));
        Assert.DoesNotContain(lb2.Lines.Skip(settled), l => l.Contains("-> Master"));

        var h = Measure(lab, c, "lb1", "lb2", () => lb1.Signal(LabProcess.SigTerm), durationMs: 4000);
        Report("lb ⇄ lb, v3 1 s unicast, SIGTERM master", h, "keepalived ≈ 0.64 s");
        AssertGap(h, TimeSpan.FromSeconds(1));
        h.AssertNoRequestLostButAtTheArpMove(output);
    }

    static string KeepalivedConfig(string name, int version, int priority, bool auth) => $$"""
        global_defs {
          router_id {{name}}
          vrrp_version {{version}}
          vrrp_garp_master_delay 1
          vrrp_garp_master_repeat 3
          script_user root
          enable_script_security
        }
        vrrp_instance VI_1 {
          state BACKUP
          interface eth0
          virtual_router_id 51
          priority {{priority}}
          advert_int 1
          {{(auth ? "authentication {\n    auth_type PASS\n    auth_pass lab1234\n  }" : "")}}
          virtual_ipaddress {
            {{Lab.Vip}}/24 dev eth0
          }
        }
        """;

    [SkippableTheory]
    [InlineData(LabProcess.SigKill)]
    [InlineData(LabProcess.SigTerm)]
    public void Keepalived_150_is_master_over_lb_100_with_v2_auth_and_lb_takes_over_when_it_dies(int signal)
    {
        Skip.If(Lab.KeepalivedUnavailable() is not null, Lab.KeepalivedUnavailable());
        using var lab = NewLab(out var n1, out var n2, out var c);
        var (ka, pidIndex) = lab.StartKeepalived(n1, "ka", KeepalivedConfig("ka", 2, 150, auth: true));
        Assert.True(Lab.WaitFor(() => lab.HasVip(n1), Election), "keepalived alone becomes master");
        var lb = lab.StartLb(n2, "lb", 100, "--version", "2", "--auth", "lab1234");
        Assert.NotNull(lb.WaitForLine(l => l.Contains("Initialize -> Backup"), TimeSpan.FromSeconds(10)));
        Thread.Sleep(4000); // longer than lb's Master_Down_Interval: it must stay backup while keepalived advertises
        Assert.True(lab.HasVip(n1) && !lab.HasVip(n2), "keepalived (150) stays master, lb (100) backup");
        Assert.DoesNotContain(lb.Lines, l => l.Contains("dropped a packet"));

        var h = Measure(lab, c, "ka", "lb", signal == LabProcess.SigKill
            ? () => lab.CrashKeepalived(ka, pidIndex)
            : () => ka.Signal(LabProcess.SigTerm));
        Report($"keepalived → lb, v2 auth 1 s, {(signal == LabProcess.SigKill ? "SIGKILL" : "SIGTERM")} keepalived", h,
            signal == LabProcess.SigKill ? "keepalived ≈ 3.1 s" : "keepalived ≈ 0.64 s");
        AssertGap(h, signal == LabProcess.SigKill ? TimeSpan.FromSeconds(4) : TimeSpan.FromSeconds(1));
        Assert.True(lab.HasVip(n2));
    }

    [SkippableTheory]
    [InlineData(LabProcess.SigKill)]
    [InlineData(LabProcess.SigTerm)]
    public void Lb_150_is_master_over_keepalived_100_with_v3_and_keepalived_takes_over_when_it_dies(int signal)
    {
        Skip.If(Lab.KeepalivedUnavailable() is not null, Lab.KeepalivedUnavailable());
        using var lab = NewLab(out var n1, out var n2, out var c);
        var (ka, _) = lab.StartKeepalived(n2, "ka", KeepalivedConfig("ka", 3, 100, auth: false));
        Assert.True(Lab.WaitFor(() => lab.HasVip(n2), Election), "keepalived alone becomes master");
        var lb = lab.StartLb(n1, "lb", 150);
        Assert.True(Lab.WaitFor(() => lab.HasVip(n1) && !lab.HasVip(n2), Election), "lb (150) preempts keepalived (100)");
        Assert.NotNull(ka.WaitForLine(l => l.Contains("Entering BACKUP STATE"), TimeSpan.FromSeconds(5)));
        Assert.DoesNotContain(lb.Lines, l => l.Contains("dropped a packet"));

        var h = Measure(lab, c, "lb", "ka", () => lb.Signal(signal), durationMs: 7000);
        Report($"lb → keepalived, v3 1 s, {(signal == LabProcess.SigKill ? "SIGKILL" : "SIGTERM")} lb", h,
            signal == LabProcess.SigKill ? "keepalived ≈ 3.1 s" : "keepalived ≈ 0.64 s, 2 failed requests");
        AssertGap(h, signal == LabProcess.SigKill ? TimeSpan.FromSeconds(4) : TimeSpan.FromSeconds(1));
        if (signal == LabProcess.SigTerm) h.AssertNoRequestLostButAtTheArpMove(output);
        Assert.True(lab.HasVip(n2));
    }
}

/// <summary>Tracking end to end: a failing track_script and a tracked interface going down move the VIP.</summary>
[Collection("netns")]
public sealed class TrackingFailoverTests(ITestOutputHelper output)
{
    static readonly TimeSpan Election = TimeSpan.FromSeconds(12);

    [SkippableFact]
    public void A_failing_tracked_script_with_weight_minus_60_moves_the_vip_to_the_backup()
    {
        Skip.If(Lab.Unavailable() is not null, Lab.Unavailable());
        using var lab = new Lab(output);
        var n1 = lab.AddHost("n1", "192.0.2.11");
        var n2 = lab.AddHost("n2", "192.0.2.12");
        var c = lab.AddHost("c", "192.0.2.1");
        var flag = Path.Combine(lab.Dir, "fail");
        var lb1 = lab.StartLb(n1, "lb1", 150, "--track-script", $"test ! -e {flag}", "--track-weight", "-60",
            "--track-rise", "2", "--track-fall", "2", "--track-interval-ms", "1000");
        lab.StartLb(n2, "lb2", 100);
        Assert.True(Lab.WaitFor(() => lab.HasVip(n1) && !lab.HasVip(n2), Election));

        var client = lab.StartPeer(c, "client", "client", "--target", $"{Lab.Vip}:8080", "--duration-ms", "6000");
        Assert.NotNull(client.WaitForLine(l => l.EndsWith("ok lb1"), TimeSpan.FromSeconds(8)));
        long at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        File.WriteAllText(flag, "");
        Assert.True(client.WaitForExit(TimeSpan.FromSeconds(20)));
        var h = Handover.Measure(Probe.Parse(client.Lines), at, "lb2");
        var line = $"| lb ⇄ lb, v3 1 s, tracked script fails (fall 2, weight −60) | {h.Gap?.TotalMilliseconds.ToString("0") ?? "never"} ms | {h.FailedRequests} of {h.Requests} | keepalived ≈ 4.1 s |";
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("LB_VRRP_TIMINGS") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
        // fall 2 at 1 s = up to 2 s of failures, then the master advertises 90 at once and lb2 (100) preempts.
        Assert.NotNull(h.Gap);
        Assert.InRange(h.Gap!.Value, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(3));
        Assert.Contains(lb1.Lines, l => l.Contains("is down; priority 90"));
        Assert.True(lab.HasVip(n2) && !lab.HasVip(n1));
    }

    [SkippableFact]
    public void A_tracked_interface_going_down_puts_the_master_in_fault_and_the_backup_takes_over_within_skew_time()
    {
        Skip.If(Lab.Unavailable() is not null, Lab.Unavailable());
        using var lab = new Lab(output);
        var n1 = lab.AddHost("n1", "192.0.2.11");
        var n2 = lab.AddHost("n2", "192.0.2.12");
        var c = lab.AddHost("c", "192.0.2.1");
        // eth1: lb1's backend-side link, a veth whose peer (eth1p) stays inside n1 so the test can cut it.
        Lab.Ip("-n", n1, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p");
        Lab.Ip("-n", n1, "link", "set", "eth1", "up");
        Lab.Ip("-n", n1, "link", "set", "eth1p", "up");
        var lb1 = lab.StartLb(n1, "lb1", 150, "--track-interface", "eth1");
        lab.StartLb(n2, "lb2", 100);
        Assert.True(Lab.WaitFor(() => lab.HasVip(n1) && !lab.HasVip(n2), Election));

        var client = lab.StartPeer(c, "client", "client", "--target", $"{Lab.Vip}:8080", "--duration-ms", "4000");
        Assert.NotNull(client.WaitForLine(l => l.EndsWith("ok lb1"), TimeSpan.FromSeconds(8)));
        long at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Lab.Ip("-n", n1, "link", "set", "eth1p", "down");
        Assert.True(client.WaitForExit(TimeSpan.FromSeconds(20)));
        var h = Handover.Measure(Probe.Parse(client.Lines), at, "lb2");
        var line = $"| lb ⇄ lb, v3 1 s, tracked interface down on master | {h.Gap?.TotalMilliseconds.ToString("0") ?? "never"} ms | {h.FailedRequests} of {h.Requests} | keepalived ≈ 3.1 s |";
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("LB_VRRP_TIMINGS") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
        // FAULT sends priority 0 (Skew_Time 0.61 s for priority 100) after link polling (100 ms); the client
        // probes every 250 ms with a 250 ms timeout. The bound leaves room for a loaded 2-core CI machine and still
        // beats keepalived's 3.1 s (Master_Down_Interval) by a second.
        Assert.NotNull(h.Gap);
        Assert.InRange(h.Gap!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        Assert.Contains(lb1.Lines, l => l.Contains("Master -> Fault (tracked interface eth1 is down)"));
        Assert.False(lab.HasVip(n1));
    }
}
