using Microsoft.Extensions.Logging;
using System.Text;
using Lb.Host.Demo;
using Lb.Host.Serving;
using Xunit;

namespace Lb.Host.Tests.Support;

/// <summary>
/// One lb running in-process on loopback, as `lb run` would start it: echo backends for app1 (3 servers),
/// app2 (3), app3 (2), an app `web` on a <see cref="ScriptedBackend"/>, an app `dead` whose only server is a port nothing listens on, a self-signed
/// certificate written as PEM files, and a TOML config loaded through <see cref="ConfigFile.Load"/>.
/// Everything started here is stopped here.
/// </summary>
public sealed class LbSite : IAsyncLifetime
{
    public static readonly IReadOnlyDictionary<string, int> ServersPerApp =
        new Dictionary<string, int> { ["app1"] = 3, ["app2"] = 3, ["app3"] = 2 };

    private readonly List<EchoBackend> _backends = [];
    private LbServer? _server;
    private ScriptedBackend? _scripted;

    public string Directory { get; } = Path.Combine(Path.GetTempPath(), $"lb-host-tests-{Guid.NewGuid():N}");
    public int HttpsPort { get; private set; }
    public int HttpPort { get; private set; }
    public int DeadPort { get; private set; }
    public string Thumbprint { get; private set; } = "";
    public IReadOnlyList<EchoBackend> Backends => _backends;
    public HttpClient Client { get; private set; } = null!;

    public string Https(string target) => $"https://127.0.0.1:{HttpsPort}{target}";

    public async Task InitializeAsync()
    {
        foreach (var (app, count) in ServersPerApp)
            for (var i = 1; i <= count; i++)
                _backends.Add(await EchoBackend.StartAsync($"{app}_{i}"));
        _scripted = await ScriptedBackend.StartAsync();
        DeadPort = FreePort.Next();
        HttpsPort = FreePort.Next();
        HttpPort = FreePort.Next();
        Thumbprint = SelfSignedCertificate.Write(Directory).Thumbprint;

        var configPath = Path.Combine(Directory, "lb.toml");
        await File.WriteAllTextAsync(configPath, ConfigText());
        var load = ConfigFile.Load(configPath);
        Assert.True(load.IsValid, "test config is invalid: " + string.Join("; ", load.Errors.Select(e => e.ToString())));
        _server = await LbServer.StartAsync(load.Config, logging => logging.ClearProviders());
        Client = PinnedTls.Client(Thumbprint);
    }

    private string ConfigText()
    {
        var text = new StringBuilder();
        text.AppendLine("[node]\nname = \"test\"");
        text.AppendLine($"[listen]\nhttp = \"127.0.0.1:{HttpPort}\"\nhttps = \"127.0.0.1:{HttpsPort}\"");
        text.AppendLine("[tls]\ncert = \"lb.crt\"\nkey = \"lb.key\"");
        text.AppendLine("[defaults]\ntimeout_connect = \"2s\"\ntimeout_server = \"10s\"");
        foreach (var app in ServersPerApp.Keys)
        {
            text.AppendLine($"[apps.{app}]\nservers = [");
            foreach (var backend in _backends.Where(b => b.Name.StartsWith(app + "_", StringComparison.Ordinal)))
                text.AppendLine($"  {{ name = \"{backend.Name}\", address = \"{backend.Address}\" }},");
            text.AppendLine("]");
        }
        text.AppendLine($"[apps.web]\nservers = [ {{ name = \"web_1\", address = \"{_scripted!.Address}\" }} ]");
        // No health check here: an unchecked server counts as up (HAProxy without `check`), so every request tries it and gets 502.
        text.AppendLine($"[apps.dead]\nhealth = {{ enabled = false }}\nservers = [ {{ name = \"dead_1\", address = \"127.0.0.1:{DeadPort}\" }} ]");
        return text.ToString();
    }

    public async Task<(HttpResponseMessage Response, string Body)> GetAsync(string target, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Https(target));
        foreach (var (name, value) in headers)
            request.Headers.TryAddWithoutValidation(name, value);
        var response = await Client.SendAsync(request);
        return (response, await response.Content.ReadAsStringAsync());
    }

    public async Task<Echo> EchoAsync(string target, params (string Name, string Value)[] headers)
    {
        var (response, body) = await GetAsync(target, headers);
        Assert.True(response.IsSuccessStatusCode, $"GET {target}: {(int)response.StatusCode} {body}");
        return Echo.Parse(body);
    }

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        if (_server is not null)
            await _server.DisposeAsync();
        foreach (var backend in _backends)
            await backend.DisposeAsync();
        if (_scripted is not null)
            await _scripted.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The end-to-end tests share one lb and run one after another (round-robin counts stay exact).</summary>
[CollectionDefinition(Name)]
public sealed class LbSiteCollection : ICollectionFixture<LbSite>
{
    public const string Name = "lb site";
}
