using Lb.Host.Forwarding;
using Lb.Host.Logging;
using Lb.Rules;
using Prometheus;

namespace Lb.Host.Stats;

/// <summary>
/// `/metrics` in the Prometheus text format, through prometheus-net. The forwarding path keeps its own
/// lock-free counters (<see cref="ServerCounters"/>); just before each scrape they are copied into the
/// registry's metrics (counters only move forward, with IncTo), so scraping costs the hot path nothing.
/// One registry per lb instance, labels `app` and `server`.
/// </summary>
public sealed class StatsMetrics
{
    private static readonly string[] ServerLabels = ["app", "server"];
    private static readonly string[] StatusNames = ["UP", "DOWN", "DRAIN", "MAINT"];
    private static readonly string[] ClassNames = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Func<ForwardingState> _state;
    private readonly AccessLogWriter? _accessLog;

    private readonly Gauge _up, _status, _weight, _sessions, _sessionsMax, _queue, _pinned, _checkDuration, _checkStatus, _health, _since;
    private readonly Counter _sessionsTotal, _bytesIn, _bytesOut, _responses, _hits, _redispatches, _checks;
    private readonly Counter _appRequests, _appNoServer, _appResponses, _logDropped, _reloads, _vrrpDropped;
    private readonly NodeStatus? _node;
    private readonly object _updating = new();
    /// <summary>The servers exported at the last scrape, with the counters behind each (see <see cref="ForgetGone"/>).</summary>
    private Dictionary<(string App, string Server), ServerCounters> _exported = [];

    public StatsMetrics(Func<ForwardingState> state, AccessLogWriter? accessLog, NodeStatus? node = null)
    {
        _state = state;
        _accessLog = accessLog;
        _node = node;
        var f = Metrics.WithCustomRegistry(_registry);
        string[] withState = ["app", "server", "state"];
        string[] withCode = ["app", "server", "code"];
        string[] withResult = ["app", "server", "result"];
        _up = f.CreateGauge("lb_server_up", "1 when the server's health check says up, else 0.", ServerLabels);
        _status = f.CreateGauge("lb_server_status", "1 for the server's current state (UP, DOWN, DRAIN, MAINT), 0 for the others.", withState);
        _since = f.CreateGauge("lb_server_status_since_seconds", "Unix time of the server's last state change.", ServerLabels);
        _weight = f.CreateGauge("lb_server_weight", "The server's configured weight.", ServerLabels);
        _sessions = f.CreateGauge("lb_server_sessions_current", "Requests in flight to the server.", ServerLabels);
        _sessionsMax = f.CreateGauge("lb_server_sessions_max", "Most requests in flight to the server at once since start.", ServerLabels);
        _sessionsTotal = f.CreateCounter("lb_server_sessions_total", "Requests sent to the server (each attempt).", ServerLabels);
        _queue = f.CreateGauge("lb_server_queue_current", "Requests waiting for one of the server's maxconn slots.", ServerLabels);
        _bytesIn = f.CreateCounter("lb_server_bytes_in_total", "Request body bytes received from clients for the server.", ServerLabels);
        _bytesOut = f.CreateCounter("lb_server_bytes_out_total", "Response body bytes sent to clients from the server.", ServerLabels);
        _responses = f.CreateCounter("lb_server_responses_total", "Responses by status class.", withCode);
        _hits = f.CreateCounter("lb_server_persistence_hits_total", "Requests sent to the server because their cookie pinned them there.", ServerLabels);
        _redispatches = f.CreateCounter("lb_server_redispatches_total", "Requests pinned to or first tried on the server that went to another one.", ServerLabels);
        _pinned = f.CreateGauge("lb_server_pinned_clients", "Distinct clients seen with the server's cookie within the pinned window.", ServerLabels);
        _checks = f.CreateCounter("lb_server_checks_total", "Health checks by result.", withResult);
        _checkDuration = f.CreateGauge("lb_server_check_duration_seconds", "How long the last health check took.", ServerLabels);
        _checkStatus = f.CreateGauge("lb_server_check_status", "HTTP status of the last health check, 0 when none answered.", ServerLabels);
        _health = f.CreateGauge("lb_server_check_health", "The rise/fall counter: 0..rise-1 down, rise..rise+fall-1 up.", ServerLabels);
        _appRequests = f.CreateCounter("lb_app_requests_total", "Requests routed to the app.", ["app"]);
        _appNoServer = f.CreateCounter("lb_app_no_server_total", "Requests answered 503 because no server of the app was usable.", ["app"]);
        _appResponses = f.CreateCounter("lb_app_responses_total", "The app's responses by status class.", ["app", "code"]);
        _logDropped = f.CreateCounter("lb_access_log_dropped_total", "Access log lines dropped because the writer could not keep up.");
        _reloads = f.CreateCounter("lb_reloads_total", "Config reloads (SIGHUP or file change) by result: applied or refused.", ["result"]);
        _vrrpDropped = f.CreateCounter("lb_vrrp_dropped_total", "VRRP packets dropped by the receive checks (RFC 5798 / RFC 3768 §7.1), by reason.", ["reason"]);
        _registry.AddBeforeCollectCallback(Update);
    }

