using System.Diagnostics;
using System.Text;
using Lb.Host.Demo;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Two `lb run -c FILE` processes on one config (only the listen ports differ), in front of the same
/// backends: the pair of the seed, after a VRRP failover a client lands on the other node. app1 names its
/// servers in the cookie, app2 uses opaque values; neither needs a shared secret.
/// </summary>
public sealed class TwoNodes : IAsyncLifetime
{
    private readonly List<EchoBackend> _backends = [];
    private readonly List<Process> _processes = [];

    public ConfigFolder Folder { get; } = new();
    public int[] HttpsPorts { get; } = [FreePort.Next(), FreePort.Next()];
    public HttpClient Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var apps = new StringBuilder("[health]\ninterval = \"2s\"\ntimeout = \"2s\"\n");
        foreach (var (app, mode) in new[] { ("app1", "named"), ("app2", "opaque") })
        {
            apps.Append($"[apps.{app}]\npersistence = {{ mode = \"{mode}\" }}\nservers = [\n");
            for (var i = 1; i <= 3; i++)
            {
                var backend = await EchoBackend.StartAsync($"{app}_{i}");
                _backends.Add(backend);
                await WarmUpAsync(backend);
                apps.Append($"  {{ name = \"{backend.Name}\", address = \"{backend.Address}\" }},\n");
            }
            apps.Append("]\n");
        }
        for (var node = 0; node < 2; node++)
        {
            var config = Folder.Write($"node{node + 1}.toml",
                $"[node]\nname = \"lb\"\n[listen]\nhttps = \"127.0.0.1:{HttpsPorts[node]}\"\n" + ConfigFolder.TlsSection + apps);
            var process = Process.Start(LbProgram.StartInfo(["run", "-c", config]))!;
            _processes.Add(process);
            _ = process.StandardError.ReadToEndAsync();
            // Health-check warnings may come first; the start line comes within 20 lines and 60 s.
            using var start = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var lines = new List<string?>();
            while (lines.Count < 20 && lines.LastOrDefault()?.Contains(": config OK") != true)
                lines.Add(await process.StandardOutput.ReadLineAsync(start.Token));
            Assert.Matches(@"^lb \S+: config OK", lines.Last());
            _ = process.StandardOutput.ReadToEndAsync();
        }
        Client = PinnedTls.Client(Folder.Thumbprint);
    }

    /// <summary>
    /// One request straight to a backend, so the first health checks of a node do not meet a cold JSON
    /// serializer: a server starts up and its first failed check takes it down (HAProxy's default).
    /// </summary>
    private static async Task WarmUpAsync(EchoBackend backend)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        (await client.GetAsync($"http://{backend.Address}/")).EnsureSuccessStatusCode();
    }

    public Task<Reply> GetAsync(int node, string target, string? cookie = null) =>
        LbInstance.SendAsync(Client, new HttpRequestMessage(HttpMethod.Get, $"https://127.0.0.1:{HttpsPorts[node]}{target}"), cookie);

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    LbProgram.Terminate(process);
                    using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                    await process.WaitForExitAsync(exit.Token);
                }
            }
            catch (OperationCanceledException)
            {
                process.Kill();
            }
            process.Dispose();
        }
        foreach (var backend in _backends)
            await backend.DisposeAsync();
        Folder.Dispose();
    }
}

public sealed class TwoNodesTests(TwoNodes nodes) : IClassFixture<TwoNodes>
{
    [Theory]
    [InlineData("app1")]
    [InlineData("app2")]
    public async Task A_client_alternating_between_two_lb_processes_stays_on_one_server(string app)
    {
        var first = await nodes.GetAsync(0, $"/{app}/start");
        var cookie = first.NewCookie()!;
        Assert.NotNull(cookie);

        var servers = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            var reply = await nodes.GetAsync(i % 2, $"/{app}/page?i={i}", $"SRVID={cookie}");
            Assert.Equal(200, reply.Status);
            Assert.Empty(reply.SetCookies);
            servers.Add(reply.Echo.Server);
        }

        Assert.All(servers, s => Assert.Equal(first.Echo.Server, s));
    }

    [Theory]
    [InlineData("app1")]
    [InlineData("app2")]
    public async Task Both_nodes_give_each_server_the_same_cookie(string app)
    {
        var byNode = new Dictionary<string, string>[2];
        for (var node = 0; node < 2; node++)
        {
            byNode[node] = [];
            for (var i = 0; i < 6 && byNode[node].Count < 3; i++)
            {
                var reply = await nodes.GetAsync(node, $"/{app}/fresh");
                byNode[node][reply.Echo.Server] = reply.SetCookieLine()!;
            }
        }

        Assert.Equal(3, byNode[0].Count);
        Assert.Equal(byNode[0].OrderBy(p => p.Key), byNode[1].OrderBy(p => p.Key));
        if (app == "app2")
            Assert.All(byNode[0].Values, line => Assert.DoesNotContain("app2", line.Split(';')[0]));
    }
}
