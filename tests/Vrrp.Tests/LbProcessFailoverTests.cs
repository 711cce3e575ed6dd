using System.Diagnostics;
using System.Net;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Vrrp.Tests;

/// <summary>
/// VRRP as lb runs it: whole `lb run -c FILE` processes (lb.dll), one per network namespace, each with a generated
/// TOML config (plain HTTP on *:8080, app1 → one backend, [vrrp] on eth0 with priorities 150/100 and
/// track_self weight 2, effective 152/102). A client in its own namespace sends a bounded loop of
/// `GET http://192.0.2.100:8080/app1/` on fresh connections; the backend answers with the address of the lb node that
/// forwarded the request, so every answer says which node served it. Needs root (skipped with the reason otherwise;
/// CI runs as root). Timings go to the test output and, when LB_VRRP_TIMINGS names a file, are appended there.
/// </summary>
[Collection("netns")]
public sealed class LbProcessFailoverTests(ITestOutputHelper output)
{
    static readonly TimeSpan Election = TimeSpan.FromSeconds(20);
    const int Lb1Priority = 150, Lb2Priority = 100, TrackSelfWeight = 2;

    static long NowMs => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>RFC 5798 §6.1 Master_Down_Interval of a backup with <paramref name="priority"/>.</summary>
    static TimeSpan MasterDownInterval(int priority, TimeSpan advert) => 3 * advert + SkewTime(priority, advert);
    static TimeSpan SkewTime(int priority, TimeSpan advert) => (256 - priority) / 256.0 * advert;

    LbProcessLab NewLab()
    {
        Skip.If(Lab.Unavailable() is not null, Lab.Unavailable());
        return new LbProcessLab(output);
    }

    /// <summary>Starts lb1 (150) and lb2 (100) and waits until lb1 alone holds the VIP and both serve warm.</summary>
    static (LabProcess Lb1, LabProcess Lb2) StartPair(LbProcessLab lab, int advertMs)
    {
        var lb1 = lab.StartLb("lb1", LbProcessLab.Config("lb1", Lb1Priority, advertMs, TrackSelfWeight));
        var lb2 = lab.StartLb("lb2", LbProcessLab.Config("lb2", Lb2Priority, advertMs, TrackSelfWeight));
        Assert.True(lab.WaitForSoleMaster("lb1", Election), $"lb1 (150) should hold the VIP alone; holders: [{lab.VipHolders()}]");
        Assert.True(lab.WarmUp(LbProcessLab.Lb1Ip), "lb1 does not answer on its own address");
        Assert.True(lab.WarmUp(LbProcessLab.Lb2Ip), "lb2 does not answer on its own address");
        return (lb1, lb2);
    }

    /// <summary>Runs the client loop, waits for <paramref name="master"/> to answer, fires <paramref name="failover"/>, measures.</summary>
    (Handover Handover, IReadOnlyList<Probe> Probes, long EventMs) Measure(LbProcessLab lab, string master, string successor,
        Action failover, TimeSpan duration, TimeSpan? requestTimeout = null)
    {
        var client = lab.Client;
        using var dump = Tcpdump(lab, "measure");
        var loop = client.Loop(LbProcessLab.VipEndpoint, "/app1/", duration, TimeSpan.FromMilliseconds(10), requestTimeout);
        Assert.True(Lab.WaitFor(() => client.Probes.Any(p => p.Node == master), TimeSpan.FromSeconds(8)),
            $"the VIP is not answered via {master}: {Summary(client.Probes.ToList())}");
        Thread.Sleep(300);
        long at = NowMs;
        failover();
        Assert.True(loop.Wait(duration + TimeSpan.FromSeconds(15)), "client loop did not finish");
        var probes = client.Probes.ToList();
        PrintClient(client, probes, at, master, successor);
        return (Handover.Measure(probes, at, successor), probes, at);
    }

