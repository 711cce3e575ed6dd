using System.Diagnostics;
using System.Net;
using Lb.Rules;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Forwarding;

/// <summary>
/// Everything forwarding reads that comes from one config: the compiled snapshot, the apps' runtime state,
/// the HTTP client to the backends and the global connection limit. Immutable as a whole: a reload builds a
/// new generation and <see cref="ForwardingState"/> swaps it in with one reference write; a request captures
/// one generation when it starts and reads only that one until it ends (STYLE rule 11).
/// </summary>
public sealed class ForwardingGeneration
{
    /// <summary>The first generation, built at start.</summary>
    public ForwardingGeneration(LbConfig config) : this(config, 1, null, null)
    {
    }

    /// <param name="previous">The generation in force; what <paramref name="plan"/> carries over comes from it.</param>
    private ForwardingGeneration(LbConfig config, int number, ForwardingGeneration? previous, ReloadPlan? plan)
    {
        Number = number;
        Snapshot = Rules.Rules.Compile(config);
        // The client (its pooled backend connections) and the global slots outlive a reload unless what they
        // were built from changed; requests in flight keep the ones their generation holds.
        Client = previous is not null && previous.Config.Defaults.TimeoutConnect == config.Defaults.TimeoutConnect
            ? previous.Client : CreateClient(config.Defaults);
        GlobalSlots = previous is not null && previous.Config.Defaults.MaxConn == config.Defaults.MaxConn
            ? previous.GlobalSlots : new SemaphoreSlim(config.Defaults.MaxConn, config.Defaults.MaxConn);
        RequestConfig = new ForwarderRequestConfig { ActivityTimeout = config.Defaults.TimeoutServer };
        var pinnedWindow = config.Stats?.Value.PinnedWindow;
        Apps = plan is null || previous is null
            ? config.Apps.Select(a => new AppRuntime(a, pinnedWindow)).ToArray()
            : config.Apps.Select((a, i) => new AppRuntime(a, pinnedWindow,
                plan.Apps[i].OldIndex is { } old ? previous.Apps[old.Value] : null, plan.Apps[i])).ToArray();
    }

    /// <summary>The generation that replaces this one with <paramref name="config"/>, as <paramref name="plan"/> says.</summary>
    public ForwardingGeneration Next(LbConfig config, ReloadPlan plan) => new(config, Number + 1, this, plan);

    /// <summary>1 for the config lb started with, one more for each applied reload.</summary>
    public int Number { get; }
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
        // No trace headers of lb's own (as HAProxy and Apache): building and sending a `traceparent` cost an
        // Activity per request, and no feature uses it. A client's own trace headers still pass through.
        ActivityHeadersPropagator = DistributedContextPropagator.CreateNoOutputPropagator(),
        ConnectTimeout = defaults.TimeoutConnect,
        // Times each new connection for the access log's connect field.
        ConnectCallback = Lb.Host.Logging.RequestTrace.ConnectAsync,
        // Header bytes pass through as received: Kestrel decodes them as UTF-8 (LbServer), and the same
        // encoding turns them back into the same bytes towards the backend and back to the client.
        RequestHeaderEncodingSelector = (_, _) => System.Text.Encoding.UTF8,
        ResponseHeaderEncodingSelector = (_, _) => System.Text.Encoding.UTF8,
    });
}

/// <summary>
/// The generation in force. Forwarding reads <see cref="Current"/> once per request; a reload replaces it whole
/// (<see cref="Swap"/>). The shortcuts below read the current generation for stats and tests.
/// </summary>
public sealed class ForwardingState(LbConfig config)
{
    private ForwardingGeneration _current = new(config);

    public ForwardingGeneration Current => Volatile.Read(ref _current);

    /// <summary>Raised after each swap, with the new generation (health probes follow it).</summary>
    public event Action<ForwardingGeneration>? Swapped;

    /// <summary>Puts <paramref name="next"/> in force with one reference write; requests already running finish on theirs.</summary>
    public void Swap(ForwardingGeneration next)
    {
        Volatile.Write(ref _current, next);
        Swapped?.Invoke(next);
    }

    public Snapshot Snapshot => Current.Snapshot;
    public LbConfig Config => Current.Config;
    public AppRuntime[] Apps => Current.Apps;
    public SemaphoreSlim GlobalSlots => Current.GlobalSlots;
}
