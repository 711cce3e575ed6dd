using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Lb.Host.Demo;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Zero-downtime reload against real `lb run` processes signalled by PID: SIGHUP applies a new config whole,
/// refuses a broken one or one that needs a restart (the old config keeps serving), keeps connections, and
/// loses no request under load; `reload_on_change` and certificate files reload without a signal.
/// </summary>
public sealed class ReloadTests : IAsyncLifetime
{
    private readonly ConfigFolder _folder = new();
    private readonly List<EchoBackend> _backends = [];
    private readonly int _https = FreePort.Next();
    private readonly int _http = FreePort.Next();
    private string _path = "";

    public async Task InitializeAsync()
    {
        foreach (var name in new[] { "one_1", "one_2", "one_3", "two_1" })
            _backends.Add(await EchoBackend.StartAsync(name));
        _path = Path.Combine(_folder.Path, "lb.toml");
    }

    private EchoBackend Backend(string name) => _backends.Single(b => b.Name == name);

    /// <summary>The listeners, the folder's certificate, no access log (quiet output), then the apps.</summary>
    private string Config(string apps, string node = "", int? http = null) =>
        $"{node}[listen]\nhttps = \"127.0.0.1:{_https}\"\nhttp = \"127.0.0.1:{http ?? _http}\"\nplain_http = \"proxy\"\n" +
        ConfigFolder.TlsSection + "[log]\naccess = \"off\"\n" + apps;