    /// <summary>What the client saw after <paramref name="at"/>: runs of answers, the slowest request, failures.</summary>
    void PrintClient(NetnsHttpClient client, IReadOnlyList<Probe> probes, long at, string from, string to)
    {
        output.WriteLine($"client after the event: {Summary(probes.Where(p => p.Ms >= at).ToList())}");
        if (client.Durations.Where(d => d.Ms >= at).OrderByDescending(d => d.TookMs).FirstOrDefault() is { Ms: > 0 } slowest)
            output.WriteLine($"  slowest request after the event: {slowest.TookMs} ms, finished at +{slowest.Ms - at} ms");
        foreach (var (ms, took, why) in client.Failures.Where(f => f.Ms >= at).Take(5))
            output.WriteLine($"  failed at +{ms - at} ms after {took} ms: {why}");
        if (probes.FirstOrDefault(p => p.Ms >= at && p.Node == to) is { } first)
            output.WriteLine($"  last answer via {from} at +{probes.LastOrDefault(p => p.Ms >= at && p.Ms <= first.Ms && p.Node == from)?.Ms - at} ms, " +
                $"first via {to} at +{first.Ms - at} ms");
    }

    /// <summary>
    /// With LB_LAB_TCPDUMP=PREFIX, captures ARP and port 8080 on the client's eth0 into PREFIX.LABEL.UNIXMS.pcap until
    /// disposed (diagnostics for a failed handover; off by default).
    /// </summary>
    IDisposable? Tcpdump(LbProcessLab lab, string label)
    {
        if (Environment.GetEnvironmentVariable("LB_LAB_TCPDUMP") is not { Length: > 0 } prefix) return null;
        var file = $"{prefix}.{label}.{NowMs}.pcap";
        var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])["netns", "exec", lab.ClientNs, "tcpdump", "-i", "eth0", "-e", "-nn", "-U", "-w", file, "arp or tcp port 8080"])
            psi.ArgumentList.Add(a);
        var dump = new LabProcess("tcpdump", Process.Start(psi)!, output);
        dump.Capture();
        dump.WaitForLine(l => l.Contains("listening on"), TimeSpan.FromSeconds(5));
        output.WriteLine($"tcpdump → {file}");
        return dump; // Dispose: SIGKILL by PID; -U has flushed every packet
    }

    /// <summary>Runs of consecutive results, like "lb1×41 fail×3 lb2×120".</summary>
    static string Summary(IReadOnlyList<Probe> probes)
    {
        var runs = new List<(string What, int Count)>();
        foreach (var p in probes)
        {
            var what = p.Node ?? "fail";
            if (runs.Count > 0 && runs[^1].What == what) runs[^1] = (what, runs[^1].Count + 1);
            else runs.Add((what, 1));
        }
        return string.Join(" ", runs.Select(r => $"{r.What}×{r.Count}"));
    }

    void Report(string scenario, Handover h, string reference) => h.Report(output, "lb run: " + scenario, reference);

    void AssertGap(Handover h, TimeSpan max) => h.AssertGapWithin(max, output);

    // 1. Both up: lb1 holds the VIP, and requests to the VIP are forwarded by lb1.
    [SkippableFact]
    public void Both_up_lb1_holds_the_vip_and_requests_to_it_are_forwarded_by_lb1()
    {
        using var lab = NewLab();
        var (_, lb2) = StartPair(lab, 1000);
        var addresses = Lab.Ip("-n", lab.N1, "-o", "-4", "addr", "show", "dev", "eth0");
        output.WriteLine("ip -n lb1 addr: " + addresses.Trim());
        Assert.Contains($"inet {Lab.Vip}/24", addresses);
        Assert.DoesNotContain(Lab.Vip, Lab.Ip("-n", lab.N2, "-o", "-4", "addr", "show", "dev", "eth0"));

        int hitsBefore = lab.Backend.Hits.Count;
        var answers = Enumerable.Range(0, 20).Select(_ => lab.Client.Get(LbProcessLab.VipEndpoint, "/app1/hello")).ToList();
        Assert.All(answers, a => Assert.True(a.Ok, $"{a.Status} {a.Failure} {a.Body}"));
        Assert.All(answers, a => Assert.Equal(LbProcessLab.Lb1Ip, a.Via));
        var hits = lab.Backend.Hits.Skip(hitsBefore).ToList();
        Assert.Equal(20, hits.Count);
        Assert.All(hits, h => Assert.Equal(LbProcessLab.Lb1Ip, h.Peer));
        Assert.All(hits, h => Assert.Contains(LbProcessLab.ClientIp, h.ForwardedFor ?? ""));
        output.WriteLine("backend saw: " + answers[0].Body.Trim());

        // Stable: lb2 hears lb1's adverts for longer than its Master_Down_Interval (3.6 s) and stays backup.
        int settled = lb2.Lines.Count();
        Thread.Sleep(4500);
        Assert.Equal("lb1", lab.VipHolders());
        Assert.DoesNotContain(lb2.Lines.Skip(settled), l => l.Contains("-> Master"));
    }

    // 2. SIGKILL of the master: lb2 takes the VIP within Master_Down_Interval (+ margin).
    [SkippableTheory]
    [InlineData(1000)]
    [InlineData(100)]
    public void Sigkill_of_the_master_moves_the_vip_to_lb2_within_master_down_interval(int advertMs)
    {
        using var lab = NewLab();
        var (lb1, lb2) = StartPair(lab, advertMs);
        var advert = TimeSpan.FromMilliseconds(advertMs);
        Task<TimeSpan>? exited = null;
        var (h, _, _) = Measure(lab, "lb1", "lb2", () =>
        {
            var clock = Stopwatch.StartNew();
            lb1.Signal(LabProcess.SigKill);
            exited = Task.Run(() => lb1.WaitForExit(TimeSpan.FromSeconds(10)) ? clock.Elapsed : TimeSpan.MaxValue);
        }, advertMs >= 1000 ? TimeSpan.FromSeconds(8) : TimeSpan.FromSeconds(3),
        // As FailoverTests' client: give up on a request after 250 ms, so one request stuck on the dying node (seen
        // once under a loaded full test run: 585 ms to EOF) does not hide the moment lb2 answers.
        requestTimeout: TimeSpan.FromMilliseconds(250));
        output.WriteLine($"lb1 gone {exited!.Result.TotalMilliseconds:0} ms after SIGKILL");
        var mdi = MasterDownInterval(Lb2Priority + TrackSelfWeight, advert);
        Report($"v3 {advertMs} ms, SIGKILL master", h,
            advertMs >= 1000 ? $"keepalived ≈ 3.1 s; Master_Down_Interval {mdi.TotalMilliseconds:0} ms" : $"target ≤ 0.5 s; Master_Down_Interval {mdi.TotalMilliseconds:0} ms");
        // 1 s: MDI 3.60 s plus the VIP add and gratuitous ARP (0.5 s margin). 100 ms: the issue's bound, 0.5 s.
        AssertGap(h, advertMs >= 1000 ? mdi + TimeSpan.FromMilliseconds(500) : TimeSpan.FromMilliseconds(500));
        Assert.True(lab.Lab.HasVip(lab.N2), $"lb2 should hold the VIP; holders: [{lab.VipHolders()}]");
        Assert.Contains(lb2.Lines, l => l.Contains("vrrp lb2: Backup -> Master (no advertisement for Master_Down_Interval)"));
    }

    // 3. SIGTERM of the master: priority 0, handover well under a second, and lb1 serves until lb2 has the VIP.
    [SkippableTheory]
    [InlineData(1000)]
    [InlineData(100)]
    public void Sigterm_of_the_master_hands_over_with_priority_0_and_the_client_loses_no_request(int advertMs)
    {
        using var lab = NewLab();
        var (lb1, lb2) = StartPair(lab, advertMs);
        var advert = TimeSpan.FromMilliseconds(advertMs);
        var (h, probes, at) = Measure(lab, "lb1", "lb2", () => lb1.Signal(LabProcess.SigTerm), TimeSpan.FromSeconds(4));
        var skew = SkewTime(Lb2Priority + TrackSelfWeight, advert);
        int servedByLb1After = probes.Count(p => p.Ms >= at && p.Node == "lb1");
        Report($"v3 {advertMs} ms, SIGTERM master (priority 0)", h,
            $"keepalived ≈ 0.64 s, 2 failed requests; Skew_Time {skew.TotalMilliseconds:0} ms; lb1 answered {servedByLb1After} after SIGTERM");

        Assert.True(lb1.WaitForExit(TimeSpan.FromSeconds(15)), "lb1 did not exit after SIGTERM");
        Assert.Contains(lb1.Lines, l => l.Contains("vrrp lb1: Master -> Releasing (shutdown: sent priority 0)"));
        Assert.Contains(lb2.Lines, l => l.Contains("vrrp lb2: Backup -> Master (master sent priority 0, Skew_Time elapsed)"));
        AssertGap(h, advertMs >= 1000 ? TimeSpan.FromSeconds(1) : TimeSpan.FromMilliseconds(500));
        // The claim: lb1's listeners keep serving while it hands over, so no client request fails but, at most, the one
        // whose handshake straddles lb2's gratuitous ARP (seen once in CI: "lb1×47 fail×1 lb2×238", reset 2 ms after
        // it started, between lb1's last answer and lb2's first). The client reads Content-Length bytes, like curl. A
        // client that reads to EOF instead also loses the request whose response lb1 sent just before the ARP: its ACK
        // reaches lb2, which answers RST (1 ConnectionReset per handover in 8 of 12 runs at 1 s, 1 of 12 at 100 ms).
        Assert.True(servedByLb1After > 0, "lb1 answered nothing after SIGTERM: its listeners stopped before the handover");
        h.AssertNoRequestLostButAtTheArpMove(output);
        Assert.Equal("lb2", lab.VipHolders());
    }

    // SRC BUG: a response still in flight on the stopping master is lost; the issue asks that lb "lose no client
    // request on SIGTERM". Repro (this test): lb1 master, a client GETs /app1/slow?ms=1500&bytes=262144 through the VIP
    // (the backend answers 1.5 s later with 256 KB), lb1 gets SIGTERM 0.2 s later. lb2 takes over after Skew_Time
    // (~0.6 s) and its gratuitous ARP moves the VIP's MAC to lb2; lb1 drops the VIP 0.5 s after lb2's first advert,
    // then Kestrel drains. The backend's answer reaches lb1 at 1.5 s, after lb1 dropped the VIP: lb1 can no longer
    // send from that address (tcpdump in the client namespace shows not one packet of the response) and the client
    // times out after 10 s (in other runs it gets ConnectionReset at ~1.6 s). With ms=900 (the answer comes after
    // lb2's ARP, before lb1 drops the VIP) lb1 sends the first window, the client's ACK goes to lb2's MAC, lb2 has no
    // such connection and answers RST: ConnectionReset. So every request whose response is not complete when lb2's
    // gratuitous ARP lands is lost (keepalived loses them too). Fixing it needs the old master's established
    // connections to keep working (the new master passing their segments back during a grace period, or the like),
    // not only new connections going to the new master.
    [SkippableFact]
    public void Sigterm_while_a_slow_response_is_in_flight_the_response_still_reaches_the_client()
    {
        using var lab = NewLab();
        var (lb1, lb2) = StartPair(lab, 1000);
        using var dump = Tcpdump(lab, "slow");
        var clock = Stopwatch.StartNew();
        var slow = lab.Client.StartGet(LbProcessLab.VipEndpoint, "/app1/slow?ms=1500&bytes=262144", TimeSpan.FromSeconds(10));
        Assert.True(Lab.WaitFor(() => lab.Backend.Hits.Any(h => h.Target.Contains("/slow")), TimeSpan.FromSeconds(5)),
            "the slow request did not reach the backend");
        Thread.Sleep(200);
        lb1.Signal(LabProcess.SigTerm);
        Assert.True(slow.Wait(TimeSpan.FromSeconds(20)), "the slow request did not finish");
        var answer = slow.Result;
        output.WriteLine($"slow request after {clock.ElapsedMilliseconds} ms: status {answer.Status}, {answer.Body.Length} body bytes, " +
            $"failure: {answer.Failure ?? "none"}; via {answer.Via ?? "?"}");
        Assert.NotNull(lb2.WaitForLine(l => l.Contains("vrrp lb2: Backup -> Master"), TimeSpan.FromSeconds(5)));
        Assert.True(answer.Ok, $"the response in flight on lb1 was lost at the handover: {answer.Failure}");
        Assert.Equal(LbProcessLab.Lb1Ip, answer.Via);
    }

    // 4. Restart after SIGKILL: lb1 finds its stale VIP, removes it and says so, then preempts (152 > 102).
    [SkippableFact]
    public void Restarted_after_sigkill_lb1_removes_its_stale_vip_and_preempts_back()
    {
        using var lab = NewLab();
        var (lb1, lb2) = StartPair(lab, 1000);
        lb1.Signal(LabProcess.SigKill);
        Assert.True(lb1.WaitForExit(TimeSpan.FromSeconds(5)));
        Assert.True(Lab.WaitFor(() => lab.Lab.HasVip(lab.N2), Election), "lb2 takes over");
        Assert.True(lab.Lab.HasVip(lab.N1), "SIGKILL leaves the VIP on lb1's eth0 (a duplicate address now)");

        var client = lab.Client;
        var loop = client.Loop(LbProcessLab.VipEndpoint, "/app1/", TimeSpan.FromSeconds(14), TimeSpan.FromMilliseconds(10));
        Assert.True(Lab.WaitFor(() => client.Probes.Any(p => p.Node == "lb2"), TimeSpan.FromSeconds(8)), "the VIP answers via lb2");
        long restartedAt = NowMs;
        var clock = Stopwatch.StartNew();
        var again = lab.StartLb("lb1", LbProcessLab.Config("lb1", Lb1Priority, 1000, TrackSelfWeight), "lb1again");
        var stale = again.WaitForLine(l => l.Contains($"removing stale VIP(s) {Lab.Vip}/24 left on eth0"), TimeSpan.FromSeconds(10));
        Assert.NotNull(stale);
        output.WriteLine($"restarted lb1 logged: {stale}");
        Assert.True(lab.WaitForSoleMaster("lb1", Election), $"restarted lb1 preempts and lb2 releases; holders: [{lab.VipHolders()}]");
        var preempted = clock.Elapsed;
        Assert.True(loop.Wait(TimeSpan.FromSeconds(30)), "client loop did not finish");

        Assert.NotNull(again.WaitForLine(l => l.Contains("vrrp lb1: Backup -> Master"), TimeSpan.FromSeconds(2)));
        Assert.NotNull(lb2.WaitForLine(l => l.Contains($"vrrp lb2: Master -> Backup (higher-priority master {LbProcessLab.Lb1Ip} (152 > 102))"),
            TimeSpan.FromSeconds(2)));
        var probes = client.Probes.ToList();
        var h = Handover.Measure(probes, restartedAt, "lb1");
        PrintClient(client, probes, restartedAt, "lb2", "lb1");
        Report("v3 1000 ms, lb1 restarted after SIGKILL: stale VIP removed, preempts back", h,
            $"VIP only on lb1 {preempted.TotalMilliseconds:0} ms after the restart (process start, then it preempts on hearing lb2 advertise 102 < 152)");
        Assert.NotNull(h.Gap);
        Assert.Equal("lb1", client.Probes.Last().Node);
    }

    // 5. `lb check -c lb1.toml --peer lb2.toml`: the failover truth table of exactly the configs the processes run.
    [Fact]
    public void Check_with_peer_prints_the_truth_table_and_flags_a_track_self_weight_too_small_to_move_the_vip()
    {
        var dir = Directory.CreateTempSubdirectory("lbcheck-").FullName;
        try
        {
            var table = Check(dir, TrackSelfWeight);
            Assert.Equal(("152", "102", "lb1", "no"), Row(table, "no failure"));
            Assert.Equal(("down", "102", "lb2", "yes"), Row(table, "lb1 down"));
            Assert.Equal(("150", "102", "lb1", "no"), Row(table, "lb1 check lb listeners fails"));
            Assert.Contains(table, l => l.Trim() ==
                "warning: lb1 check lb listeners fails never moves the VIP: lb1 still has 150 ≥ lb2's 102; make the weight's size larger than 50");

            // The ha-pair sample's weight (60) is larger than the gap: the listener failure moves the VIP, no warning.
            var fixedTable = Check(dir, 60);
            Assert.Equal(("down", "160", "lb2", "yes"), Row(fixedTable, "lb1 down"));
            Assert.Equal(("150", "160", "lb2", "yes"), Row(fixedTable, "lb1 check lb listeners fails"));
            Assert.DoesNotContain(fixedTable, l => l.Contains("warning"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    List<string> Check(string dir, int weight)
    {
        var lb1 = Path.Combine(dir, "lb1.toml");
        var lb2 = Path.Combine(dir, "lb2.toml");
        File.WriteAllText(lb1, LbProcessLab.Config("lb1", Lb1Priority, 1000, weight));
        File.WriteAllText(lb2, LbProcessLab.Config("lb2", Lb2Priority, 1000, weight));
        var command = LbProcessLab.LbCommand("check", "-c", lb1, "--peer", lb2);
        var psi = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in command[1..]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60))) { p.Kill(); throw new TimeoutException("lb check"); }
        output.WriteLine($"$ lb check -c lb1.toml --peer lb2.toml   (track_self weight {weight})\n{stdout.Result}{stderr.Result}");
        Assert.Equal(0, p.ExitCode);
        var lines = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        Assert.Contains(lines, l => l.StartsWith("vrrp failover table"));
        return lines;
    }

    /// <summary>The table row for <paramref name="failure"/>: (lb1, lb2, master, moves).</summary>
    static (string, string, string, string) Row(List<string> table, string failure)
    {
        var row = table.Select(l => l.Split('|').Select(c => c.Trim()).ToArray()).SingleOrDefault(c => c.Length == 5 && c[0] == failure);
        Assert.True(row is not null, $"no row '{failure}' in:\n{string.Join("\n", table)}");
        return (row![1], row[2], row[3], row[4]);
    }
}

