using System.Collections.Concurrent;
using System.Diagnostics;
using Lb.Host.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Faults under load (issue 8): app `f` has three servers; four clients send GETs in bounded loops (two carry
/// the persistence cookie as a browser would, two never do) while one or two servers — never all three — are
/// killed and restarted, hang, reset connections, or flap their health checks, again and again. No request may
/// fail (non-200 or a transport error) and every answer comes from a server of `f`, never from app `other`.
/// Health checks every 250 ms (rise 2, fall 2); `retries = 3` with `redispatch`; `timeout_server = 1s` with
/// `retry_on_timeout`, so a GET that met a hung server is sent to another one. Each injector acts out a fixed
/// number of faults; the clients run until it is done, bounded by a request count and a wall time.
/// </summary>
[Collection(FaultsUnderLoadCollection.Name)]
public sealed class FaultsUnderLoadTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Clients = 4;
    private const int RequestsPerClient = 10_000;
    private static readonly TimeSpan WallTime = TimeSpan.FromSeconds(25);
    private static readonly string[] AppServers = ["f_1", "f_2", "f_3"];

    private readonly List<IAsyncDisposable> _started = [];
    private FaultyBackend[] _servers = [];
    private LbInstance _lb = null!;

    public async Task InitializeAsync()
    {
        _servers = AppServers.Select(FaultyBackend.Start).ToArray();
        var other = FaultyBackend.Start("other_1");
        _started.AddRange(_servers);
        _started.Add(other);
        _lb = await LbInstance.StartAsync(
            "[defaults]\nretries = 3\nredispatch = true\ntimeout_connect = \"1s\"\ntimeout_server = \"1s\"\nretry_on_timeout = true\n" +
            "[health]\ninterval = \"250ms\"\ntimeout = \"250ms\"\nrise = 2\nfall = 2\n" +
            "[log]\naccess = \"off\"\n[apps.f]\nservers = [\n" +
            string.Concat(_servers.Select(s => $"  {{ name = \"{s.Name}\", address = \"{s.Address}\" }},\n")) + "]\n" +
            $"[apps.other]\nservers = [ {{ name = \"other_1\", address = \"{other.Address}\" }} ]\n");
        _started.Insert(0, _lb);
        var up = await LbInstance.WaitUntilAsync(() => _lb.State.Apps.All(a => a.Servers.All(s => s.IsUp)), TimeSpan.FromSeconds(10));
        Assert.True(up is not null, "servers not up at the start");
    }

    private sealed record Load(long Requests, IReadOnlyList<string> Failures, IReadOnlyDictionary<string, long> ServedBy, TimeSpan Took);

    /// <summary>
    /// Runs the clients while <paramref name="inject"/> acts out its faults (it must leave every server well
    /// when it returns); each client stops when the injector is done, after <see cref="RequestsPerClient"/>, or
    /// at <see cref="WallTime"/>, whichever comes first.
    /// </summary>
    private async Task<Load> UnderLoadAsync(Func<Task> inject)
    {
        var failures = new ConcurrentQueue<string>();
        var servedBy = new ConcurrentDictionary<string, long>();
        long requests = 0;
        var clock = Stopwatch.StartNew();
        var injector = Task.Run(inject);

        async Task ClientAsync(int id)
        {
            var keepsCookie = id % 2 == 0;
            string? cookie = null;
            for (var i = 0; i < RequestsPerClient && clock.Elapsed < WallTime && !injector.IsCompleted; i++)
            {
                Interlocked.Increment(ref requests);
                try
                {
                    var reply = await _lb.GetAsync($"/f/c{id}/{i}", cookie is null ? null : $"SRVID={cookie}");
                    if (reply.Status != 200 || !AppServers.Contains(reply.Body))
                        failures.Enqueue($"client {id} #{i} at {clock.Elapsed.TotalSeconds:F1}s: {reply.Status} {Shorten(reply.Body)}");
                    else
                        servedBy.AddOrUpdate(reply.Body, 1, (_, n) => n + 1);
                    if (keepsCookie)
                        cookie = reply.NewCookie() ?? cookie;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    failures.Enqueue($"client {id} #{i} at {clock.Elapsed.TotalSeconds:F1}s: {e.GetType().Name} {e.Message}");
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Clients).Select(id => Task.Run(() => ClientAsync(id))));
        var took = clock.Elapsed;
        await injector.WaitAsync(WallTime);
        return new Load(requests, failures.ToArray(), servedBy, took);
    }

    private static string Shorten(string text) => text.Length > 120 ? text[..120] + "..." : text;

    private static Task PauseAsync(int milliseconds) => Task.Delay(milliseconds);

    private void Report(string scenario, Load load, long faults, string seen)
    {
        output.WriteLine($"{scenario}: {load.Requests} requests in {load.Took.TotalSeconds:F1} s, {faults} faults ({seen}), " +
            $"{load.Failures.Count} failed; served by {string.Join(", ", load.ServedBy.OrderBy(s => s.Key).Select(s => $"{s.Key} {s.Value}"))}");
        foreach (var failure in load.Failures.Take(20))
            output.WriteLine("  " + failure);
    }

    /// <summary>The assertions every scenario shares: no failure, and enough load to have met the faults.</summary>
    private static void AssertNoFailure(Load load)
    {
        Assert.True(load.Failures.Count == 0, $"{load.Failures.Count} of {load.Requests} failed, first: {load.Failures.FirstOrDefault()}");
        Assert.True(load.Requests >= 400, $"only {load.Requests} requests: the load did not run");
        Assert.All(load.ServedBy.Keys, server => Assert.Contains(server, AppServers));
    }

    private const int Kills = 6;

    [Fact]
    public async Task A_server_killed_and_restarted_again_and_again_fails_no_request()
    {
        var victim = _servers[0];
        var load = await UnderLoadAsync(async () =>
        {
            for (var kill = 0; kill < Kills; kill++)
            {
                await PauseAsync(700);
                victim.Kill();
                await PauseAsync(500);
                victim.Restart();
            }
            await PauseAsync(700);
        });

        Report("killed", load, victim.Kills, $"{victim.Kills} kills");
        AssertNoFailure(load);
        Assert.Equal(Kills, victim.Kills);
        Assert.True(victim.Answered > 0, "the killed server never served between its deaths");
        Lb.Tests.Reliability.Record("faults", "1 of 3 servers killed and restarted again and again", 1, victim.Kills, load.Requests, load.Failures.Count);
    }

    [Fact]
    public async Task A_server_that_hangs_again_and_again_fails_no_request_with_retry_on_timeout()
    {
        var victim = _servers[1];
        const int hangs = 4;
        var load = await UnderLoadAsync(async () =>
        {
            for (var hang = 0; hang < hangs; hang++)
            {
                // Long enough for its checks to take it down, then back to work until they bring it up.
                await PauseAsync(1000);
                victim.Fault = Fault.Hang;
                await PauseAsync(1200);
                victim.Fault = Fault.None;
            }
            await PauseAsync(1000);
        });

        Report("hanging", load, victim.Hung, $"{hangs} hang phases, {victim.Hung} requests and checks hung");
        AssertNoFailure(load);
        Assert.True(victim.Hung >= hangs, $"only {victim.Hung} requests met the hanging server");
        Lb.Tests.Reliability.Record("faults", "1 of 3 servers hangs (timeout_server 1s, retry_on_timeout)", 1, victim.Hung, load.Requests, load.Failures.Count);
    }

    [Fact]
    public async Task Servers_that_reset_connections_on_accept_after_the_request_or_mid_headers_fail_no_request()
    {
        Fault[] resets = [Fault.ResetOnAccept, Fault.ResetAfterRequest, Fault.ResetInHeaders];
        var victims = _servers[..2];
        var load = await UnderLoadAsync(async () =>
        {
            for (var round = 0; round < 6; round++)
            {
                // One server resets for a while, then the other, in turn through the three kinds of reset.
                var victim = victims[round % 2];
                victim.Fault = resets[round % resets.Length];
                await PauseAsync(700);
                victim.Fault = Fault.None;
                await PauseAsync(300);
            }
        });

        var resetsSent = victims.Sum(v => v.Resets);
        Report("resetting", load, resetsSent, $"{resetsSent} connections reset");
        AssertNoFailure(load);
        Assert.All(victims, v => Assert.True(v.Resets > 0, $"{v.Name} reset nothing"));
        Lb.Tests.Reliability.Record("faults", "2 of 3 servers reset connections (RST) in turn", 1, resetsSent, load.Requests, load.Failures.Count);
    }

    [Fact]
    public async Task Health_checks_flapping_faster_and_slower_than_rise_and_fall_fail_no_request()
    {
        // f_1 flips its check answer about every check (rise/fall should hold it still); f_2 every ~3 checks
        // (it really goes down and up again). Both keep answering traffic.
        var (fast, slow) = (_servers[0], _servers[1]);
        var slowRuntime = _lb.Server("f", slow.Name);
        var flips = 0;
        var downs = 0;
        var load = await UnderLoadAsync(async () =>
        {
            using var over = new CancellationTokenSource();
            var watch = Task.Run(async () =>
            {
                var wasUp = true;
                while (!over.IsCancellationRequested)
                {
                    var up = slowRuntime.IsUp;
                    if (wasUp && !up)
                        downs++;
                    wasUp = up;
                    await PauseAsync(10);
                }
            });
            for (var tick = 0; tick < 30; tick++)
            {
                fast.FailChecks = !fast.FailChecks;
                flips++;
                if (tick % 3 == 0)
                {
                    slow.FailChecks = !slow.FailChecks;
                    flips++;
                }
                await PauseAsync(260);
            }
            fast.FailChecks = slow.FailChecks = false;
            await PauseAsync(500);
            over.Cancel();
            await watch;
        });

        Report("flapping", load, flips, $"{flips} check flips, {slow.Name} went down {downs} times");
        AssertNoFailure(load);
        Assert.True(downs >= 2, $"{slow.Name} went down {downs} times: its checks did not take it down");
        Lb.Tests.Reliability.Record("faults", "2 of 3 servers' health checks flap", 1, flips, load.Requests, load.Failures.Count);
    }

    [Fact]
    public async Task Kills_hangs_resets_and_flapping_checks_together_on_two_servers_fail_no_request()
    {
        // f_1 dies and comes back while its checks flap; f_2 hangs and resets in turn; f_3 stays well.
        var (dying, troubled) = (_servers[0], _servers[1]);
        Fault[] troubles = [Fault.Hang, Fault.ResetOnAccept, Fault.ResetAfterRequest, Fault.ResetInHeaders];
        var flips = 0;
        var load = await UnderLoadAsync(async () =>
        {
            var killer = Task.Run(async () =>
            {
                for (var kill = 0; kill < Kills; kill++)
                {
                    await PauseAsync(700);
                    dying.Kill();
                    await PauseAsync(500);
                    dying.Restart();
                    dying.FailChecks = !dying.FailChecks;
                    flips++;
                }
                dying.FailChecks = false;
            });
            for (var round = 0; round < 2 * troubles.Length; round++)
            {
                troubled.Fault = troubles[round % troubles.Length];
                await PauseAsync(800);
                troubled.Fault = Fault.None;
                await PauseAsync(300);
            }
            await killer;
            await PauseAsync(500);
        });

        var faults = dying.Kills + flips + troubled.Hung + troubled.Resets;
        Report("combined", load, faults,
            $"{dying.Kills} kills, {flips} check flips, {troubled.Hung} hung, {troubled.Resets} resets");
        AssertNoFailure(load);
        Assert.True(dying.Kills == Kills && troubled.Hung > 0 && troubled.Resets > 0,
            $"faults not met: {dying.Kills} kills, {troubled.Hung} hung, {troubled.Resets} resets");
        Lb.Tests.Reliability.Record("faults", "kill+flap on one server, hang+reset on another", 1, faults, load.Requests, load.Failures.Count);
    }

    public async Task DisposeAsync()
    {
        foreach (var started in _started)
            await started.DisposeAsync();
    }
}

/// <summary>
/// The load runs alone: four clients at full speed would starve the timing-bound tests running beside them, and
/// they would slow the load's health checks in turn.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultsUnderLoadCollection
{
    public const string Name = "faults under load";
}
