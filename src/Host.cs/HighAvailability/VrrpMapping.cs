using System.Net;
using Lb.Rules;
using Lb.Vrrp;

namespace Lb.Host.HighAvailability;

/// <summary>Maps the typed `[vrrp]` config to the VRRP library's options and to election plans for `lb check`.</summary>
public static class VrrpMapping
{
    public const string SelfCheckName = "lb listeners";

    public static VrrpOptions ToOptions(VrrpConfig vrrp, Func<CancellationToken, Task<bool>> listenersHealthy) => new()
    {
        Interface = vrrp.Interface,
        VirtualRouterId = (byte)vrrp.VirtualRouterId,
        Priority = (byte)vrrp.Priority,
        AdvertInterval = vrrp.AdvertInterval,
        Version = vrrp.Version == 2 ? VrrpVersion.V2 : VrrpVersion.V3,
        VirtualIps = vrrp.VirtualIps.Select(ip => VirtualIp.TryParse(ip) ?? throw new ArgumentException($"virtual_ips: {ip}")).ToArray(),
        Preempt = vrrp.Preempt,
        PreemptDelay = vrrp.PreemptDelay,
        GarpMasterDelay = vrrp.GarpMasterDelay,
        GarpMasterRepeat = vrrp.GarpMasterRepeat,
        GarpMasterRefresh = vrrp.GarpMasterRefresh,
        UnicastPeers = vrrp.UnicastPeers.Select(IPAddress.Parse).ToArray(),
        TrackInterfaces = vrrp.TrackInterfaces,
        TrackScripts = vrrp.TrackScripts.Select(s => new TrackScript(s.Command, s.Interval, s.Weight, s.Rise, s.Fall)).ToArray(),
        TrackSelf = vrrp.TrackSelfWeight is { } weight ? new TrackSelf(listenersHealthy, weight.Value) : null,
        AuthPassword = vrrp.AuthPassword?.Value,
    };

    /// <summary>The node as the failover simulation sees it: priority, preempt, and what can lower it.</summary>
    public static NodePlan ToPlan(string nodeName, VrrpConfig vrrp)
    {
        var checks = vrrp.TrackScripts.Select(s => new PlannedCheck(s.Command, s.Weight)).ToList();
        if (vrrp.TrackSelfWeight is { } weight)
            checks.Add(new PlannedCheck(SelfCheckName, weight.Value));
        return new NodePlan(nodeName, (byte)vrrp.Priority, vrrp.Preempt, vrrp.TrackInterfaces, checks);
    }

    /// <summary>The failover truth table and its warnings, as `lb check` prints them.</summary>
    public static IEnumerable<string> TruthTable(IReadOnlyList<NodePlan> nodes)
    {
        var names = nodes.Select(n => n.Name).ToArray();
        yield return "vrrp failover table (who holds the VIP after each single failure):";
        yield return "  " + string.Join(" | ", new[] { "failure".PadRight(36) }.Concat(names.Select(n => n.PadLeft(8))).Append("master".PadLeft(8)).Append(" moves"));
        foreach (var row in FailoverTable.Build(nodes))
        {
            var priorities = names.Select(n => (row.Priorities[n]?.ToString() ?? "down").PadLeft(8));
            yield return "  " + string.Join(" | ", new[] { row.Failure.ToString().PadRight(36) }.Concat(priorities).Append((row.Master ?? "none").PadLeft(8)).Append(row.Moves ? " yes" : " no"));
        }
        foreach (var warning in FailoverTable.Warnings(nodes))
            yield return "  warning: " + warning;
    }
}
