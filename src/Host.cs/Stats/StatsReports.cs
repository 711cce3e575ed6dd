using Lb.Host.Forwarding;
using Lb.Host.Serving;
using Lb.Rules;

namespace Lb.Host.Stats;

/// <summary>Reads the runtime state into the Rules' <see cref="StatsReport"/>, which renders it as HTML, JSON and CSV.</summary>
public static class StatsReports
{
    public static StatsReport Build(ForwardingState state, NodeStatus node, StatsConfig stats, DateTimeOffset now)
    {
        var apps = state.Apps.Select(app => new AppStats(
            app.Config.Name,
            app.Servers.Select(server => Server(app, server, now)).ToArray(),
            app.Counters.Requests,
            app.Counters.NoServer,
            Lb.Rules.Stats.Responses(app.Counters.Responses()))).ToArray();
        var vrrp = node.VrrpState();
        return new StatsReport(
            state.Config.Node.Name,
            string.IsNullOrEmpty(vrrp) ? null : Microsoft.FSharp.Core.FSharpOption<string>.Some(vrrp),
            LbVersion.Text,
            now,
            node.Started,
            stats.Refresh,
            apps,
            node.RecentActions());
    }

    private static ServerStats Server(AppRuntime app, ServerRuntime server, DateTimeOffset now)
    {
        var counters = server.Counters;
        var thresholds = app.Config.Health.Thresholds;
        var last = counters.LastCheck;
        return new ServerStats(
            name: server.Name,
            address: server.Config.Address.ToString(),
            weight: server.Config.Weight,
            status: server.Status,
            admin: server.Admin,
            since: server.LastChange,
            checkEnabled: app.Config.Health.Enabled,
            lastCheck: last is null ? null : Microsoft.FSharp.Core.FSharpOption<CheckResult>.Some(last),
            health: server.Health.Health,
            rise: thresholds.Rise,
            fall: thresholds.Fall,
            checksPassed: counters.ChecksPassed,
            checksFailed: counters.ChecksFailed,
            sessionsCurrent: server.Active,
            sessionsMax: counters.SessionsMax,
            sessionsTotal: counters.SessionsTotal,
            queue: counters.Queue,
            bytesIn: counters.BytesIn,
            bytesOut: counters.BytesOut,
            responses: Lb.Rules.Stats.Responses(counters.Responses()),
            persistenceHits: counters.PersistenceHits,
            redispatches: counters.Redispatches,
            pinnedClients: counters.Pinned.Count(now));
    }
}
