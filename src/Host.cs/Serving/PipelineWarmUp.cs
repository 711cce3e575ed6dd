using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using Lb.Host.Demo;
using Lb.Rules;

namespace Lb.Host.Serving;

/// <summary>
/// `[node] warm_up`: before `lb run` opens its listeners (and so before VRRP can make it master), it drives a private
/// lb built by the same code — loopback listeners on ephemeral ports, HTTPS and plain HTTP, two built-in backends —
/// with a bounded load. The .NET JIT first runs every method unoptimised and optimises it only after it has been called
/// often enough, which under load takes ~10 s of a busy core (bench/RESULTS.md); done here, no real client pays for
/// it, and a standby that takes over serves at full speed from its first request. No request leaves loopback and
/// nothing of the private lb (servers, counters, logs) is seen by the real one.
/// </summary>
public static class PipelineWarmUp
{
    private const int Workers = 16;
    private const int MaxRequests = 1_000_000;
    private static readonly TimeSpan CleanupBound = TimeSpan.FromSeconds(5);

    public sealed record Outcome(long Requests, long Failed, TimeSpan Took, bool StopRequested);

    /// <summary>
    /// Runs for <see cref="NodeConfig.WarmUp"/> (HTTPS too when the live config has a TLS listener). SIGTERM or
    /// SIGINT meanwhile ends it at once and says so, so the caller can exit instead of starting.
    /// </summary>
    public static async Task<Outcome> RunAsync(LbConfig live, TextWriter log)
    {
        var clock = Stopwatch.StartNew();
        using var signalled = new CancellationTokenSource();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(signalled.Token);
        stop.CancelAfter(live.Node.WarmUp);
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            signalled.Cancel();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        log.WriteLine($"lb: warming up for {live.Node.WarmUp.TotalSeconds:0.#} s before listening ([node] warm_up)");
        var directory = Directory.CreateTempSubdirectory("lb-warm-up-").FullName;
        try
        {
            await using var first = await FixedBackend.StartAsync();
            await using var second = await FixedBackend.StartAsync();
            var certificate = SelfSignedCertificate.Write(directory, "warm-up");
            var configPath = Path.Combine(directory, "warm-up.toml");
            await File.WriteAllTextAsync(configPath, ConfigText(first.Address, second.Address));
            var load = ConfigFile.Load(configPath);
            if (!load.IsValid)
                throw new InvalidOperationException("the warm-up config is invalid: " + string.Join("; ", load.Errors.Select(e => e.Message)));
            await using var server = await LbServer.StartAsync(load.Config, logging: _ => { });
            var targets = Targets(server.Addresses, withHttps: live.Listen.Https is not null);
            using var client = Client(certificate.Thumbprint);
            var (requests, failed) = await DriveAsync(client, targets, stop.Token);
            log.WriteLine($"lb: warm-up: {requests} requests ({failed} failed) through a private copy of the request path in {clock.Elapsed.TotalSeconds:0.0} s");
            return new Outcome(requests, failed, clock.Elapsed, signalled.IsCancellationRequested);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The warm-up only saves time: whatever goes wrong in it, lb starts as it would without it.
            log.WriteLine($"lb: warm-up skipped: {e.GetType().Name}: {e.Message}");
            return new Outcome(0, 0, clock.Elapsed, signalled.IsCancellationRequested);
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// The private lb: one app of two servers, no stats/VRRP/access log, both listeners on ephemeral loopback ports (on two
    /// addresses of 127.0.0.0/8, since config refuses two listeners on one address, even with port 0).
    /// </summary>
    private static string ConfigText(string firstBackend, string secondBackend) => $$"""
        # lb's private warm-up copy (Serving/PipelineWarmUp).
        [node]
        name = "warm-up"

        [listen]
        http = "127.0.0.2:0"
        https = "127.0.0.1:0"
        plain_http = "proxy"

        [tls]
        cert = "warm-up.crt"
        key = "warm-up.key"

        [log]
        access = "off"

        [apps.warm]
        servers = [
          { name = "w1", address = "{{firstBackend}}" },
          { name = "w2", address = "{{secondBackend}}" },
        ]
        """;

    /// <summary>Base URIs to load: HTTPS three times in four when the live lb terminates TLS, else plain HTTP only.</summary>
    private static Uri[] Targets(IReadOnlyCollection<string> addresses, bool withHttps)
    {
        var http = new Uri(addresses.First(a => a.StartsWith("http://", StringComparison.Ordinal)));
        if (!withHttps)
            return [http];
        var https = new Uri(addresses.First(a => a.StartsWith("https://", StringComparison.Ordinal)));
        return [https, https, https, http];
    }

    /// <summary>A keep-alive client that trusts only the private lb's own throwaway certificate.</summary>
    private static HttpClient Client(string thumbprint)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = Workers,
            // New connections all along, so the accept and TLS handshake paths warm up too (measured: with 16
            // connections kept for the whole warm-up, the first second of real load ran at half speed).
            PooledConnectionLifetime = TimeSpan.FromMilliseconds(250),
            AllowAutoRedirect = false,
            UseCookies = false,
            SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                certificate is System.Security.Cryptography.X509Certificates.X509Certificate2 c && c.Thumbprint == thumbprint },
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
    }

