using FsCheck.Xunit;
using Xunit;

namespace Lb.Vrrp.Tests;

public class FailoverTableTests
{
    static NodePlan Node(string name, byte prio, int weight, bool preempt = true, params string[] interfaces) =>
        new(name, prio, preempt, interfaces, [new PlannedCheck("chk", weight)]);

    [Fact]
    public void The_keepalived_lab_pair_moves_the_vip_on_every_failure_of_the_master()
    {
        // /work/shared/vrrp: lb1 150 with weight −60, lb2 100 (150 − 60 = 90 < 100).
        var nodes = new[] { Node("lb1", 150, -60, true, "eth1"), Node("lb2", 100, -60) };
        var rows = FailoverTable.Build(nodes);
        Assert.Equal("lb1", rows[0].Master);
        Assert.All(rows.Where(r => r.Failure.Node == "lb1"), r => Assert.True(r.Moves, r.Failure.ToString()));
        Assert.Equal(90, rows.Single(r => r.Failure.Kind == FailureKind.CheckFails && r.Failure.Node == "lb1").Priorities["lb1"]);
        Assert.Null(rows.Single(r => r.Failure.Kind == FailureKind.InterfaceDown).Priorities["lb1"]);
        Assert.Empty(FailoverTable.Warnings(nodes));
    }

    [Fact]
    public void A_weight_too_small_is_flagged_with_the_size_it_needs()
    {
        var nodes = new[] { Node("lb1", 150, -10), Node("lb2", 100, 0) };
        var w = Assert.Single(FailoverTable.Warnings(nodes));
        Assert.Equal("lb1 check chk fails never moves the VIP: lb1 still has 140 ≥ lb2's 100; make the weight's size larger than 50", w);
    }

    [Fact]
    public void The_seed_config_with_nopreempt_backups_is_flagged()
    {
        // The seed: priorities 101/100, `killall -0 apache2` weight 2 on both, nopreempt on both.
        var nodes = new[] { Node("lb1", 101, 2, preempt: false), Node("lb2", 100, 2, preempt: false) };
        var w = Assert.Single(FailoverTable.Warnings(nodes));
        Assert.Equal("lb1 check chk fails never moves the VIP: lb2 (102) has nopreempt and accepts lb1 at 101", w);
    }

    [Fact]
    public void Equal_priorities_are_flagged_instead_of_guessed()
    {
        var nodes = new[] { Node("lb1", 100, 0), Node("lb2", 100, 0) };
        Assert.Null(FailoverTable.Build(nodes)[0].Master);
        Assert.Equal("lb1 and lb2 share the top priority 100: the master is whichever started first", Assert.Single(FailoverTable.Warnings(nodes)));
    }

    [Fact]
    public void A_single_node_is_flagged()
    {
        Assert.Contains("only one node: nothing can take over the VIP", FailoverTable.Warnings([Node("lb1", 100, 0)]));
    }

    // The table and the state machine are two models of one election: for every planned failure the table's master is
    // the one the simulated routers converge to.
    [Property(Arbitrary = [typeof(PlanGenerators)], MaxTest = 300)]
    public bool The_table_predicts_what_the_simulated_routers_do(PlanCase c)
    {
        var rows = FailoverTable.Build(c.Nodes);
        var row = rows[1 + c.FailureIndex % (rows.Count - 1)];
        var m = new Medium(TimeSpan.FromMilliseconds(1));
        var routers = c.Nodes.Select((n, i) => m.Add(n.Name, new ElectionConfig(VrrpVersion.V3,
            n.Priority, TimeSpan.FromSeconds(1), Medium.Address(i), n.Preempt))).ToArray();
        for (int i = 0; i < routers.Length; i++)
        {
            var p = FailoverTable.PriorityUnder(c.Nodes[i], Failure.Nothing);
            if (p is { } prio) m.At(TimeSpan.Zero, routers[i], new VrrpEvent.PriorityChanged((byte)prio, "initial"));
            else m.At(TimeSpan.Zero, routers[i], new VrrpEvent.FaultChanged(true, "initial"));
            m.At(TimeSpan.Zero, routers[i], new VrrpEvent.Startup());
        }
        m.RunUntil(TimeSpan.FromSeconds(20));
        if (m.Masters.SingleOrDefault()?.Name != rows[0].Master) return rows[0].Master is null;
        Apply(m, routers.Single(r => r.Name == row.Failure.Node), c.Nodes.Single(n => n.Name == row.Failure.Node), row.Failure);
        m.RunUntil(TimeSpan.FromSeconds(40));
        return m.Masters.SingleOrDefault()?.Name == row.Master || row.Master is null;
    }

    static void Apply(Medium m, SimRouter r, NodePlan n, Failure f)
    {
        switch (f.Kind)
        {
            case FailureKind.NodeDown: m.Kill(r); break;
            case FailureKind.InterfaceDown: m.Apply(r, new VrrpEvent.FaultChanged(true, f.ToString())); break;
            case FailureKind.CheckFails when FailoverTable.PriorityUnder(n, f) is { } p:
                m.Apply(r, new VrrpEvent.PriorityChanged((byte)p, f.ToString()));
                break;
            case FailureKind.CheckFails: m.Apply(r, new VrrpEvent.FaultChanged(true, f.ToString())); break;
        }
    }
}
