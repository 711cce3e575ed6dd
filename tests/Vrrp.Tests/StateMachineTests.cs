using System.Net;
using FsCheck.Xunit;
using Xunit;

namespace Lb.Vrrp.Tests;

public class StateMachineTests
{
    static readonly TimeSpan Second = TimeSpan.FromSeconds(1);
    static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    static ElectionConfig Config(byte prio, int i, VrrpVersion v = VrrpVersion.V3, bool preempt = true, TimeSpan interval = default) =>
        new(v, prio, interval == default ? Second : interval, Medium.Address(i), preempt);

    static (Medium M, SimRouter[] R) Pair(byte p1, byte p2, bool preempt = true, TimeSpan interval = default)
    {
        var m = new Medium(Ms(1));
        var r = new[] { m.Add("lb1", Config(p1, 0, preempt: preempt, interval: interval)),
                        m.Add("lb2", Config(p2, 1, preempt: preempt, interval: interval)) };
        return (m, r);
    }

    static Medium Start(Fleet f)
    {
        var m = new Medium(Ms(1));
        for (int i = 0; i < f.Priorities.Length; i++)
        {
            var r = m.Add($"lb{i + 1}", Config(f.Priorities[i], i, f.Version, f.Preempt));
            m.At(Ms(f.StartMs[i]), r, new VrrpEvent.Startup());
        }
        return m;
    }

    [Property(Arbitrary = [typeof(FleetGenerators)], MaxTest = 300)]
    public bool After_convergence_exactly_one_router_is_master_and_holds_the_vip(Fleet f)
    {
        var m = Start(f);
        m.RunUntil(TimeSpan.FromSeconds(20));
        return m.Masters.Count() == 1 && m.VipHolders.Single() == m.Masters.Single();
    }

    [Property(Arbitrary = [typeof(FleetGenerators)], MaxTest = 300)]
    public bool With_preempt_a_router_of_the_highest_priority_wins(Fleet f)
    {
        var m = Start(f with { Preempt = true });
        m.RunUntil(TimeSpan.FromSeconds(20));
        return m.Masters.Single().State.Priority == f.Priorities.Max();
    }

    // Pinned from seed (2234927941271591621,10836626319667066105): prio [123,123] start [1840,2564]. RFC 5798 §6.4.2:
    // a backup accepts an advert of equal priority, so the tie-break by address applies only between two masters.
    [Fact]
    public void With_equal_priorities_the_router_that_became_master_first_keeps_the_role()
    {
        var m = Start(new Fleet([123, 123], [1840, 2564], true, VrrpVersion.V3));
        m.RunUntil(TimeSpan.FromSeconds(20));
        Assert.Equal("lb1", m.Masters.Single().Name);
    }

    [Property(Arbitrary = [typeof(FleetGenerators)], MaxTest = 200)]
    public bool Killing_the_master_moves_the_vip_within_the_backups_master_down_interval(Fleet f)
    {
        var m = Start(f);
        m.RunUntil(TimeSpan.FromSeconds(20));
        var master = m.Masters.Single();
        var killedAt = m.Now;
        m.Kill(master);
        m.RunUntil(TimeSpan.FromSeconds(40));
        var next = m.Masters.Single();
        var bound = next.Machine.MasterDownInterval(next.State with { Priority = next.Machine.Config.Priority });
        var tookOver = next.BecameMasterAt(killedAt);
        return tookOver is { } t && t - killedAt <= bound + m.Latency && next.HoldsVip;
    }

    [Fact]
    public void With_nopreempt_the_current_master_keeps_the_role_when_a_higher_priority_router_starts()
    {
        var (m, r) = Pair(100, 150, preempt: false);
        m.At(TimeSpan.Zero, r[0], new VrrpEvent.Startup());
        m.At(TimeSpan.FromSeconds(10), r[1], new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(60));
        Assert.Equal(r[0], m.Masters.Single());
        Assert.Equal(VrrpRole.Backup, r[1].State.Role);
    }

