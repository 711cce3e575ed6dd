using System.Diagnostics;
using System.Net;
using Lb.Rules;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Forwarding;

/// <summary>
/// The runtime state forwarding reads: the compiled config snapshot, one shared HTTP client for all backends
/// (set up as YARP recommends), the apps' runtime state, and the global connection limit.
/// </summary>
public sealed class ForwardingState
{
    public ForwardingState(LbConfig config)
    {
        Snapshot = Rules.Rules.Compile(config);
        Client = CreateClient(config.Defaults);
        RequestConfig = new ForwarderRequestConfig { ActivityTimeout = config.Defaults.TimeoutServer };
        Apps = config.Apps.Select(a => new AppRuntime(a, config.Stats?.Value.PinnedWindow)).ToArray();
        GlobalSlots = new SemaphoreSlim(config.Defaults.MaxConn, config.Defaults.MaxConn);
    }

    public Snapshot Snapshot { get; }
    public LbConfig Config => Snapshot.Config;
    public HttpMessageInvoker Client { get; }
    public ForwarderRequestConfig RequestConfig { get; }
    public AppRuntime[] Apps { get; }

    /// <summary>The global `maxconn`: requests beyond it wait in the queue up to `timeout_queue`.</summary>
    public SemaphoreSlim GlobalSlots { get; }

    private static HttpMessageInvoker CreateClient(DefaultsConfig defaults) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ActivityHeadersPropagator = new ReverseProxyPropagator(DistributedContextPropagator.Current),
        ConnectTimeout = defaults.TimeoutConnect,
        // Times each new connection for the access log's connect field.
        ConnectCallback = Lb.Host.Logging.RequestTrace.ConnectAsync,
        // Header bytes pass through as received: Kestrel decodes them as UTF-8 (LbServer), and the same
        // encoding turns them back into the same bytes towards the backend and back to the client.
        RequestHeaderEncodingSelector = (_, _) => System.Text.Encoding.UTF8,
        ResponseHeaderEncodingSelector = (_, _) => System.Text.Encoding.UTF8,
    });
}