    private string App(string name, params string[] servers) =>
        $"[apps.{name}]\nservers = [{string.Join(", ", servers.Select(s => $"{{ name = \"{s}\", address = \"{Backend(s).Address}\" }}"))}]\n";

    private void Write(string text) => File.WriteAllText(_path, text);

    private static readonly HttpClient Plain = new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, UseCookies = false }) { Timeout = TimeSpan.FromSeconds(20) };

    private async Task<(int Status, string Server)> GetAsync(string target)
    {
        using var response = await Plain.GetAsync($"http://127.0.0.1:{_http}{target}");
        var body = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, response.IsSuccessStatusCode ? Echo.Parse(body).Server : "");
    }

    private async Task<HashSet<string>> ServersOfAsync(string app, int requests)
    {
        var seen = new HashSet<string>();
        for (var i = 0; i < requests; i++)
        {
            var (status, server) = await GetAsync($"/{app}/x");
            Assert.Equal(200, status);
            seen.Add(server);
        }
        return seen;
    }

    [Fact]
    public async Task Sighup_applies_a_changed_config_with_a_new_app_and_an_added_server()
    {
        Write(Config(App("one", "one_1")));
        await using var lb = await LbProcess.StartAsync(_path);
        Assert.Equal(["one_1"], await ServersOfAsync("one", 4));
        Assert.Equal(404, (await GetAsync("/two/x")).Status);

        Write(Config(App("one", "one_1", "one_2") + App("two", "two_1")));
        var outcome = await lb.ReloadAsync();

        Assert.Contains("reload #2 applied (SIGHUP): apps added: two; changed: one; servers: 1 carried over, 2 new", outcome);
        Assert.Contains("warn:", outcome);
        Assert.Equal(["one_1", "one_2"], (await ServersOfAsync("one", 6)).Order());
        Assert.Equal(["two_1"], await ServersOfAsync("two", 2));

        Write(Config(App("one", "one_2")));
        Assert.Contains("reload #3 applied (SIGHUP): removed: two; changed: one; servers: 1 carried over, 0 new", await lb.ReloadAsync());
        Assert.Equal(["one_2"], await ServersOfAsync("one", 4));
        Assert.Equal(404, (await GetAsync("/two/x")).Status);
    }

    [Fact]
    public async Task Sighup_reloads_even_when_lb_was_started_with_it_ignored_as_under_nohup()
    {
        Write(Config(App("one", "one_1")));
        await using var lb = await LbProcess.StartAsync(_path, hupIgnored: true);

        Write(Config(App("one", "one_2")));

        Assert.Contains("reload #2 applied (SIGHUP)", await lb.ReloadAsync());
        Assert.Equal(["one_2"], await ServersOfAsync("one", 2));
    }

    [Fact]
    public async Task A_broken_config_on_sighup_is_refused_with_its_errors_located_and_the_old_one_keeps_serving()
    {
        Write(Config(App("one", "one_1")));
        await using var lb = await LbProcess.StartAsync(_path);
        var seen = lb.Lines.Count;

        Write(Config(App("one", "one_1") + "weight_typo = 3\n[apps.two]\nservers = []\n"));
        var outcome = await lb.ReloadAsync();

        Assert.Contains($"reload refused (SIGHUP): 2 error(s) in {_path}; the running config stays", outcome);
        var errors = lb.Lines.Skip(seen).Where(l => l.Contains($"{_path}:")).ToArray();
        Assert.Equal(2, errors.Length);
        Assert.All(errors, e => Assert.Matches($@"{Regex(_path)}:\d+:\d+: apps\.(one\.weight_typo|two\.servers): ", e));
        // The same FILE:LINE:COL lines `lb check` prints.
        var check = await LbProgram.RunAsync(["check", "-c", _path]);
        foreach (var line in check.StdoutLines.Where(l => l.StartsWith(_path + ":")))
            Assert.Contains(errors, e => e.EndsWith(line));
        Assert.Equal(["one_1"], await ServersOfAsync("one", 3));
    }

    private static string Regex(string text) => System.Text.RegularExpressions.Regex.Escape(text);

    [Fact]
    public async Task A_change_that_needs_a_restart_refuses_the_whole_reload_and_says_so()
    {
        Write(Config(App("one", "one_1")));
        await using var lb = await LbProcess.StartAsync(_path);

        var otherPort = FreePort.Next();
        Write(Config(App("one", "one_1") + App("two", "two_1"), http: otherPort));
        var outcome = await lb.ReloadAsync();

        Assert.Contains("reload refused (SIGHUP): a change needs a restart; the running config stays", outcome);
        Assert.Contains(lb.Lines, l => l.Contains("[listen] http changed: the listener stays bound; restart lb to apply it"));
        // All or nothing: the app that came with the refused change is not served either.
        Assert.Equal(404, (await GetAsync("/two/x")).Status);
        Assert.Equal(["one_1"], await ServersOfAsync("one", 2));
        await Assert.ThrowsAsync<HttpRequestException>(() => Plain.GetAsync($"http://127.0.0.1:{otherPort}/one/x"));
    }

    [Fact]
    public async Task A_keep_alive_connection_opened_before_a_reload_keeps_serving_after_it()
    {
        Write(Config(App("one", "one_1")));
        await using var lb = await LbProcess.StartAsync(_path);
        var connections = 0;
        using var client = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            MaxConnectionsPerServer = 1,
            ConnectCallback = async (context, cancel) =>
            {
                Interlocked.Increment(ref connections);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, cancel);
                return new NetworkStream(socket, ownsSocket: true);
            },
        });
        Assert.Equal("one_1", Echo.Parse(await client.GetStringAsync($"http://127.0.0.1:{_http}/one/a")).Server);

        Write(Config(App("one", "one_2")));
        Assert.Contains("reload #2 applied", await lb.ReloadAsync());

        // Same connection, new config: the request goes to the server the new config names.
        Assert.Equal("one_2", Echo.Parse(await client.GetStringAsync($"http://127.0.0.1:{_http}/one/b")).Server);
        Assert.Equal(1, connections);
    }

    [Fact]
    public async Task With_reload_on_change_a_saved_config_file_is_applied_without_a_signal()
    {
        const string node = "[node]\nreload_on_change = true\n";
        Write(Config(App("one", "one_1"), node));
        await using var lb = await LbProcess.StartAsync(_path);

        Write(Config(App("one", "one_1") + App("two", "two_1"), node));
        var outcome = await lb.WaitForLineAsync(l => l.Contains("reload #2 applied (config file changed)"), TimeSpan.FromSeconds(20));

        Assert.Contains("apps added: two", outcome);
        Assert.Equal(["two_1"], await ServersOfAsync("two", 2));
        // Saved twice in a burst: one reload, not one per write event.
        var seen = lb.Lines.Count;
        Write(Config(App("one", "one_2"), node));
        Write(Config(App("one", "one_1", "one_2"), node));
        await lb.WaitForLineAsync(l => l.Contains("reload #3 applied (config file changed)"), TimeSpan.FromSeconds(20), seen);
        await Task.Delay(1500);
        Assert.DoesNotContain(lb.Lines, l => l.Contains("reload #4"));
        Assert.Equal(["one_1", "one_2"], (await ServersOfAsync("one", 6)).Order());
    }

    [Fact]
    public async Task Without_reload_on_change_a_saved_config_file_waits_for_sighup()
    {
        Write(Config(App("one", "one_1")));
        await using var lb = await LbProcess.StartAsync(_path);

        Write(Config(App("one", "one_1") + App("two", "two_1")));
        await Task.Delay(2000);

        Assert.DoesNotContain(lb.Lines, l => l.Contains("reload"));
        Assert.Equal(404, (await GetAsync("/two/x")).Status);
        Assert.Contains("reload #2 applied (SIGHUP)", await lb.ReloadAsync());
        Assert.Equal(200, (await GetAsync("/two/x")).Status);
    }

    [Fact]
    public async Task Replaced_certificate_files_are_presented_to_new_handshakes_and_a_broken_one_is_refused()
    {
        Write(Config(App("one", "one_1")));
        await using var lb = await LbProcess.StartAsync(_path);
        Assert.Equal(_folder.Thumbprint, await PresentedThumbprintAsync());

        // A renewal: new files under the same names (as certbot's deploy hook copies them).
        var staging = Path.Combine(_folder.Path, "staging");
        var renewed = SelfSignedCertificate.Write(staging, "lb");
        File.Copy(renewed.KeyPath, Path.Combine(_folder.Path, "lb.key"), overwrite: true);
        File.Copy(renewed.CertPath, Path.Combine(_folder.Path, "lb.crt"), overwrite: true);
        await lb.WaitForLineAsync(l => l.Contains("certificate reloaded (TLS file changed)"), TimeSpan.FromSeconds(20));
        Assert.Equal(renewed.Thumbprint, await PresentedThumbprintAsync());

        // A broken certificate file: refused, and handshakes keep getting the renewed one.
        var seen = lb.Lines.Count;
        File.WriteAllText(Path.Combine(_folder.Path, "lb.crt"), "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
        await lb.WaitForLineAsync(l => l.Contains("certificate reload refused (TLS file changed); the running certificate stays"), TimeSpan.FromSeconds(20), seen);
        Assert.Equal(renewed.Thumbprint, await PresentedThumbprintAsync());
        Assert.Equal(200, (await GetAsync("/one/x")).Status);

        // SIGHUP with the broken file: the whole reload is refused, the certificate error logged.
        Assert.Contains("reload refused (SIGHUP)", await lb.ReloadAsync());
        Assert.Contains(lb.Lines.Skip(seen), l => l.Contains("lb.crt") && l.Contains("tls.cert"));

        // Fixed again, then SIGHUP: a third certificate, applied with the config.
        var third = SelfSignedCertificate.Write(Path.Combine(_folder.Path, "third"), "lb");
        File.Copy(third.KeyPath, Path.Combine(_folder.Path, "lb.key"), overwrite: true);
        File.Copy(third.CertPath, Path.Combine(_folder.Path, "lb.crt"), overwrite: true);
        await Task.Delay(800);
        Assert.Contains("reload #", await lb.ReloadAsync());
        Assert.Equal(third.Thumbprint, await PresentedThumbprintAsync());
    }

    /// <summary>A new TLS connection's server certificate, by thumbprint.</summary>
    private async Task<string> PresentedThumbprintAsync()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, _https);
        string? thumbprint = null;
        await using var tls = new System.Net.Security.SslStream(tcp.GetStream(), false, (_, certificate, _, _) =>
        {
            thumbprint = certificate?.GetCertHashString();
            return true;
        });
        await tls.AuthenticateAsClientAsync("localhost");
        return thumbprint!;
    }

    [Fact]
    public async Task A_reload_under_a_bounded_load_loop_loses_no_request()
    {
        // Two valid configs alternating: the servers of `one` change, `two` comes and goes.
        var configA = Config(App("one", "one_1", "one_2"));
        var configB = Config(App("one", "one_2", "one_3") + App("two", "two_1"));
        Write(configA);
        await using var lb = await LbProcess.StartAsync(_path);
        // Counts, not speed: the load runs until the reloads are done and at least minRequests were sent, bounded by
        // a request cap and a deadline; on a fast machine it simply sends more requests.
        const int loops = 8, minRequests = 3000, maxRequests = 200_000, reloadsWanted = 24;
        var bound = TimeSpan.FromSeconds(90);
        var clock = Stopwatch.StartNew();
        long sent = 0, failed = 0;
        var reloadsDone = 0;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = loops }) { Timeout = TimeSpan.FromSeconds(20) };

        bool LoadWanted() =>
            clock.Elapsed < bound && !(Volatile.Read(ref reloadsDone) == 1 && Interlocked.Read(ref sent) >= minRequests);

        async Task LoopAsync()
        {
            while (LoadWanted() && Interlocked.Increment(ref sent) <= maxRequests)
            {
                try
                {
                    using var response = await client.GetAsync($"http://127.0.0.1:{_http}/one/load");
                    var body = await response.Content.ReadAsStringAsync();
                    if (response.StatusCode != HttpStatusCode.OK || !Echo.Parse(body).Server.StartsWith("one_"))
                        Fail($"{(int)response.StatusCode} {body[..Math.Min(body.Length, 200)]}");
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    Fail(e.Message);
                }
            }
        }

        void Fail(string why)
        {
            Interlocked.Increment(ref failed);
            failures.Enqueue(why);
        }

        var load = Enumerable.Range(0, loops).Select(_ => Task.Run(LoopAsync)).ToArray();
        var reloads = 0;
        while (reloads < reloadsWanted && clock.Elapsed < bound && load.Any(t => !t.IsCompleted))
        {
            Write(reloads % 2 == 0 ? configB : configA);
            var outcome = await lb.ReloadAsync();
            Assert.Contains($"reload #{reloads + 2} applied", outcome);
            reloads++;
            await Task.Delay(50);
        }
        Volatile.Write(ref reloadsDone, 1);
        await Task.WhenAll(load);
        var requests = Math.Min(Interlocked.Read(ref sent), maxRequests);

        Assert.True(failed == 0, $"{failed} of {requests} requests failed across {reloads} reloads: {string.Join("; ", failures.Take(5))}");
        Assert.True(reloads >= 20, $"only {reloads} reloads happened while the load ran ({requests} requests)");
        Assert.True(requests >= minRequests, $"only {requests} requests were sent");
        Lb.Tests.Reliability.Record("reload", "SIGHUP x N under load, two configs alternating", cases: reloads, faults: reloads, requests: requests, failed: failed);
    }

    public async Task DisposeAsync()
    {
        foreach (var backend in _backends)
            await backend.DisposeAsync();
        _folder.Dispose();
    }
}