    public Task WriteAsync(Stream output, CancellationToken cancel) => _registry.CollectAndExportAsTextAsync(output, cancel);

    private void Update()
    {
        lock (_updating)
        {
            var apps = _state().Apps;
            ForgetGone(apps);
            Export(apps);
        }
    }

    /// <summary>
    /// After a reload, a removed server (or app) must not go on being exported with its last values (an
    /// `lb_server_up 1` for a server that no longer exists), and a server that started fresh under the same
    /// name (new address) must start its counters at 0, which a Prometheus counter only does as a new series.
    /// </summary>
    private void ForgetGone(AppRuntime[] apps)
    {
        var current = new Dictionary<(string App, string Server), ServerCounters>();
        foreach (var app in apps)
            foreach (var server in app.Servers)
                current[(app.Config.Name, server.Name)] = server.Counters;
        foreach (var (key, counters) in _exported)
            if (!current.TryGetValue(key, out var now) || !ReferenceEquals(now, counters))
                RemoveServer(key.App, key.Server);
        foreach (var app in _exported.Keys.Select(k => k.App).Distinct())
            if (!apps.Any(a => a.Config.Name == app))
                RemoveApp(app);
        _exported = current;
    }

    private void RemoveServer(string app, string server)
    {
        foreach (var gauge in new[] { _up, _since, _weight, _sessions, _sessionsMax, _queue, _pinned, _checkDuration, _checkStatus, _health })
            gauge.RemoveLabelled(app, server);
        foreach (var counter in new[] { _sessionsTotal, _bytesIn, _bytesOut, _hits, _redispatches })
            counter.RemoveLabelled(app, server);
        foreach (var state in StatusNames)
            _status.RemoveLabelled(app, server, state);
        foreach (var code in ClassNames)
            _responses.RemoveLabelled(app, server, code);
        _checks.RemoveLabelled(app, server, "passed");
        _checks.RemoveLabelled(app, server, "failed");
    }

    private void RemoveApp(string app)
    {
        _appRequests.RemoveLabelled(app);
        _appNoServer.RemoveLabelled(app);
        foreach (var code in ClassNames)
            _appResponses.RemoveLabelled(app, code);
    }

    private void Export(AppRuntime[] apps)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var app in apps)
        {
            var name = app.Config.Name;
            _appRequests.WithLabels(name).IncTo(app.Counters.Requests);
            _appNoServer.WithLabels(name).IncTo(app.Counters.NoServer);
            var appResponses = app.Counters.Responses();
            for (var c = 0; c < ClassNames.Length; c++)
                _appResponses.WithLabels(name, ClassNames[c]).IncTo(appResponses[c]);
            foreach (var server in app.Servers)
            {
                string[] labels = [name, server.Name];
                var counters = server.Counters;
                _up.WithLabels(labels).Set(server.IsUp ? 1 : 0);
                var status = server.Status.ToString();
                foreach (var s in StatusNames)
                    _status.WithLabels(name, server.Name, s).Set(s == status ? 1 : 0);
                _since.WithLabels(labels).Set(server.LastChange.ToUnixTimeMilliseconds() / 1000.0);
                _weight.WithLabels(labels).Set(server.Config.Weight);
                _sessions.WithLabels(labels).Set(server.Active);
                _sessionsMax.WithLabels(labels).Set(counters.SessionsMax);
                _sessionsTotal.WithLabels(labels).IncTo(counters.SessionsTotal);
                _queue.WithLabels(labels).Set(counters.Queue);
                _bytesIn.WithLabels(labels).IncTo(counters.BytesIn);
                _bytesOut.WithLabels(labels).IncTo(counters.BytesOut);
                var responses = counters.Responses();
                for (var c = 0; c < ClassNames.Length; c++)
                    _responses.WithLabels(name, server.Name, ClassNames[c]).IncTo(responses[c]);
                _hits.WithLabels(labels).IncTo(counters.PersistenceHits);
                _redispatches.WithLabels(labels).IncTo(counters.Redispatches);
                _pinned.WithLabels(labels).Set(counters.Pinned.Count(now));
                _checks.WithLabels(name, server.Name, "passed").IncTo(counters.ChecksPassed);
                _checks.WithLabels(name, server.Name, "failed").IncTo(counters.ChecksFailed);
                _health.WithLabels(labels).Set(server.Health.Health);
                if (counters.LastCheck is { } check)
                {
                    _checkDuration.WithLabels(labels).Set(check.Duration.TotalSeconds);
                    _checkStatus.WithLabels(labels).Set(check.Status is { } code ? code.Value : 0);
                }
            }
        }
        if (_accessLog is not null)
            _logDropped.IncTo(_accessLog.Dropped);
        if (_node is not null)
        {
            _reloads.WithLabels("applied").IncTo(_node.ReloadsApplied);
            _reloads.WithLabels("refused").IncTo(_node.ReloadsRefused);
            foreach (var (reason, count) in _node.VrrpDrops())
                _vrrpDropped.WithLabels(reason).IncTo(count);
        }
    }
}