    [Fact]
    public void With_preempt_a_higher_priority_router_that_starts_later_takes_over()
    {
        var (m, r) = Pair(100, 150);
        m.At(TimeSpan.Zero, r[0], new VrrpEvent.Startup());
        m.At(TimeSpan.FromSeconds(10), r[1], new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(30));
        Assert.Equal(r[1], m.Masters.Single());
        Assert.False(r[0].HoldsVip);
    }

    [Fact]
    public void Preempt_delay_postpones_the_takeover_by_that_delay()
    {
        var m = new Medium(Ms(1));
        var low = m.Add("lb1", Config(100, 0));
        var high = m.Add("lb2", Config(150, 1) with { PreemptDelay = TimeSpan.FromSeconds(5) });
        m.At(TimeSpan.Zero, low, new VrrpEvent.Startup());
        m.At(TimeSpan.FromSeconds(10), high, new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(14.5));
        Assert.Equal(low, m.Masters.Single());
        m.RunUntil(TimeSpan.FromSeconds(30));
        Assert.Equal(high, m.Masters.Single());
        var at = high.BecameMasterAt(TimeSpan.Zero)!.Value;
        Assert.InRange(at, TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(16.1));
    }

    [Fact]
    public void The_address_owner_becomes_master_at_once_on_startup()
    {
        var (m, r) = Pair(100, 255);
        m.At(TimeSpan.Zero, r[0], new VrrpEvent.Startup());
        m.At(TimeSpan.FromSeconds(10), r[1], new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(10));
        Assert.Equal(r[1].BecameMasterAt(TimeSpan.Zero), TimeSpan.FromSeconds(10));
        m.RunUntil(TimeSpan.FromSeconds(20));
        Assert.Equal(r[1], m.Masters.Single());
    }

    [Theory]
    [InlineData(VrrpVersion.V3, 1000, 100)]
    [InlineData(VrrpVersion.V2, 1000, 100)]
    [InlineData(VrrpVersion.V3, 100, 100)]
    [InlineData(VrrpVersion.V3, 1000, 254)]
    public void Priority_0_on_shutdown_hands_over_within_skew_time_without_a_vip_gap(VrrpVersion v, int intervalMs, byte backupPrio)
    {
        var m = new Medium(Ms(1));
        var lb1 = m.Add("lb1", Config(150, 0, v, interval: Ms(intervalMs)));
        var lb2 = m.Add("lb2", Config(backupPrio == 254 ? (byte)254 : backupPrio, 1, v, interval: Ms(intervalMs)));
        var owner = backupPrio == 254 ? lb2 : lb1;
        var backup = owner == lb1 ? lb2 : lb1;
        m.At(TimeSpan.Zero, owner, new VrrpEvent.Startup());
        m.At(Ms(10), backup, new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(20.3));
        Assert.Equal(owner, m.Masters.Single());
        var stopAt = m.Now;
        m.Apply(owner, new VrrpEvent.Shutdown());
        Assert.Equal(0, owner.Adverts[^1].Priority);
        Assert.Equal(VrrpRole.Releasing, owner.State.Role);
        m.RunUntil(TimeSpan.FromSeconds(30));
        var skew = StateMachine.SkewTime(v, backup.State.Priority, Ms(intervalMs));
        var took = backup.BecameMasterAt(stopAt)!.Value - stopAt;
        Assert.Contains(backup.Transitions, t => t.T.Reason == "master sent priority 0, Skew_Time elapsed");
        Assert.InRange(took, skew, skew + m.Latency);
        Assert.Equal(backup, m.Masters.Single());
        Assert.False(owner.HoldsVip);
        Assert.Equal(VrrpRole.Initialize, owner.State.Role);
        Assert.Equal(TimeSpan.Zero, m.VipGap);
    }

