using System.Diagnostics;
using System.Net.Http.Headers;
using Lb.Host.Demo;
using Lb.Host.Forwarding;
using Lb.Host.Serving;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Lb.Host.Tests.Support;

/// <summary>
/// A temporary folder holding a self-signed certificate as PEM files (`lb.crt`, `lb.key`) and the config
/// files a test writes next to them, as a user's /etc/lb would. Deleted on dispose.
/// </summary>
public sealed class ConfigFolder : IDisposable
{
    public ConfigFolder()
    {
        Thumbprint = SelfSignedCertificate.Write(Path, "lb").Thumbprint;
    }

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"lb-e2e-{Guid.NewGuid():N}");
    public string Thumbprint { get; }

    /// <summary>`[tls]` naming the certificate files of this folder.</summary>
    public const string TlsSection = "[tls]\ncert = \"lb.crt\"\nkey = \"lb.key\"\n";

    /// <summary>Writes a file into the folder and returns its full path.</summary>
    public string Write(string name, string text)
    {
        var path = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>A response as the persistence and limit tests look at it.</summary>
public sealed record Reply(int Status, string Body, IReadOnlyList<string> SetCookies, string? CacheControl, TimeSpan Took)
{
    public Echo Echo => Echo.Parse(Body);

    /// <summary>The value of the `NAME=value` Set-Cookie line for the cookie called <paramref name="name"/>, if any.</summary>
    public string? NewCookie(string name = "SRVID") => SetCookieLine(name) is { } line ? line[(name.Length + 1)..].Split(';')[0] : null;

    public string? SetCookieLine(string name = "SRVID") =>
        SetCookies.FirstOrDefault(c => c.StartsWith(name + "=", StringComparison.Ordinal));
}

/// <summary>
/// One lb of the test's own, in-process, with its own config (listeners on free loopback ports, the
/// certificate of a <see cref="ConfigFolder"/>), loaded through <see cref="ConfigFile.Load"/> as `lb run` does.
/// Everything started here is stopped on dispose; backends belong to the test.
/// </summary>
public sealed class LbInstance : IAsyncDisposable
{
    private readonly ConfigFolder _folder;
    private readonly LbServer _server;

    private LbInstance(ConfigFolder folder, LbServer server, int httpsPort, int httpPort)
    {
        _folder = folder;
        _server = server;
        HttpsPort = httpsPort;
        HttpPort = httpPort;
        Client = PinnedTls.Client(folder.Thumbprint);
    }

    public int HttpsPort { get; }
    /// <summary>Plain HTTP in proxy mode (TLS ended before lb).</summary>
    public int HttpPort { get; }
    public string Thumbprint => _folder.Thumbprint;
    public string Folder => _folder.Path;
    public HttpClient Client { get; }

    /// <summary>The runtime state: servers' health and active requests.</summary>
    public ForwardingState State => _server.State;

    /// <summary>
    /// Starts lb on <paramref name="body"/> (everything but [listen] and [tls]); <paramref name="files"/> are
    /// written into the config folder first (error pages).
    /// </summary>
    public static async Task<LbInstance> StartAsync(string body, IReadOnlyDictionary<string, string>? files = null)
    {
        var folder = new ConfigFolder();
        try
        {
            foreach (var (name, text) in files ?? new Dictionary<string, string>())
                folder.Write(name, text);
            var httpsPort = FreePort.Next();
            var httpPort = FreePort.Next();
            var config = folder.Write("lb.toml",
                $"[listen]\nhttps = \"127.0.0.1:{httpsPort}\"\nhttp = \"127.0.0.1:{httpPort}\"\nplain_http = \"proxy\"\n" +
                ConfigFolder.TlsSection + body);
            var load = ConfigFile.Load(config);
            Assert.True(load.IsValid, "test config is invalid: " + string.Join("; ", load.Errors.Select(e => e.ToString())));
            var server = await LbServer.StartAsync(load.Config, logging => logging.ClearProviders());
            return new LbInstance(folder, server, httpsPort, httpPort);
        }
        catch
        {
            folder.Dispose();
            throw;
        }
    }

    public string Https(string target) => $"https://127.0.0.1:{HttpsPort}{target}";

    public ServerRuntime Server(string app, string server) =>
        State.Apps.Single(a => a.Config.Name == app).Servers.Single(s => s.Name == server);

    /// <summary>GET over https with this Cookie header (carried by hand: the client has no cookie container).</summary>
    public Task<Reply> GetAsync(string target, string? cookie = null, CancellationToken cancel = default) =>
        SendAsync(Client, new HttpRequestMessage(HttpMethod.Get, Https(target)), cookie, cancel);

    public static async Task<Reply> SendAsync(HttpClient client, HttpRequestMessage request, string? cookie = null,
        CancellationToken cancel = default)
    {
        using (request)
        {
            if (cookie is not null)
                request.Headers.TryAddWithoutValidation("Cookie", cookie);
            var clock = Stopwatch.StartNew();
            using var response = await client.SendAsync(request, cancel);
            var body = await response.Content.ReadAsStringAsync(cancel);
            return new Reply((int)response.StatusCode, body, Values(response.Headers, "Set-Cookie"),
                Values(response.Headers, "Cache-Control") is { Count: > 0 } cc ? string.Join(", ", cc) : null, clock.Elapsed);
        }
    }

    private static IReadOnlyList<string> Values(HttpResponseHeaders headers, string name) =>
        headers.NonValidated.TryGetValues(name, out var values) ? values.ToArray() : [];

    /// <summary>Polls <paramref name="condition"/> every 10 ms; the time it took to hold, or null after <paramref name="timeout"/>.</summary>
    public static async Task<TimeSpan?> WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
                return null;
            await Task.Delay(10);
        }
        return clock.Elapsed;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _server.DisposeAsync();
        _folder.Dispose();
    }
}
