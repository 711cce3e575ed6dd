using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Lb.Host.Demo;
using Lb.Host.Forwarding;
using Lb.Host.Serving;
using Lb.Host.Tests.Support;
using Lb.Rules;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// One lb of a stats test's own, in-process, with a stats listener, fast health checks (500 ms, rise 1, fall 2)
/// and the access log in a file: app1 with three echo backends, app2 with two. Plain HTTP in proxy mode so a
/// test can read everything. Each test starts its own and may stop backends, drain servers and so on.
/// </summary>
public sealed partial class StatsSite : IAsyncDisposable
{
    public const string User = "ops";
    public const string Password = "a long and unusual stats pass phrase";
    public const string Realm = "lb stats test";

    private readonly List<EchoBackend> _backends;
    private readonly LbServer _server;

    private StatsSite(string folder, List<EchoBackend> backends, LbServer server, int httpPort, int statsPort)
    {
        Folder = folder;
        _backends = backends;
        _server = server;
        HttpPort = httpPort;
        StatsPort = statsPort;
        Stats = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{statsPort}"),
        };
        Stats.DefaultRequestHeaders.Authorization = BasicHeader(User, Password);
        Proxy = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"),
        };
    }

    public string Folder { get; }
    public int HttpPort { get; }
    public int StatsPort { get; }
    public string StatsUrl => $"http://127.0.0.1:{StatsPort}/";
    public string AccessLogPath => Path.Combine(Folder, "access.log");

    /// <summary>A client of the stats listener with the right credentials, no redirects followed.</summary>
    public HttpClient Stats { get; }

    /// <summary>A client of the proxy: no cookie jar, so each request is a new client unless it sends a cookie.</summary>
    public HttpClient Proxy { get; }

    public ForwardingState State => _server.State;
    public LbServer Server => _server;

    public static AuthenticationHeaderValue BasicHeader(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    public static async Task<StatsSite> StartAsync()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"lb-stats-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        var backends = new List<EchoBackend>();
        foreach (var name in new[] { "app1_1", "app1_2", "app1_3", "app2_1", "app2_2" })
            backends.Add(await EchoBackend.StartAsync(name));
        var httpPort = FreePort.Next();
        var statsPort = FreePort.Next();
        // The cheapest hash lb accepts: the test hashes once, lb verifies once per new credential.
        var hash = Lb.Rules.Password.Hash(Password, RandomNumberGenerator.GetBytes(16), Lb.Rules.Password.MinIterations);
        var config = new StringBuilder();
        config.AppendLine("[node]\nname = \"stats-node\"");
        config.AppendLine($"[listen]\nhttp = \"127.0.0.1:{httpPort}\"\nplain_http = \"proxy\"");
        config.AppendLine("[health]\ninterval = \"500ms\"\ntimeout = \"500ms\"\nrise = 1\nfall = 2\nspread = 0");
        config.AppendLine($"[stats]\nlisten = \"127.0.0.1:{statsPort}\"\nrealm = \"{Realm}\"\nuser = \"{User}\"\npassword_hash = \"{hash}\"\nrefresh = \"1s\"");
        config.AppendLine("[log]\naccess = \"access.log\"");
        foreach (var app in new[] { "app1", "app2" })
        {
            config.AppendLine($"[apps.{app}]\nservers = [");
            foreach (var backend in backends.Where(b => b.Name.StartsWith(app + "_", StringComparison.Ordinal)))
                config.AppendLine($"  {{ name = \"{backend.Name}\", address = \"{backend.Address}\" }},");
            config.AppendLine("]");
        }
        var path = Path.Combine(folder, "lb.toml");
        await File.WriteAllTextAsync(path, config.ToString());
        var load = ConfigFile.Load(path);
        Assert.True(load.IsValid, "test config is invalid: " + string.Join("; ", load.Errors.Select(e => e.ToString())));
        var server = await LbServer.StartAsync(load.Config, logging => logging.ClearProviders());
        // Ready when every server has passed a check: on a busy machine a first check (cold connection, JIT)
        // can time out, and a server starts with no failure to spare.
        var servers = server.State.Apps.SelectMany(a => a.Servers).ToArray();
        await EventuallyAsync(() => servers.All(s => s.IsUp && s.Counters.LastCheck is { Passed: true }), TimeSpan.FromSeconds(20),
            "every server up after a passed check");
        return new StatsSite(folder, backends, server, httpPort, statsPort);
    }

    public EchoBackend Backend(string name) => _backends.Single(b => b.Name == name);

    /// <summary>Stops a backend as a crash would: its port refuses connections from now on.</summary>
    public async Task StopBackendAsync(string name)
    {
        var backend = Backend(name);
        _backends.Remove(backend);
        await backend.DisposeAsync();
    }

    /// <summary>A proxied GET as a new client (no cookie) or with <paramref name="cookie"/>; the echo and any new cookie.</summary>
    public async Task<(Echo Echo, string? NewCookie, HttpResponseMessage Response, string Body)> GetAsync(string target, string? cookie = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, target);
        if (cookie is not null)
            request.Headers.Add("Cookie", cookie);
        var response = await Proxy.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {target}: {(int)response.StatusCode} {body}");
        var setCookie = response.Headers.TryGetValues("Set-Cookie", out var values) ? values.FirstOrDefault() : null;
        return (Echo.Parse(body), setCookie?.Split(';')[0], response, body);
    }

    /// <summary>The anti-CSRF token the stats page embeds in its forms.</summary>
    public async Task<string> TokenAsync()
    {
        var page = await Stats.GetStringAsync("/");
        return TokenPattern().Match(page) is { Success: true } m ? m.Groups[1].Value : throw new Xunit.Sdk.XunitException("no token in the page");
    }

    /// <summary>Posts an admin action as the page's form does, from the page's own origin.</summary>
    public async Task<HttpResponseMessage> AdminAsync(string app, string server, string action, string drainSeconds = "", string? token = null,
        string? origin = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["token"] = token ?? await TokenAsync(),
                ["app"] = app,
                ["server"] = server,
                ["action"] = action,
                ["drain_seconds"] = drainSeconds,
            }),
        };
        request.Headers.Add("Origin", origin ?? $"http://127.0.0.1:{StatsPort}");
        return await Stats.SendAsync(request);
    }

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, TimeSpan within, string what)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new Xunit.Sdk.XunitException($"timed out after {within.TotalSeconds} s waiting for {what}");
            await Task.Delay(50);
        }
    }

    [GeneratedRegex("name=\"token\" value=\"([^\"]+)\"")]
    private static partial Regex TokenPattern();

    public async ValueTask DisposeAsync()
    {
        Stats.Dispose();
        Proxy.Dispose();
        await _server.DisposeAsync();
        foreach (var backend in _backends)
            await backend.DisposeAsync();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