    [Fact]
    public void A_releasing_master_with_no_successor_gives_up_the_vips_after_master_down_interval()
    {
        var m = new Medium(Ms(1));
        var lb1 = m.Add("lb1", Config(150, 0));
        m.At(TimeSpan.Zero, lb1, new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(10));
        m.Apply(lb1, new VrrpEvent.Shutdown());
        m.RunUntil(TimeSpan.FromSeconds(13));
        Assert.True(lb1.HoldsVip);
        m.RunUntil(TimeSpan.FromSeconds(14));
        Assert.False(lb1.HoldsVip);
        Assert.Equal(VrrpRole.Initialize, lb1.State.Role);
    }

    [Fact]
    public void Fault_releases_the_vip_stops_adverts_and_the_backup_takes_over_within_skew_time()
    {
        var (m, r) = Pair(150, 100);
        m.At(TimeSpan.Zero, r[0], new VrrpEvent.Startup());
        m.At(TimeSpan.Zero, r[1], new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(10));
        Assert.Equal(r[0], m.Masters.Single());
        var faultAt = m.Now;
        m.Apply(r[0], new VrrpEvent.FaultChanged(true, "tracked interface eth1 is down"));
        Assert.False(r[0].HoldsVip);
        Assert.Equal(VrrpRole.Fault, r[0].State.Role);
        m.RunUntil(TimeSpan.FromSeconds(20));
        Assert.DoesNotContain(r[0].Adverts, a => a.At > faultAt && a.Priority != 0);
        Assert.Equal(r[1], m.Masters.Single());
        Assert.InRange(r[1].BecameMasterAt(faultAt)!.Value - faultAt, TimeSpan.Zero, StateMachine.SkewTime(VrrpVersion.V3, 100, Second) + m.Latency);
        // Recovery: back to backup, then preempts the lower-priority master.
        m.Apply(r[0], new VrrpEvent.FaultChanged(false, "tracked interface eth1 is up"));
        Assert.Equal(VrrpRole.Backup, r[0].State.Role);
        m.RunUntil(TimeSpan.FromSeconds(30));
        Assert.Equal(r[0], m.Masters.Single());
    }

    [Fact]
    public void A_fault_reported_before_startup_starts_in_fault()
    {
        var sm = new StateMachine(Config(150, 0));
        var s = sm.Step(sm.Initial, new VrrpEvent.FaultChanged(true, "link down"), TimeSpan.Zero).State;
        var r = sm.Step(s, new VrrpEvent.Startup(), TimeSpan.Zero);
        Assert.Equal(VrrpRole.Fault, r.State.Role);
        Assert.Null(r.State.NextDeadline);
        Assert.DoesNotContain(r.Actions, a => a is VrrpAction.SendAdvert or VrrpAction.AddVips);
    }

    [Fact]
    public void A_master_whose_tracked_priority_drops_below_the_backups_loses_the_vip_at_once()
    {
        var (m, r) = Pair(150, 100);
        m.At(TimeSpan.Zero, r[0], new VrrpEvent.Startup());
        m.At(TimeSpan.Zero, r[1], new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(10.5));
        var at = m.Now;
        m.Apply(r[0], new VrrpEvent.PriorityChanged(90, "check chk failed (weight -60)"));
        Assert.Equal((at, (byte)90), r[0].Adverts[^1]);
        m.RunUntil(at + Ms(10));
        Assert.Equal(r[1], m.Masters.Single());
        Assert.Equal(r[1], m.VipHolders.Single());
    }

    [Fact]
    public void Gratuitous_arp_is_sent_on_becoming_master_after_the_delay_and_then_periodically()
    {
        var m = new Medium(Ms(1));
        var r = m.Add("lb1", Config(150, 0) with { GarpMasterDelay = TimeSpan.FromSeconds(5), GarpRefresh = TimeSpan.FromSeconds(60) });
        m.At(TimeSpan.Zero, r, new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(200));
        var became = r.BecameMasterAt(TimeSpan.Zero)!.Value;
        var expected = new[] { 0, 5, 65, 125, 185 }.Select(s => became + TimeSpan.FromSeconds(s)).Where(t => t <= m.Now);
        Assert.Equal(expected, r.Garps);
    }

