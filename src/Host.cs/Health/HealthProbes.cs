using System.Net;
using Lb.Host.Forwarding;
using Lb.Rules;

namespace Lb.Host.Health;

/// <summary>
/// HAProxy's `option httpchk` + `check inter rise fall` + `spread-checks`: one probe loop per server, each
/// waiting a jittered interval, sending the configured request and feeding the result to the pure rise/fall
/// counter. The loop only observes; Rules decides what a result means.
/// </summary>
public sealed class HealthProbes(ForwardingState state, ILogger<HealthProbes> logger, TimeProvider clock) : BackgroundService
{
    // A separate client: a check must open its own connection, not reuse the traffic pool.
    private readonly HttpMessageInvoker _client = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        PooledConnectionLifetime = TimeSpan.Zero,
    });

    private readonly object _gate = new();

    /// <summary>One loop per server whose app checks health, keyed by the state that outlives a reload.</summary>
    private readonly Dictionary<ServerState, Probe> _probes = [];
    private CancellationToken _stop;

    /// <summary>A running probe loop; a reload points it at the server's runtime in the new generation.</summary>
    private sealed class Probe(AppRuntime app, ServerRuntime server, CancellationTokenSource cancel)
    {
        public volatile Tuple<AppRuntime, ServerRuntime> Target = Tuple.Create(app, server);
        public CancellationTokenSource Cancel { get; } = cancel;
        public Task Loop { get; set; } = Task.CompletedTask;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stop = stoppingToken;
        state.Swapped += Follow;
        Follow(state.Current);
        try
        {
            await Task.Delay(Timeout.Infinite, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        state.Swapped -= Follow;
        Task[] loops;
        lock (_gate)
            loops = _probes.Values.Select(p => p.Loop).ToArray();
        await Task.WhenAll(loops);
    }

    /// <summary>
    /// Probes what <paramref name="generation"/> holds: a loop starts for each new server, a removed server's
    /// loop stops, and a carried-over server's loop goes on with its rise/fall state and timing untouched.
    /// </summary>
    private void Follow(ForwardingGeneration generation)
    {
        lock (_gate)
        {
            if (_stop.IsCancellationRequested)
                return;
            var wanted = generation.Apps
                .Where(app => app.Config.Health.Enabled)
                .SelectMany(app => app.Servers.Select(server => (app, server)))
                .ToDictionary(t => t.server.State);
            foreach (var gone in _probes.Keys.Where(key => !wanted.ContainsKey(key)).ToArray())
            {
                _probes[gone].Cancel.Cancel();
                _probes.Remove(gone);
            }
            foreach (var (key, (app, server)) in wanted)
            {
                if (_probes.TryGetValue(key, out var running))
                {
                    running.Target = Tuple.Create(app, server);
                    continue;
                }
                var probe = new Probe(app, server, CancellationTokenSource.CreateLinkedTokenSource(_stop));
                probe.Loop = ProbeLoopAsync(probe, probe.Cancel.Token);
                _probes[key] = probe;
            }
        }
    }

    private async Task ProbeLoopAsync(Probe probe, CancellationToken stop)
    {
        try
        {
            // The first check is spread over one interval so a restart doesn't probe every server at once.
            await Task.Delay(probe.Target.Item1.Config.Health.Interval * Random.Shared.NextDouble(), clock, stop);
            while (!stop.IsCancellationRequested)
            {
                var (app, server) = probe.Target;
                var health = app.Config.Health;
                var (success, detail, status, took) = await ProbeAsync(health, server, stop);
                Record(probe.Target.Item1, probe.Target.Item2, success, detail, status, took);
                await Task.Delay(Rules.Health.NextCheckDelay(health.Interval, health.Spread, Random.Shared.NextDouble()), clock, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private void Record(AppRuntime app, ServerRuntime server, bool success, string detail, int? status, TimeSpan took)
    {
        var transition = server.RecordCheck(success, detail, clock.GetUtcNow(), status, took);
        if (transition is null)
            return;
        var up = app.Servers.Count(s => s.IsUp);
        var word = transition.IsWentUp ? "UP" : "DOWN";
        logger.LogWarning("server {App}/{Server} is {State} ({Detail}); {Up} of {Total} servers up",
            app.Config.Name, server.Name, word, detail, up, app.Servers.Length);
    }

    /// <summary>One check: the configured request, success when the status is one the app expects.</summary>
    private async Task<(bool Success, string Detail, int? Status, TimeSpan Took)> ProbeAsync(HealthCheckConfig health, ServerRuntime server, CancellationToken stop)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(health.Timeout);
        var started = clock.GetTimestamp();
        try
        {
            using var request = new HttpRequestMessage(new HttpMethod(health.Method), $"http://{server.Config.Address}{health.Path}");
            request.Headers.TryAddWithoutValidation("User-Agent", health.UserAgent);
            if (health.Host is { } host)
                request.Headers.Host = host.Value;
            using var response = await _client.SendAsync(request, timeout.Token);
            var status = (int)response.StatusCode;
            var ms = clock.GetElapsedTime(started).TotalMilliseconds;
            return (Rules.Health.IsExpectedStatus(health.Expected, status), $"HTTP {status} in {ms:F0} ms", status, clock.GetElapsedTime(started));
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            return (false, $"timeout after {health.Timeout.TotalMilliseconds:F0} ms", null, clock.GetElapsedTime(started));
        }
        catch (HttpRequestException e)
        {
            return (false, e.HttpRequestError == HttpRequestError.ConnectionError ? "connection refused or unreachable" : e.Message, null, clock.GetElapsedTime(started));
        }
    }

    public override void Dispose()
    {
        _client.Dispose();
        base.Dispose();
    }
}
