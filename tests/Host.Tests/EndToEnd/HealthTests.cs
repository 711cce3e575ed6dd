using System.Diagnostics;
using System.Text;
using Lb.Host.Demo;
using Lb.Host.Tests.Support;
using Lb.Tests;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Health checks and failover (issue 3, Must show): a pinned client whose server stops is redispatched to
/// another server of the app with a new cookie and sees no failure; the stopped server is marked down within
/// interval × fall (+ jitter), and up again after `rise` checks once restarted; checks carry the configured
/// request and `User-Agent: lb-healthcheck/...`; an app with no server up answers 503 with its error page.
/// Checks run every 300 ms, rise 2, fall 2, spread 5 %.
/// </summary>
public sealed class HealthTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(300);
    private const int Rise = 2;
    private const int Fall = 2;
    private const int Spread = 5;
    /// <summary>Scheduling, a check's own round trip and the 10 ms polling of the test.</summary>
    private static readonly TimeSpan Margin = TimeSpan.FromMilliseconds(400);

    private static string HealthTable(string extra = "") =>
        $"{{ interval = \"{Interval.TotalMilliseconds}ms\", timeout = \"{Timeout.TotalMilliseconds}ms\", rise = {Rise}, fall = {Fall}, spread = {Spread}{extra} }}";

    /// <summary>The longest `n` checks may take: n intervals, each moved by up to +spread %.</summary>
    private static TimeSpan Checks(int n) => Interval * n * (1 + Spread / 100.0) + Margin;

    private readonly List<IAsyncDisposable> _started = [];

    public Task InitializeAsync()
    {
        MachineStalls.Start();
        return Task.CompletedTask;
    }

    private async Task<EchoBackend[]> EchoServersAsync(string app, int count)
    {
        var servers = new EchoBackend[count];
        for (var i = 0; i < count; i++)
        {
            servers[i] = await EchoBackend.StartAsync($"{app}_{i + 1}");
            _started.Add(servers[i]);
        }
        return servers;
    }

    private static string ServerList(IEnumerable<(string Name, string Address)> servers) =>
        "servers = [\n" + string.Concat(servers.Select(s => $"  {{ name = \"{s.Name}\", address = \"{s.Address}\" }},\n")) + "]\n";

    private async Task<LbInstance> StartLbAsync(string body, IReadOnlyDictionary<string, string>? files = null)
    {
        var lb = await LbInstance.StartAsync(body, files);
        _started.Insert(0, lb);
        return lb;
    }

    /// <summary>
    /// Waits (bounded) until every server has passed a check: its counter is at rise+fall-1. A server starts up
    /// and its first failed check takes it down (HAProxy's default); in a fresh test process the first check
    /// can time out while the backend's JSON serializer warms up, so a test that needs every server up says so.
    /// </summary>
    private static async Task WaitAllCheckedUpAsync(LbInstance lb)
    {
        var settled = await LbInstance.WaitUntilAsync(
            () => lb.State.Apps.All(a => a.Servers.All(s => s.Health.Health == Rise + Fall - 1)), TimeSpan.FromSeconds(10));
        Assert.True(settled is not null, "servers not up: " + string.Join(", ",
            lb.State.Apps.SelectMany(a => a.Servers).Select(s => $"{s.Name} {s.Health.Health} {s.LastCheck}")));
    }

    /// <summary>lb on app1 = three echo servers, checked every 300 ms.</summary>
    private async Task<(LbInstance Lb, EchoBackend[] Servers)> ThreeServersAsync()
    {
        var servers = await EchoServersAsync("app1", 3);
        var lb = await StartLbAsync($"[apps.app1]\nhealth = {HealthTable()}\n" + ServerList(servers.Select(s => (s.Name, s.Address))));
        await WaitAllCheckedUpAsync(lb);
        return (lb, servers);
    }

    [Fact]
    public async Task The_next_request_of_a_client_whose_server_stopped_reaches_another_server_with_a_new_cookie()
    {
        var (lb, servers) = await ThreeServersAsync();
        var first = await lb.GetAsync("/app1/x");
        var pinned = first.NewCookie()!;

        await StopAsync(servers.Single(s => s.Name == pinned));
        var next = await lb.GetAsync("/app1/y", $"SRVID={pinned}");

        Assert.Equal(200, next.Status);
        Assert.Equal("app1", next.Echo.App);
        Assert.NotEqual(pinned, next.Echo.Server);
        Assert.Equal(next.Echo.Server, next.NewCookie());
        Assert.Matches(@"^SRVID=app1_[123]; Path=/app1/; HttpOnly; Secure; SameSite=Lax$", next.SetCookieLine()!);
        Assert.Contains("private", next.CacheControl ?? "");
        // And the client stays on its new server.
        for (var i = 0; i < 10; i++)
        {
            var again = await lb.GetAsync("/app1/z", $"SRVID={next.NewCookie()}");
            Assert.Equal(next.Echo.Server, again.Echo.Server);
            Assert.Empty(again.SetCookies);
        }
    }

    [Fact]
    public async Task A_loop_of_GETs_during_a_stop_sees_no_failure_and_the_server_is_marked_down_within_interval_times_fall()
    {
        var (lb, servers) = await ThreeServersAsync();
        var cookie = (await lb.GetAsync("/app1/start")).NewCookie()!;
        var stopped = servers.Single(s => s.Name == cookie);
        var runtime = lb.Server("app1", stopped.Name);
        Assert.True(runtime.IsUp);

        var failures = new List<string>();
        var servedBy = new List<(int Index, string Server, string? NewCookie)>();
        var stopIssued = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var keepGoing = new CancellationTokenSource();
        var loop = Task.Run(async () =>
        {
            // Bounded: at most 400 requests or 10 s, and it ends 20 requests after the server is marked down.
            var clock = Stopwatch.StartNew();
            var afterDown = 0;
            for (var i = 0; i < 400 && clock.Elapsed < TimeSpan.FromSeconds(10) && afterDown < 20; i++)
            {
                if (i == 20)
                    stopIssued.TrySetResult(i);
                try
                {
                    var reply = await lb.GetAsync($"/app1/loop?i={i}", $"SRVID={cookie}");
                    if (reply.Status != 200)
                        failures.Add($"#{i}: {reply.Status} {reply.Body}");
                    else
                        servedBy.Add((i, reply.Echo.Server, reply.NewCookie()));
                    cookie = reply.NewCookie() ?? cookie;
                }
                catch (HttpRequestException e)
                {
                    failures.Add($"#{i}: {e.Message}");
                }
                if (!runtime.IsUp)
                    afterDown++;
                await Task.Delay(5);
            }
        });

        var stopAt = await stopIssued.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var stoppedMs = MachineStalls.NowMs;
        var clock = Stopwatch.StartNew();
        var disposing = StopAsync(stopped);
        var markedDown = await LbInstance.WaitUntilAsync(() => !runtime.IsUp, TimeSpan.FromSeconds(10));
        await disposing;
        await loop.WaitAsync(TimeSpan.FromSeconds(30));

        output.WriteLine($"{servedBy.Count} requests, marked down after {markedDown?.TotalMilliseconds:F0} ms");
        Assert.Empty(failures);
        Assert.NotNull(markedDown);
        // A check already sent when the backend stops can hang until its timeout before it counts as the first failure.
        var limit = MachineStalls.Extend(Timeout + Checks(Fall), stoppedMs, output);
        Assert.True(markedDown <= limit, $"marked down after {markedDown?.TotalMilliseconds:F0} ms, limit {limit.TotalMilliseconds:F0} ms");
        var after = servedBy.Where(s => s.Index > stopAt + 5).ToArray();
        Assert.True(after.Length >= 20, $"only {after.Length} requests after the stop");
        // The client moved once, to a server of app1 that is still running, and was told so by a cookie.
        var moved = servedBy.First(s => s.Server != stopped.Name);
        Assert.Equal(moved.Server, moved.NewCookie);
        Assert.All(after, s => Assert.NotEqual(stopped.Name, s.Server));
        Assert.All(after, s => Assert.Equal("app1", s.Server[..4]));
        Assert.Equal(1, servedBy.Count(s => s.NewCookie is not null));
    }

    [Fact]
    public async Task A_restarted_server_is_up_again_after_rise_successful_checks_and_gets_traffic()
    {
        var a = await RecordingBackend.StartAsync("app1_1");
        var b = await RecordingBackend.StartAsync("app1_2");
        _started.Add(a);
        _started.Add(b);
        var lb = await StartLbAsync($"[apps.app1]\nhealth = {HealthTable()}\n" + ServerList([(a.Name, a.Address), (b.Name, b.Address)]));
        var runtime = lb.Server("app1", "app1_1");
        await WaitAllCheckedUpAsync(lb);

        await a.StopAsync();
        Assert.NotNull(await LbInstance.WaitUntilAsync(() => !runtime.IsUp, Checks(Fall) + Interval));
        // Down: fresh clients all go to app1_2.
        for (var i = 0; i < 4; i++)
            Assert.Equal("app1_2", (await lb.GetAsync("/app1/x")).Echo.Server);

        var checksBefore = a.Checks().Count;
        var upEarly = false;
        var restartedMs = MachineStalls.NowMs;
        await a.RestartAsync();
        var cameUp = await LbInstance.WaitUntilAsync(() =>
        {
            var checks = a.Checks().Count - checksBefore;
            var up = runtime.IsUp;
            // A check is logged by the backend before lb records it, so up with fewer than rise logged is too early.
            upEarly |= up && checks < Rise;
            return up;
        }, TimeSpan.FromSeconds(10));

        output.WriteLine($"up after {cameUp?.TotalMilliseconds:F0} ms, {a.Checks().Count - checksBefore} checks");
        Assert.NotNull(cameUp);
        Assert.False(upEarly, "up before rise successful checks reached the server");
        // As for a stop: a check sent while the backend is coming back can hang until its timeout and count as failed.
        var limit = MachineStalls.Extend(Timeout + Checks(Rise), restartedMs, output);
        Assert.True(cameUp <= limit, $"up after {cameUp?.TotalMilliseconds:F0} ms, limit {limit.TotalMilliseconds:F0} ms");
        var servers = new HashSet<string>();
        for (var i = 0; i < 4; i++)
            servers.Add((await lb.GetAsync("/app1/x")).Echo.Server);
        Assert.Equal(["app1_1", "app1_2"], servers.Order());
    }

    [Fact]
    public async Task A_client_pinned_to_a_server_its_checks_took_down_is_redispatched_with_a_new_cookie_and_comes_back_to_none()
    {
        var a = await RecordingBackend.StartAsync("app1_1");
        var b = await RecordingBackend.StartAsync("app1_2");
        _started.Add(a);
        _started.Add(b);
        var lb = await StartLbAsync($"[apps.app1]\nhealth = {HealthTable()}\n" + ServerList([(a.Name, a.Address), (b.Name, b.Address)]));
        await WaitAllCheckedUpAsync(lb);
        Assert.Equal("app1_1", (await lb.GetAsync("/app1/x", "SRVID=app1_1")).Echo.Server);

        a.FailChecks = true;
        Assert.NotNull(await LbInstance.WaitUntilAsync(() => !lb.Server("app1", "app1_1").IsUp, Checks(Fall) + Interval));
        var moved = await lb.GetAsync("/app1/x", "SRVID=app1_1");

        // The server still answers, but it is down: the client moves, and is told so.
        Assert.Equal("app1_2", moved.Echo.Server);
        Assert.Equal("app1_2", moved.NewCookie());
        Assert.Contains("private", moved.CacheControl ?? "");
        var trafficBefore = a.Traffic().Count;

        // Back up, the server gets new clients again, but the moved client stays where its cookie says.
        a.FailChecks = false;
        Assert.NotNull(await LbInstance.WaitUntilAsync(() => lb.Server("app1", "app1_1").IsUp, Checks(Rise) + Interval));
        for (var i = 0; i < 5; i++)
        {
            var again = await lb.GetAsync("/app1/y", "SRVID=app1_2");
            Assert.Equal("app1_2", again.Echo.Server);
            Assert.Empty(again.SetCookies);
        }
        Assert.Equal(trafficBefore, a.Traffic().Count);
    }

    [Fact]
    public async Task Checks_send_the_configured_method_path_and_host_with_the_lb_healthcheck_user_agent()
    {
        var plain = await RecordingBackend.StartAsync("app1_1");
        var custom = await RecordingBackend.StartAsync("app2_1");
        _started.Add(plain);
        _started.Add(custom);
        var lb = await StartLbAsync(
            // Checks every 200 ms time out on a busy machine; `fall` keeps the server up, as this test is about what
            // the checks send, not about when they take a server down.
            $"[health]\ninterval = \"200ms\"\nfall = 1000\n" +
            $"[apps.app1]\n" + ServerList([(plain.Name, plain.Address)]) +
            $"[apps.app2]\nhealth = {{ method = \"HEAD\", path = \"/ping?full=1\", host = \"app2.internal\", user_agent = \"probe/7\" }}\n" +
            ServerList([(custom.Name, custom.Address)]));

        Assert.NotNull(await LbInstance.WaitUntilAsync(() => plain.Checks().Count >= 2 && custom.Checks("probe/").Count >= 2,
            TimeSpan.FromSeconds(5)));

        Assert.All(plain.Checks(), c =>
        {
            Assert.Equal($"lb-healthcheck/{Lb.Rules.Config.Version}", c.UserAgent);
            Assert.Equal("GET", c.Method);
            Assert.Equal("/", c.Target);
            Assert.Equal(plain.Address, c.Host);
        });
        Assert.All(custom.Checks("probe/"), c =>
        {
            Assert.Equal("probe/7", c.UserAgent);
            Assert.Equal("HEAD", c.Method);
            Assert.Equal("/ping?full=1", c.Target);
            Assert.Equal("app2.internal", c.Host);
        });
        // Nothing but checks reached the backends, and client traffic does not carry the checks' User-Agent.
        Assert.Empty(plain.Traffic());
        var reply = await lb.GetAsync("/app1/x");
        Assert.False(reply.Echo.Header("User-Agent")?.StartsWith("lb-healthcheck/", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task A_check_answered_with_an_unexpected_status_takes_the_server_down_and_expect_can_accept_it()
    {
        var strict = await RecordingBackend.StartAsync("app1_1");
        var lenient = await RecordingBackend.StartAsync("app2_1");
        _started.Add(strict);
        _started.Add(lenient);
        var lb = await StartLbAsync(
            $"[apps.app1]\nhealth = {HealthTable(", path = \"/status/404\"")}\n" + ServerList([(strict.Name, strict.Address)]) +
            $"[apps.app2]\nhealth = {HealthTable(", path = \"/status/404\", expect = \"200-399,404\"")}\n" + ServerList([(lenient.Name, lenient.Address)]));

        Assert.NotNull(await LbInstance.WaitUntilAsync(() => !lb.Server("app1", "app1_1").IsUp, Checks(Fall) + Interval));
        Assert.NotNull(await LbInstance.WaitUntilAsync(() => lenient.Checks().Count >= 3, TimeSpan.FromSeconds(5)));
        // Up (a first check slowed down by a loaded machine may have taken it down for `rise` checks).
        Assert.NotNull(await LbInstance.WaitUntilAsync(() => lb.Server("app2", "app2_1").Health.Health == Rise + Fall - 1, Checks(Rise + 1)));
        Assert.Equal(503, (await lb.GetAsync("/app1/x")).Status);
        Assert.Equal(200, (await lb.GetAsync("/app2/x")).Status);
    }

    [Fact]
    public async Task An_app_with_no_server_up_answers_503_with_the_built_in_page()
    {
        var lb = await StartLbAsync($"[apps.app1]\nhealth = {HealthTable()}\n" +
            ServerList([("app1_1", $"127.0.0.1:{FreePort.Next()}"), ("app1_2", $"127.0.0.1:{FreePort.Next()}")]));

        Assert.NotNull(await LbInstance.WaitUntilAsync(() => lb.State.Apps[0].Servers.All(s => !s.IsUp), Checks(Fall) + Interval));
        var reply = await lb.GetAsync("/app1/x");

        Assert.Equal(503, reply.Status);
        Assert.Contains("<title>503 Service Unavailable</title>", reply.Body);
        Assert.Empty(reply.SetCookies);
    }

    [Fact]
    public async Task An_app_with_no_server_up_answers_503_with_the_page_from_errors()
    {
        const string page = "<!DOCTYPE html><html><body><h1>Back soon</h1><p>maintenance, custom page</p></body></html>\n";
        var live = await EchoServersAsync("app2", 1);
        var lb = await StartLbAsync("[errors]\n503 = \"pages/503.html\"\n" +
            $"[apps.app1]\nhealth = {HealthTable()}\n" + ServerList([("app1_1", $"127.0.0.1:{FreePort.Next()}")]) +
            $"[apps.app2]\nhealth = {HealthTable()}\n" + ServerList(live.Select(s => (s.Name, s.Address))),
            new Dictionary<string, string> { ["pages/503.html"] = page });

        Assert.NotNull(await LbInstance.WaitUntilAsync(() => !lb.Server("app1", "app1_1").IsUp, Checks(Fall) + Interval));
        Assert.NotNull(await LbInstance.WaitUntilAsync(() => lb.Server("app2", "app2_1").IsUp, Checks(Rise + 1)));
        var reply = await lb.GetAsync("/app1/x");

        Assert.Equal(503, reply.Status);
        Assert.Equal(page, reply.Body);
        // The other app is unaffected.
        Assert.Equal(200, (await lb.GetAsync("/app2/x")).Status);
    }

    /// <summary>Shuts a backend down, as an operator stopping the server would.</summary>
    private async Task StopAsync(EchoBackend backend)
    {
        _started.Remove(backend);
        await backend.DisposeAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var started in _started)
            await started.DisposeAsync();
    }
}