    /// <summary>
    /// <see cref="Workers"/> loops until the budget ends or <see cref="MaxRequests"/> have been sent. The mix covers
    /// what real traffic exercises: a cookie inserted and one honoured, the `/warm` → `/warm/` redirect, a backend
    /// Location rewritten, a POST body forwarded, and HTTP/2 on one worker.
    /// </summary>
    private static async Task<(long Requests, long Failed)> DriveAsync(HttpClient client, Uri[] targets, CancellationToken stop)
    {
        long sent = 0, failed = 0;
        async Task Worker(int worker)
        {
            for (long i = Interlocked.Increment(ref sent); i <= MaxRequests && !stop.IsCancellationRequested; i = Interlocked.Increment(ref sent))
            {
                using var request = Request(targets[i % targets.Length], i, http2: worker == 0 && targets.Length > 1);
                try
                {
                    using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead, stop);
                    if ((int)response.StatusCode >= 500) Interlocked.Increment(ref failed);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
                catch (HttpRequestException) { Interlocked.Increment(ref failed); }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(() => Worker(w))));
        return (Math.Min(Interlocked.Read(ref sent) - Workers, MaxRequests), failed);
    }

    private static HttpRequestMessage Request(Uri target, long i, bool http2)
    {
        var (method, path) = (i % 8) switch
        {
            0 => (HttpMethod.Get, "/warm"),
            1 => (HttpMethod.Get, "/warm/redirect"),
            2 => (HttpMethod.Post, "/warm/post"),
            _ => (HttpMethod.Get, "/warm/page"),
        };
        var request = new HttpRequestMessage(method, new Uri(target, path));
        if (http2 && target.Scheme == "https")
            request.Version = HttpVersion.Version20;
        if (i % 2 == 0)
            request.Headers.Add("Cookie", "SRVID=w" + (1 + i / 2 % 2));
        if (method == HttpMethod.Post)
            request.Content = new ByteArrayContent(FixedBackend.Body.ToArray());
        return request;
    }

    /// <summary>A loopback backend with a fixed 1 KiB answer; `/redirect` answers 302 with a Location lb rewrites.</summary>
    private sealed class FixedBackend : IAsyncDisposable
    {
        public static readonly ReadOnlyMemory<byte> Body = new byte[1024];
        private readonly WebApplication _app;

        private FixedBackend(WebApplication app, string address) => (_app, Address) = (app, address);

        public string Address { get; }

        public static async Task<FixedBackend> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
            var app = builder.Build();
            app.Map("/{**any}", Answer);
            await app.StartAsync();
            return new FixedBackend(app, $"127.0.0.1:{new Uri(app.Urls.First()).Port}");
        }

        private static async Task Answer(HttpContext context)
        {
            if (context.Request.Path == "/redirect")
            {
                context.Response.StatusCode = 302;
                context.Response.Headers.Location = "/elsewhere";
            }
            await context.Request.Body.CopyToAsync(Stream.Null);
            context.Response.ContentLength = Body.Length;
            await context.Response.Body.WriteAsync(Body);
        }

        public async ValueTask DisposeAsync()
        {
            using var bounded = new CancellationTokenSource(CleanupBound);
            await _app.StopAsync(bounded.Token);
            await _app.DisposeAsync();
        }
    }
}
