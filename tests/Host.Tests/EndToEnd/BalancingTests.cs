using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Per-app `balance` and server `weight` (issue 3, Balancing), seen from clients that carry no cookie:
/// smooth weighted round robin spreads by weight, `leastconn` and `random` (two choices) avoid a server
/// that is busy with a slow request. Health checks are off here so nothing but balancing picks servers.
/// </summary>
public sealed class BalancingTests : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _started = [];
    private readonly Dictionary<string, RecordingBackend> _servers = [];
    private LbInstance _lb = null!;

    public async Task InitializeAsync()
    {
        var apps = new (string App, string Balance, (string Name, int Weight)[] Servers)[]
        {
            ("rr", "roundrobin", [("rr_heavy", 2), ("rr_light", 1)]),
            ("rr3", "roundrobin", [("rr3_a", 3), ("rr3_b", 2), ("rr3_c", 1)]),
            ("lc", "leastconn", [("lc_a", 1), ("lc_b", 1), ("lc_c", 1)]),
            ("rnd", "random", [("rnd_a", 1), ("rnd_b", 1), ("rnd_c", 1)]),
        };
        var config = new System.Text.StringBuilder();
        foreach (var (app, balance, servers) in apps)
        {
            config.Append($"[apps.{app}]\nbalance = \"{balance}\"\nhealth = {{ enabled = false }}\nservers = [\n");
            foreach (var (name, weight) in servers)
            {
                var backend = await RecordingBackend.StartAsync(name);
                _servers[name] = backend;
                _started.Add(backend);
                config.Append($"  {{ name = \"{name}\", address = \"{backend.Address}\", weight = {weight} }},\n");
            }
            config.Append("]\n");
        }
        _lb = await LbInstance.StartAsync(config.ToString());
        _started.Insert(0, _lb);
    }

    private async Task<string[]> FreshClientsAsync(string app, int count)
    {
        var servers = new string[count];
        for (var i = 0; i < count; i++)
        {
            var reply = await _lb.GetAsync($"/{app}/x?i={i}");
            Assert.Equal(200, reply.Status);
            servers[i] = reply.Echo.Server;
            Assert.Equal(servers[i], reply.NewCookie());
        }
        return servers;
    }

    [Fact]
    public async Task Weights_2_to_1_spread_requests_2_to_1_over_30_requests_and_interleave()
    {
        var servers = await FreshClientsAsync("rr", 30);

        Assert.Equal(20, servers.Count(s => s == "rr_heavy"));
        Assert.Equal(10, servers.Count(s => s == "rr_light"));
        // Smooth: every prefix stays within ±1 of the weights (no run of the heavy server's whole share).
        for (var n = 1; n <= servers.Length; n++)
        {
            var heavy = servers.Take(n).Count(s => s == "rr_heavy");
            Assert.InRange(heavy, n * 2 / 3.0 - 1, n * 2 / 3.0 + 1);
        }
    }

    [Fact]
    public async Task Weights_3_2_1_spread_requests_over_60_requests()
    {
        var servers = await FreshClientsAsync("rr3", 60);

        Assert.Equal(30, servers.Count(s => s == "rr3_a"));
        Assert.Equal(20, servers.Count(s => s == "rr3_b"));
        Assert.Equal(10, servers.Count(s => s == "rr3_c"));
    }

    /// <summary>Holds one slow request open on <paramref name="server"/>, pinned there by its cookie.</summary>
    private async Task<Task<Reply>> HoldOnAsync(string app, string server)
    {
        var held = _lb.GetAsync($"/{app}/hold", $"SRVID={server}");
        await _servers[server].WaitForHeldAsync(1);
        Assert.Equal(1, _lb.Server(app, server).Active);
        return held;
    }

    [Fact]
    public async Task Leastconn_sends_new_clients_to_the_servers_without_a_request_in_flight()
    {
        var held = await HoldOnAsync("lc", "lc_a");

        var servers = await FreshClientsAsync("lc", 20);
        _servers["lc_a"].ReleaseHeld();

        Assert.DoesNotContain("lc_a", servers);
        Assert.Contains("lc_b", servers);
        Assert.Contains("lc_c", servers);
        var slow = await held;
        Assert.Equal(200, slow.Status);
        Assert.Equal("lc_a", slow.Echo.Server);
        // Released, lc_a takes new clients again.
        Assert.Contains("lc_a", await FreshClientsAsync("lc", 6));
    }

    [Fact]
    public async Task Random_with_two_choices_mostly_avoids_the_server_with_a_request_in_flight()
    {
        var held = await HoldOnAsync("rnd", "rnd_a");

        var servers = await FreshClientsAsync("rnd", 45);
        _servers["rnd_a"].ReleaseHeld();

        // rnd_a wins only when both draws pick it: 1 in 9 (5 of 45 expected), against 1 in 3 without two choices.
        // 15 or more happens with probability below 1e-5.
        var busy = servers.Count(s => s == "rnd_a");
        Assert.True(busy < 15, $"rnd_a got {busy} of 45");
        Assert.Contains("rnd_b", servers);
        Assert.Contains("rnd_c", servers);
        Assert.Equal(200, (await held).Status);
    }

    public async Task DisposeAsync()
    {
        foreach (var started in _started)
            await started.DisposeAsync();
    }
}
