using System.Diagnostics;
using System.Net;
using Lb.Rules;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Forwarding;

/// <summary>
/// The runtime state forwarding reads: the compiled config snapshot, one shared HTTP client for all backends
/// (set up as YARP recommends), and the per-app round-robin counters.
/// </summary>
public sealed class ForwardingState
{
    public ForwardingState(LbConfig config)
    {
        Snapshot = Rules.Rules.Compile(config);
        Client = CreateClient(config.Defaults);
        RequestConfig = new ForwarderRequestConfig { ActivityTimeout = config.Defaults.TimeoutServer };
        _nextServer = new int[config.Apps.Length];
    }

    private readonly int[] _nextServer;

    public Snapshot Snapshot { get; }
    public HttpMessageInvoker Client { get; }
    public ForwarderRequestConfig RequestConfig { get; }

    /// <summary>Plain round robin for now; the persistence/health work replaces it with Rules' balancing.</summary>
    public ServerConfig NextServer(ForwardPlan plan)
    {
        var servers = plan.App.Servers;
        var turn = (uint)Interlocked.Increment(ref _nextServer[plan.AppIndex]);
        return servers[(int)(turn % (uint)servers.Length)];
    }

    private static HttpMessageInvoker CreateClient(DefaultsConfig defaults) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ActivityHeadersPropagator = new ReverseProxyPropagator(DistributedContextPropagator.Current),
        ConnectTimeout = defaults.TimeoutConnect,
    });
}
