using Lb.Host.Configuration;
using Lb.Host.Demo;
using Lb.Host.Stats;
using Lb.Host.Tests.Support;
using Lb.Rules;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// What a reload keeps, on an in-process lb whose config file is reloaded as SIGHUP would: a server marked
/// down stays down, a drained one stays drained, counters go on, persistence cookies keep pinning with the
/// same values, and health probes follow the new config without starting carried servers over.
/// </summary>
public sealed class ReloadStateTests : IAsyncLifetime
{
    // Fall 3: a healthy server must not go down because one check was slow on a busy machine.
    private const string Health = "[health]\ninterval = \"250ms\"\ntimeout = \"250ms\"\nrise = 2\nfall = 3\n";
    /// <summary>Checks far apart: a fresh server's first check (which alone can take it down) comes long after the test looked.</summary>
    private const string SlowHealth = "[health]\ninterval = \"1s\"\ntimeout = \"1s\"\nrise = 2\nfall = 3\n";
    private readonly List<IAsyncDisposable> _started = [];

    public Task InitializeAsync() => Task.CompletedTask;

    private async Task<T> Start<T>(Task<T> starting) where T : IAsyncDisposable
    {
        var started = await starting;
        _started.Add(started);
        return started;
    }

    private static string Servers(params (string Name, string Address)[] servers) =>
        $"servers = [{string.Join(", ", servers.Select(s => $"{{ name = \"{s.Name}\", address = \"{s.Address}\" }}"))}]\n";

    /// <summary>Rewrites the instance's config file with a new body (same listeners and certificate) and reloads it.</summary>
    private static Reloader ReloaderOf(LbInstance lb) =>
        new(Path.Combine(lb.Folder, "lb.toml"), lb.State, null, NullLogger.Instance);

    private static void Rewrite(LbInstance lb, string body) =>
        File.WriteAllText(Path.Combine(lb.Folder, "lb.toml"),
            $"[listen]\nhttps = \"127.0.0.1:{lb.HttpsPort}\"\nhttp = \"127.0.0.1:{lb.HttpPort}\"\nplain_http = \"proxy\"\n" + ConfigFolder.TlsSection + body);

    [Fact]
    public async Task A_down_server_stays_down_a_drained_one_stays_drained_and_cookies_keep_pinning_across_a_reload()
    {
        var down = await Start(RecordingBackend.StartAsync("one_1"));
        down.FailChecks = true;
        var drained = await Start(EchoBackend.StartAsync("one_2"));
        var up = await Start(EchoBackend.StartAsync("one_3"));
        var added = await Start(RecordingBackend.StartAsync("two_1"));
        var one = "[apps.one]\n" + Servers(("one_1", down.Address), ("one_2", drained.Address), ("one_3", up.Address));
        var lb = await Start(LbInstance.StartAsync(Health + one));
        Assert.NotNull(await LbInstance.WaitUntilAsync(() => !lb.Server("one", "one_1").IsUp, TimeSpan.FromSeconds(10)));
        lb.Server("one", "one_2").SetAdmin(Admin.Drain, DateTimeOffset.UtcNow);
        var first = await lb.GetAsync("/one/a");
        Assert.Equal("one_3", first.Echo.Server);
        var cookie = first.NewCookie();
        Assert.NotNull(cookie);
        var states = lb.State.Apps[0].Servers.Select(s => s.State).ToArray();
        var sessions = lb.Server("one", "one_3").Counters.SessionsTotal;

        Rewrite(lb, Health + one + "[apps.two]\n" + Servers(("two_1", added.Address)));
        using var reloader = ReloaderOf(lb);
        Assert.True(reloader.Reload("test"), reloader.LastOutcome);

        // Right after the reload, before any check could have run: the same states, not fresh ones.
        Assert.Equal(2, lb.State.Current.Number);
        Assert.False(lb.Server("one", "one_1").IsUp);
        Assert.Equal("DRAIN", lb.Server("one", "one_2").Status.ToString());
        Assert.Equal(states, lb.State.Apps[0].Servers.Select(s => s.State).ToArray());
        Assert.Equal(sessions, lb.Server("one", "one_3").Counters.SessionsTotal);
        for (var i = 0; i < 6; i++)
        {
            var fresh = await lb.GetAsync($"/one/b{i}");
            Assert.Equal("one_3", fresh.Echo.Server);
            Assert.Equal(cookie, fresh.NewCookie());
        }
        var pinned = await lb.GetAsync("/one/c", $"SRVID={cookie}");
        Assert.Equal("one_3", pinned.Echo.Server);
        Assert.Null(pinned.NewCookie());
        Assert.Equal(sessions + 7, lb.Server("one", "one_3").Counters.SessionsTotal);
        Assert.Contains("apps added: two; servers: 3 carried over, 1 new", reloader.LastOutcome);

        // Probes follow the new config: the new server is checked, a removed one no longer is.
        Assert.NotNull(await LbInstance.WaitUntilAsync(() => added.Checks().Count >= 2, TimeSpan.FromSeconds(10)));
        Rewrite(lb, Health + "[apps.one]\n" + Servers(("one_2", drained.Address), ("one_3", up.Address)) + "[apps.two]\n" + Servers(("two_1", added.Address)));
        Assert.True(reloader.Reload("test"), reloader.LastOutcome);
        await Task.Delay(500);
        var checks = down.Checks().Count;
        await Task.Delay(1000);
        Assert.Equal(checks, down.Checks().Count);
        Assert.Equal("DRAIN", lb.Server("one", "one_2").Status.ToString());
    }

    [Fact]
    public async Task A_server_moved_to_another_address_starts_fresh_and_inherits_nothing()
    {
        var old = await Start(RecordingBackend.StartAsync("one_1"));
        old.FailChecks = true;
        var moved = await Start(EchoBackend.StartAsync("one_1"));
        var lb = await Start(LbInstance.StartAsync(SlowHealth + "[apps.one]\n" + Servers(("one_1", old.Address))));
        Assert.NotNull(await LbInstance.WaitUntilAsync(() => !lb.Server("one", "one_1").IsUp, TimeSpan.FromSeconds(10)));
        lb.Server("one", "one_1").SetAdmin(Admin.Maint, DateTimeOffset.UtcNow);

        Rewrite(lb, SlowHealth + "[apps.one]\n" + Servers(("one_1", moved.Address)));
        var node = new NodeStatus();
        using var reloader = new Reloader(Path.Combine(lb.Folder, "lb.toml"), lb.State, null, NullLogger.Instance, node);
        Assert.True(reloader.Reload("test"), reloader.LastOutcome);

        var server = lb.Server("one", "one_1");
        Assert.True(server.IsUp);
        Assert.Equal("UP", server.Status.ToString());
        Assert.Equal(0, server.Counters.SessionsTotal);
        Assert.Equal("one_1", (await lb.GetAsync("/one/x")).Echo.Server);

        // The outcome reaches the stats page's recent actions and the metrics.
        Rewrite(lb, "[apps.one]\n" + Servers(("one_1", moved.Address)) + "bad = 1\n");
        Assert.False(reloader.Reload("test"));
        Assert.Equal((1, 1), (node.ReloadsApplied, node.ReloadsRefused));
        Assert.Contains(node.RecentActions(), a => a.EndsWith("reload #2 applied (test): changed: one; servers: 0 carried over, 1 new"));
        using var metrics = new MemoryStream();
        await new StatsMetrics(() => lb.State, null, node).WriteAsync(metrics, CancellationToken.None);
        var text = System.Text.Encoding.UTF8.GetString(metrics.ToArray());
        Assert.Contains("lb_reloads_total{result=\"applied\"} 1", text);
        Assert.Contains("lb_reloads_total{result=\"refused\"} 1", text);
    }

    [Fact]
    public async Task After_a_reload_metrics_forget_a_removed_server_and_start_a_moved_one_afresh()
    {
        var kept = await Start(EchoBackend.StartAsync("one_1"));
        var removed = await Start(EchoBackend.StartAsync("one_2"));
        var moved = await Start(EchoBackend.StartAsync("one_3"));
        var movedAgain = await Start(EchoBackend.StartAsync("one_3"));
        var lb = await Start(LbInstance.StartAsync("[apps.one]\n" + Servers(("one_1", kept.Address), ("one_2", removed.Address), ("one_3", moved.Address))));
        for (var i = 0; i < 6; i++)
            await lb.GetAsync("/one/x");
        var metrics = new StatsMetrics(() => lb.State, null, null);
        Assert.Contains("lb_server_sessions_total{app=\"one\",server=\"one_3\"} 2", await Scrape(metrics));
        Assert.Contains("server=\"one_2\"", await Scrape(metrics));

        Rewrite(lb, "[apps.one]\n" + Servers(("one_1", kept.Address), ("one_3", movedAgain.Address)));
        using var reloader = ReloaderOf(lb);
        Assert.True(reloader.Reload("test"), reloader.LastOutcome);

        var text = await Scrape(metrics);
        Assert.DoesNotContain("server=\"one_2\"", text);
        Assert.Contains("lb_server_sessions_total{app=\"one\",server=\"one_3\"} 0", text);
        Assert.Contains("lb_server_sessions_total{app=\"one\",server=\"one_1\"} 2", text);
    }

    private static async Task<string> Scrape(StatsMetrics metrics)
    {
        using var output = new MemoryStream();
        await metrics.WriteAsync(output, CancellationToken.None);
        return System.Text.Encoding.UTF8.GetString(output.ToArray());
    }

    public async Task DisposeAsync()
    {
        foreach (var started in Enumerable.Reverse(_started))
            await started.DisposeAsync();
    }
}
