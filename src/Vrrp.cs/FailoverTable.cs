using System.Collections.Immutable;

namespace Lb.Vrrp;

/// <summary>A tracked check of a planned node: its name and keepalived-style weight (0 = FAULT on failure).</summary>
public sealed record PlannedCheck(string Name, int Weight);

/// <summary>One node of a virtual router as `lb check` sees it in the configs: no I/O, only what decides elections.</summary>
public sealed record NodePlan(string Name, byte Priority, bool Preempt, IReadOnlyList<string> TrackInterfaces, IReadOnlyList<PlannedCheck> Checks);

public enum FailureKind { None, NodeDown, InterfaceDown, CheckFails }

/// <summary>One failure to try: a node dies, one of its tracked interfaces goes down, or one of its checks fails.</summary>
public sealed record Failure(FailureKind Kind, string Node, string? Item)
{
    public static readonly Failure Nothing = new(FailureKind.None, "", null);

    public override string ToString() => Kind switch
    {
        FailureKind.None => "no failure",
        FailureKind.NodeDown => $"{Node} down",
        FailureKind.InterfaceDown => $"{Node} interface {Item} down",
        _ => $"{Node} check {Item} fails",
    };
}

/// <summary>
/// One row of the failover truth table: the failure, every node's effective priority under it (null = down or
/// FAULT), who ends up master, and whether the VIP moved away from the healthy master.
/// </summary>
public sealed record FailoverRow(Failure Failure, IReadOnlyDictionary<string, int?> Priorities, string? Master, bool Moves);

/// <summary>
/// Predicts elections for `lb check` from the nodes' configs, with the rules of <see cref="StateMachine"/> and
/// <see cref="Tracking"/>: the healthy master is the highest effective priority; after a failure a dead or faulted
/// master is replaced by the highest remaining node, and a live one only by a higher-priority node that preempts
/// (RFC 5798 §6.4.2). Ties are reported, not guessed: RFC 5798 §6.4.3 breaks them by address and start order.
/// </summary>
public static class FailoverTable
{
    /// <summary>A row for "no failure", then one per failure of each node and each of its tracked items.</summary>
    public static IReadOnlyList<FailoverRow> Build(IReadOnlyList<NodePlan> nodes)
    {
        var healthy = Row(nodes, Failure.Nothing, null);
        return [healthy, .. Failures(nodes).Select(f => Row(nodes, f, healthy.Master))];
    }

    static IEnumerable<Failure> Failures(IReadOnlyList<NodePlan> nodes) => nodes.SelectMany(n =>
        new[] { new Failure(FailureKind.NodeDown, n.Name, null) }
            .Concat(n.TrackInterfaces.Select(i => new Failure(FailureKind.InterfaceDown, n.Name, i)))
            .Concat(n.Checks.Select(c => new Failure(FailureKind.CheckFails, n.Name, c.Name))));

    static FailoverRow Row(IReadOnlyList<NodePlan> nodes, Failure failure, string? previous)
    {
        var priorities = nodes.ToDictionary(n => n.Name, n => PriorityUnder(n, failure));
        var master = Elect(nodes, priorities, previous);
        return new FailoverRow(failure, priorities, master, previous is not null && master != previous);
    }

    /// <summary>Effective priority of <paramref name="n"/> when <paramref name="f"/> happens; null = down or FAULT.</summary>
    public static int? PriorityUnder(NodePlan n, Failure f)
    {
        bool mine = f.Node == n.Name;
        if (mine && f.Kind is FailureKind.NodeDown or FailureKind.InterfaceDown) return null;
        var checks = n.Checks.Select(c => new TrackedCheck(c.Name, c.Weight,
            RiseFall.Create(1, 1, up: !(mine && f.Kind == FailureKind.CheckFails && f.Item == c.Name))));
        var state = TrackingState.Create(checks, []);
        return Tracking.FaultReason(state) is null ? Tracking.EffectivePriority(n.Priority, state) : null;
    }

    static string? Elect(IReadOnlyList<NodePlan> nodes, IReadOnlyDictionary<string, int?> p, string? previous)
    {
        var alive = nodes.Where(n => p[n.Name] is not null).ToList();
        if (alive.Count == 0) return null;
        if (previous is not null && p[previous] is { } current)
        {
            // A live master keeps the role unless a higher-priority node preempts it.
            var challengers = alive.Where(n => n.Preempt && p[n.Name] > current).ToList();
            return challengers.Count == 0 ? previous : Highest(challengers, p);
        }
        return Highest(alive, p);
    }

    // Null when the top priority is shared: then addresses and start order decide, which a config cannot tell.
    static string? Highest(IReadOnlyList<NodePlan> candidates, IReadOnlyDictionary<string, int?> p)
    {
        int top = candidates.Max(n => p[n.Name]!.Value);
        var best = candidates.Where(n => p[n.Name] == top).ToList();
        return best.Count == 1 ? best[0].Name : null;
    }

    /// <summary>
    /// Configs keepalived users get wrong: equal top priorities, and failures of the master's tracked items that can
    /// never move the VIP (weights too small, or backups with nopreempt). One sentence per problem.
    /// </summary>
    public static IReadOnlyList<string> Warnings(IReadOnlyList<NodePlan> nodes)
    {
        var warnings = new List<string>();
        if (nodes.Count < 2) warnings.Add("only one node: nothing can take over the VIP");
        var rows = Build(nodes);
        var healthy = rows[0];
        if (healthy.Master is null && nodes.Count > 0)
        {
            int top = healthy.Priorities.Values.Max() ?? 0;
            var tied = healthy.Priorities.Where(kv => kv.Value == top).Select(kv => kv.Key);
            warnings.Add($"{string.Join(" and ", tied)} share the top priority {top}: the master is whichever started first");
            return warnings;
        }
        foreach (var row in rows.Skip(1).Where(r => r.Failure.Node == healthy.Master && !r.Moves && r.Failure.Kind != FailureKind.NodeDown))
            warnings.Add(NeverMoves(nodes, row, healthy));
        return warnings;
    }

    static string NeverMoves(IReadOnlyList<NodePlan> nodes, FailoverRow row, FailoverRow healthy)
    {
        var master = healthy.Master!;
        int after = row.Priorities[master] ?? 0;
        var backups = nodes.Where(n => n.Name != master && row.Priorities[n.Name] is not null).ToList();
        if (backups.Count == 0) return $"{row.Failure} never moves the VIP: no other node is up";
        var best = backups.MaxBy(n => row.Priorities[n.Name])!;
        int bestPriority = row.Priorities[best.Name]!.Value;
        if (bestPriority > after && !best.Preempt)
            return $"{row.Failure} never moves the VIP: {best.Name} ({bestPriority}) has nopreempt and accepts {master} at {after}";
        return $"{row.Failure} never moves the VIP: {master} still has {after} ≥ {best.Name}'s {bestPriority}; make the weight's size larger than {healthy.Priorities[master] - bestPriority}";
    }
}
