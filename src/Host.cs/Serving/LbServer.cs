using System.Diagnostics;
using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Lb.Host.Caching;
using Lb.Host.Configuration;
using Lb.Host.Forwarding;
using Lb.Host.Health;
using Lb.Host.HighAvailability;
using Lb.Host.Logging;
using Lb.Host.Stats;
using Lb.Rules;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Serving;

/// <summary>
/// One running lb: Kestrel listeners (http, https with HTTP/1.1 and HTTP/2 by ALPN) and the forwarding
/// endpoint. Built from a validated config; it decides nothing itself.
/// </summary>
public sealed class LbServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private StatsServer? _stats;
    private Reloader? _reloader;

    private LbServer(WebApplication app) => _app = app;

    /// <param name="configPath">The file the config came from: given, SIGHUP (and `reload_on_change`) reload it.</param>
    public static async Task<LbServer> StartAsync(LbConfig config, Action<ILoggingBuilder>? logging = null, string? configPath = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logging is null)
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning)
                .AddFilter("Yarp", LogLevel.Error);
        else
            logging(builder.Logging);
        // ASP.NET Core starts an Activity for every request whenever this category is enabled at any level
        // (for log scopes); it only logs "Request starting/finished", which lb's access log replaces (issue 7).
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        var certificates = config.Tls is { } tls ? CertificateStore.Open(tls.Value) : null;
        builder.WebHost.UseKestrel(kestrel => ConfigureListeners(kestrel, config, certificates));
        // On SIGTERM/SIGINT Kestrel stops accepting at once and lets in-flight requests finish until this
        // passes, then closes their connections (HAProxy `hard-stop-after`).
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = config.Defaults.TimeoutShutdown);
        builder.Services.AddHttpForwarder();
        builder.Services.AddSingleton(new ForwardingState(config));
        builder.Services.AddSingleton<HttpCache>();
        builder.Services.AddSingleton<ProxyEndpoint>();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(new ErrorPages(config));
        builder.Services.AddHostedService<HealthProbes>();
        AccessLogWriter.CheckWritable(config);
        builder.Services.AddSingleton(config);
        builder.Services.AddSingleton<AccessLogWriter>();
        builder.Services.AddHostedService(services => services.GetRequiredService<AccessLogWriter>());
        builder.Services.AddSingleton<NodeStatus>();
        builder.Services.AddSingleton<VrrpService>();
        builder.Services.AddHostedService<VrrpHandOver>();

        var app = builder.Build();
        var endpoint = app.Services.GetRequiredService<ProxyEndpoint>();
        // The cache's background revalidations (stale-while-revalidate) are requests to this same endpoint.
        app.Services.GetRequiredService<HttpCache>().Send = endpoint.HandleAsync;
        app.Use(RequestHeads.Attach);
        app.Map("/{**catch-all}", endpoint.HandleAsync);
        await app.StartAsync();
        var server = new LbServer(app);
        if (configPath is not null)
        {
            server._reloader = new Reloader(configPath, server.State, certificates, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<Reloader>(), server.Node);
            server._reloader.Start();
        }
        if (config.Stats is { } stats)
        {
            try
            {
                server._stats = await StatsServer.StartAsync(stats.Value, () => server.State, server.Node,
                    app.Services.GetRequiredService<AccessLogWriter>(), app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<StatsServer>());
            }
            catch
            {
                await server.DisposeAsync();
                throw;
            }
        }
        try
        {
            await server.StartVrrpAsync(app);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    /// <summary>
    /// VRRP starts once the listeners are bound (a node must not claim the VIP before it can serve); on shutdown
    /// <see cref="VrrpHandOver"/> hands the VIP over while the listeners still serve in-flight requests.
    /// </summary>
    private async Task StartVrrpAsync(WebApplication app)
    {
        var vrrp = app.Services.GetRequiredService<VrrpService>();
        var node = app.Services.GetRequiredService<NodeStatus>();
        node.VrrpState = () => vrrp.State == "n/a" ? null : vrrp.State;
        node.VrrpDrops = vrrp.Drops;
        await vrrp.StartAsync(CancellationToken.None);
    }

    private static void ConfigureListeners(KestrelServerOptions kestrel, LbConfig config, CertificateStore? certificates)
    {
        kestrel.AddServerHeader = false;
        // Non-ASCII header bytes (cookies of real apps have them) round-trip as UTF-8; see ForwardingState.
        kestrel.RequestHeaderEncodingSelector = _ => System.Text.Encoding.UTF8;
        kestrel.ResponseHeaderEncodingSelector = _ => System.Text.Encoding.UTF8;
        kestrel.Limits.KeepAliveTimeout = config.Defaults.TimeoutClient;
        kestrel.Limits.RequestHeadersTimeout = config.Defaults.TimeoutClient;
        // HAProxy's `timeout client` is inactivity anywhere in the request. Kestrel measures a body by its
        // average rate, so a stalled body is caught as "below Kestrel's default 240 B/s once timeout_client has
        // passed" and ends in 408. The grace period must exceed Kestrel's 1 s heartbeat.
        var grace = config.Defaults.TimeoutClient > TimeSpan.FromSeconds(1.1) ? config.Defaults.TimeoutClient : TimeSpan.FromSeconds(1.1);
        kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(bytesPerSecond: 240, gracePeriod: grace);
        // The body limit of a request lb does not forward; a forwarded one gets its app's (ProxyEndpoint.LimitBody).
        kestrel.Limits.MaxRequestBodySize = config.Defaults.MaxRequestBody;
        // HTTP/1.1 and HTTP/2 alike; over it Kestrel answers 431 (RFC 6585 §5). Set at start (Reload.refusals).
        kestrel.Limits.MaxRequestHeadersTotalSize = checked((int)config.Defaults.MaxRequestHeaders);
        if (config.Listen.Http is { } http)
            Listen(kestrel, http.Value, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                RequestHeadScanner.Use(listen);
            });
        if (config.Listen.Https is { } https && certificates is not null)
        {
            Listen(kestrel, https.Value, listen =>
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                // Per handshake: a reload swaps the certificate without touching the listener.
                listen.UseHttps(new TlsHandshakeCallbackOptions { OnConnection = _ => certificates.OptionsForHandshake() });
                RequestHeadScanner.Use(listen); // after TLS: it reads the decrypted request heads
            });
        }
    }

    private static void Listen(KestrelServerOptions kestrel, Lb.Rules.Endpoint endpoint, Action<ListenOptions> configure)
    {
        if (endpoint.Host == "*")
            kestrel.ListenAnyIP(endpoint.Port, configure);
        else if (endpoint.Host == "localhost")
            kestrel.ListenLocalhost(endpoint.Port, configure);
        else
            kestrel.Listen(IPAddress.Parse(endpoint.Host), endpoint.Port, configure);
    }

    /// <summary>The addresses Kestrel actually bound (useful when a port is 0).</summary>
    public IReadOnlyCollection<string> Addresses =>
        _app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses.ToArray() ?? [];

    /// <summary>The runtime state (servers' health, active requests): for stats and tests, read only.</summary>
    public ForwardingState State => _app.Services.GetRequiredService<ForwardingState>();

    /// <summary>Reloads of the config file lb was started with; null when it was started from a config value.</summary>
    public Reloader? Reloader => _reloader;

    /// <summary>The HTTP cache of the apps with `cache = true` (its stores' sizes): for stats and tests, read only.</summary>
    public HttpCache Cache => _app.Services.GetRequiredService<HttpCache>();

    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    /// <summary>Node facts for the stats page: start time, VRRP state (set it when VRRP runs), admin actions.</summary>
    public NodeStatus Node => _app.Services.GetRequiredService<NodeStatus>();

    public async ValueTask DisposeAsync()
    {
        _reloader?.Dispose();
        if (_stats is not null)
            await _stats.DisposeAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