/// <summary>Bugs the `lb run` lab shows that are not about VRRP itself.</summary>
[Collection("netns")]
public sealed class LbProcessForwardingTests(ITestOutputHelper output)
{
    // SRC BUG: `[listen] http = "*:8080"` (as `*:80` in samples/ha-pair) makes Kestrel listen dual-stack
    // (LbServer.ConfigureListeners → ListenAnyIP), so an IPv4 client's RemoteIpAddress is the IPv4-mapped
    // ::ffff:192.0.2.1, and ProxyEndpoint passes that text on (RequestFacts.clientAddress → X-Forwarded-For, and the
    // access log's client field) where Apache and HAProxy write 192.0.2.1. Backends that parse X-Forwarded-For as
    // IPv4 (allow lists, geo lookups, log analysis) see an IPv6 string. Fix: MapToIPv4() when IsIPv4MappedToIPv6.
    [SkippableFact]
    public void On_a_wildcard_listener_X_Forwarded_For_carries_the_ipv4_client_address_not_an_ipv4_mapped_one()
    {
        Skip.If(Lab.Unavailable() is not null, Lab.Unavailable());
        using var lab = new LbProcessLab(output);
        lab.StartLb("lb1", LbProcessLab.Config("lb1", 150));
        var answer = lab.Client.Get(new IPEndPoint(IPAddress.Parse(LbProcessLab.Lb1Ip), LbProcessLab.Port), "/app1/xff");
        Assert.True(answer.Ok, $"{answer.Status} {answer.Failure} {answer.Body}");
        var hit = Assert.Single(lab.Backend.Hits, h => h.Target.EndsWith("xff"));
        output.WriteLine($"backend saw X-Forwarded-For: {hit.ForwardedFor}");
        Assert.Equal(LbProcessLab.ClientIp, hit.ForwardedFor);
    }
}