    [Fact]
    public void Without_refresh_gratuitous_arp_stops_after_the_delayed_burst()
    {
        var m = new Medium(Ms(1));
        var r = m.Add("lb1", Config(150, 0) with { GarpMasterDelay = TimeSpan.FromSeconds(1) });
        m.At(TimeSpan.Zero, r, new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(100));
        Assert.Equal(2, r.Garps.Count);
    }

    [Fact]
    public void A_v3_backup_learns_the_masters_interval_for_its_master_down_interval()
    {
        var sm = new StateMachine(Config(100, 1));
        var s = sm.Step(sm.Initial, new VrrpEvent.Startup(), TimeSpan.Zero).State;
        s = sm.Step(s, new VrrpEvent.AdvertReceived(150, Ms(100), Medium.Address(0)), Second).State;
        Assert.Equal(Ms(100), s.MasterAdverInterval);
        // RFC 5798 §6.1: 3 × 100 ms + (256 − 100) × 100 ms / 256.
        Assert.Equal(Second + Ms(300) + Ms(100) * 156 / 256, s.MasterDownAt);
    }

    [Theory]
    [InlineData(VrrpVersion.V3, 100, 1000, 3609.375)]
    [InlineData(VrrpVersion.V3, 254, 1000, 3007.8125)]
    [InlineData(VrrpVersion.V3, 100, 100, 360.9375)]
    [InlineData(VrrpVersion.V2, 100, 1000, 3609.375)]
    [InlineData(VrrpVersion.V2, 100, 2000, 6609.375)]
    public void Master_down_interval_follows_the_rfc(VrrpVersion v, byte prio, int intervalMs, double expectedMs) =>
        Assert.Equal(Ms(expectedMs), StateMachine.MasterDownInterval(v, prio, Ms(intervalMs)));

    [Fact]
    public void A_master_hearing_a_lower_priority_master_asserts_itself_at_once()
    {
        var sm = new StateMachine(Config(150, 0));
        var s = sm.Step(sm.Initial, new VrrpEvent.Startup(), TimeSpan.Zero).State;
        s = sm.Step(s, new VrrpEvent.Tick(), s.MasterDownAt!.Value).State;
        Assert.Equal(VrrpRole.Master, s.Role);
        var r = sm.Step(s, new VrrpEvent.AdvertReceived(100, Second, Medium.Address(1)), Ms(300));
        Assert.Equal([new VrrpAction.SendAdvert(150)], r.Actions);
        Assert.Equal(VrrpRole.Master, r.State.Role);
    }

    [Fact]
    public void A_new_master_claims_and_announces_the_vips_before_it_advertises()
    {
        var sm = new StateMachine(Config(150, 0));
        var s = sm.Step(sm.Initial, new VrrpEvent.Startup(), TimeSpan.Zero).State;
        var r = sm.Step(s, new VrrpEvent.AdvertReceived(100, Second, Medium.Address(1)), Second);
        Assert.Equal(
            [typeof(VrrpAction.Transition), typeof(VrrpAction.AddVips), typeof(VrrpAction.SendGarp), typeof(VrrpAction.SendAdvert)],
            r.Actions.Select(a => a.GetType()));
    }

    [Fact]
    public void Equal_priorities_resolve_to_the_higher_address()
    {
        var (m, r) = Pair(100, 100);
        m.At(TimeSpan.Zero, r[0], new VrrpEvent.Startup());
        m.At(TimeSpan.Zero, r[1], new VrrpEvent.Startup());
        m.RunUntil(TimeSpan.FromSeconds(20));
        Assert.Equal(r[1], m.Masters.Single());
        Assert.True(StateMachine.CompareAddresses(IPAddress.Parse("192.0.2.12"), IPAddress.Parse("192.0.2.11")) > 0);
    }
}
